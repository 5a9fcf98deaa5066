//! Documents that arrive with events: what a file is, judged from its bytes, and the text it
//! gives. Nothing here fetches or logs; the bytes come in and an [`Inspection`] goes out.
//!
//! Every file gets one of six kinds, and every limit breach is a reason, never a panic or an
//! unbounded allocation: a PDF bomb (a huge page tree, a stream that inflates to gigabytes) is
//! refused within [`Limits`].

mod docx;
mod pdf;
pub mod samples;
#[cfg(test)]
mod tests;

use serde::Serialize;

/// What a file turned out to be. Each kind has its own path (`docs/documents.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Text was read: a PDF with a text layer (owner-restricted ones included), a docx, plain
    /// text.
    Text,
    /// A PDF with pages but no text layer: an image of a page.
    Scanned,
    /// A PDF that needs a password to open.
    Encrypted,
    /// Says it is a PDF, docx or text but cannot be read: damaged or cut short.
    Corrupt,
    /// A picture (PNG, JPEG, TIFF, …): text only through OCR.
    Image,
    /// A type switchyard does not read, or a file over the limits.
    Unsupported,
}

impl Kind {
    /// The kind's name in snake case, as it is serialized and recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Scanned => "scanned",
            Kind::Encrypted => "encrypted",
            Kind::Corrupt => "corrupt",
            Kind::Image => "image",
            Kind::Unsupported => "unsupported",
        }
    }
}

/// Bounds on the work one file may cost. The defaults keep one document under about 100 MB of
/// memory (lopdf holds a page's parsed operations at ~40 bytes per source byte).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Files over this are not read at all.
    pub max_bytes: usize,
    /// PDFs with more pages are not read: a page tree is walked before any text is.
    pub max_pages: usize,
    /// What one stream (a PDF's object streams as it loads, a docx part) may inflate to.
    pub max_decompressed: usize,
    /// One PDF page's content, inflated: it is parsed into operations whole.
    pub max_page_content: usize,
    /// All of a PDF's page content, inflated, each stream counted once however many pages
    /// show it.
    pub max_content_total: usize,
    /// Text kept per document; reading stops once it is reached.
    pub max_text_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 10 * 1024 * 1024,
            max_pages: 500,
            max_decompressed: 16 * 1024 * 1024,
            max_page_content: 2 * 1024 * 1024,
            max_content_total: 16 * 1024 * 1024,
            max_text_chars: 20_000,
        }
    }
}

/// What one file is. `text` is the document's content: never logged, never serialized.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// What the file turned out to be.
    pub kind: Kind,
    /// The type sniffed from the bytes (never the name's or the vendor's word for it).
    pub mime: Option<&'static str>,
    /// A PDF's page count, once its page tree was walked; `None` for other types and for PDFs
    /// refused or unreadable before that.
    pub pages: Option<usize>,
    /// Characters of text read (after the cap).
    pub text_chars: usize,
    /// ISO 639-3, when the text says so clearly.
    pub language: Option<&'static str>,
    /// Why the kind is what it is, when that needs saying ("truncated: no end-of-file marker").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The text read, capped at [`Limits::max_text_chars`]; empty unless `kind` is `Text`.
    #[serde(skip)]
    pub text: String,
    /// Whether OCR read it or tried to (`reason` then says what it found).
    #[serde(skip)]
    pub ocr: bool,
}

impl Inspection {
    fn of(kind: Kind, mime: Option<&'static str>) -> Self {
        Inspection {
            kind,
            mime,
            pages: None,
            text_chars: 0,
            language: None,
            reason: None,
            text: String::new(),
            ocr: false,
        }
    }

    /// A file that could not be inspected at all, with why.
    pub(crate) fn unreadable(reason: &str) -> Self {
        Inspection::of(Kind::Unsupported, None).because(reason)
    }

    fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Keep `text` up to the cap, count it and name its language.
    fn with_text(mut self, text: &str, limits: &Limits) -> Self {
        let kept: String = text.chars().take(limits.max_text_chars).collect();
        self.text_chars = kept.chars().count();
        self.language = crate::model::detect_language(&kept).map(|(code, _)| code);
        self.text = kept;
        self
    }
}

/// The MIME type of a PDF, as [`inspect`] reports it.
pub const PDF: &str = "application/pdf";
pub(crate) const DOCX: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub(crate) const PLAIN: &str = "text/plain";
const ZIP: &str = "application/zip";

/// What `bytes` are, and their text. Total: any input gives an inspection.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Inspection {
    let sniffed = infer::get(bytes);
    let mime = sniffed.map(|t| t.mime_type());
    if bytes.len() > limits.max_bytes {
        return Inspection::of(Kind::Unsupported, mime).because(format!(
            "{} bytes, over the {}-byte limit",
            bytes.len(),
            limits.max_bytes
        ));
    }
    match sniffed {
        Some(t) if t.mime_type() == PDF => pdf::inspect(bytes, limits),
        // infer's docx test reads the order of the zip's first entries, which writers vary:
        // a zip holding `word/document.xml` is a docx whatever its order.
        Some(t) if t.mime_type() == DOCX || t.mime_type() == ZIP => docx::inspect(bytes, limits),
        Some(t) if t.matcher_type() == infer::MatcherType::Image => {
            Inspection::of(Kind::Image, mime).because("an image: text only through OCR")
        }
        Some(t) => Inspection::of(Kind::Unsupported, mime)
            .because(format!("{} is not a type switchyard reads", t.mime_type())),
        None if bytes.starts_with(b"%PDF") => pdf::inspect(bytes, limits),
        None => plain(bytes, limits),
    }
}

/// Text is UTF-8 without control bytes other than whitespace; anything else is binary.
fn plain(bytes: &[u8], limits: &Limits) -> Inspection {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
    });
    match text {
        Some(t) if !t.trim().is_empty() => {
            Inspection::of(Kind::Text, Some(PLAIN)).with_text(t, limits)
        }
        Some(_) => Inspection::of(Kind::Unsupported, Some(PLAIN)).because("an empty file"),
        None => Inspection::of(Kind::Unsupported, None).because("binary data of no known type"),
    }
}

/// The largest document Textract's synchronous call takes.
pub(crate) const OCR_MAX_PAGE_BYTES: usize = 10 * 1024 * 1024;

/// Picture types OCR reads (Textract: JPEG, PNG, TIFF; PDFs go page by page).
const OCR_IMAGES: [&str; 3] = ["image/png", "image/jpeg", "image/tiff"];

impl Inspection {
    /// Whether OCR could give this file text: a scan or a picture.
    pub(crate) fn wants_ocr(&self) -> bool {
        matches!(self.kind, Kind::Scanned | Kind::Image)
    }

    /// The text OCR read from the first `read` of its pages: a text document when it found
    /// some, the scan or picture it was (saying so) when it found none.
    pub(crate) fn read_by_ocr(mut self, text: &str, read: usize, limits: &Limits) -> Self {
        self.ocr = true;
        let pages = match self.pages {
            Some(all) if all > read => format!("the first {read} of {all} pages"),
            _ => format!("{read} page(s)"),
        };
        if meaningful(text) < pdf::MIN_TEXT {
            return self.because(format!("OCR found no text on {pages}"));
        }
        let mut i = Inspection::of(Kind::Text, self.mime).with_text(text, limits);
        i.pages = self.pages;
        i.ocr = true;
        i.because(format!("read by OCR: {pages}"))
    }

    /// OCR was tried and could not read the file: it stays what it was, saying why.
    pub(crate) fn ocr_failed(mut self, why: &str) -> Self {
        self.ocr = true;
        self.because(format!("OCR could not read it: {why}"))
    }
}

/// Why a file's pages do not go to OCR; the file goes to a person with this as the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotForOcr {
    /// A picture of a type Textract does not read (its sniffed MIME type, when known).
    #[error("{} is not a picture type OCR reads (PNG, JPEG, TIFF)", .0.unwrap_or("this type"))]
    PictureType(Option<&'static str>),
    /// A file that is neither a scan nor a picture (its kind).
    #[error("a {0} document is not read by OCR")]
    NotAScan(&'static str),
    /// The scan could not be cut into pages (what lopdf said, in switchyard's words).
    #[error("{0}")]
    Split(String),
    /// A page over Textract's size limit for one synchronous call (its bytes).
    #[error("a page of {0} bytes, over OCR's {OCR_MAX_PAGE_BYTES}-byte limit")]
    PageTooLarge(usize),
}

/// A scan's or a picture's pages as OCR reads them, one document per call: a picture whole, a
/// PDF split into one-page PDFs, at most `max_pages` of them.
pub fn ocr_pages(
    bytes: &[u8],
    inspection: &Inspection,
    limits: &Limits,
    max_pages: usize,
) -> Result<Vec<Vec<u8>>, NotForOcr> {
    let pages = match (inspection.kind, inspection.mime) {
        (Kind::Image, Some(mime)) if OCR_IMAGES.contains(&mime) => vec![bytes.to_vec()],
        (Kind::Image, mime) => return Err(NotForOcr::PictureType(mime)),
        (Kind::Scanned, _) => {
            pdf::single_pages(bytes, limits, max_pages).map_err(NotForOcr::Split)?
        }
        (kind, _) => return Err(NotForOcr::NotAScan(kind.as_str())),
    };
    match pages.iter().find(|p| p.len() > OCR_MAX_PAGE_BYTES) {
        Some(p) => Err(NotForOcr::PageTooLarge(p.len())),
        None => Ok(pages),
    }
}

/// Letters and digits in `text`: what tells a text layer from stray spaces and page numbers.
fn meaningful(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// What one document gave a decision: kept with its evidence, shown by `explain`. Never its
/// text; its name redacted like the input.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Read {
    /// The file's name as shown to people: redacted and quoted, or `#<n>` when it had none.
    pub name: String,
    /// An inspection's kind, or `not_fetched` / `skipped`.
    pub kind: String,
    /// The type sniffed from its bytes; `None` when unknown or not fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Its page count, for a PDF whose pages were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<usize>,
    /// Characters of text read (after the cap); 0 when none was.
    #[serde(default)]
    pub text_chars: usize,
    /// The text's language (ISO 639-3), when it was clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Why the file is what it is, or why it was not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the file is kept (`s3://bucket/documents/<event id>/<n>`), when documents are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

impl Read {
    /// The record of inspection `i` of the file called `name` (redacted by the caller), not kept.
    pub fn of(name: &str, i: &Inspection) -> Self {
        Read {
            name: name.to_owned(),
            kind: i.kind.as_str().to_owned(),
            mime: i.mime.map(str::to_owned),
            pages: i.pages,
            text_chars: i.text_chars,
            language: i.language.map(str::to_owned),
            reason: i.reason.clone(),
            kept: None,
        }
    }

    /// One line for people: `"a.pdf": text, application/pdf, 1 page(s), 397 characters, eng`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: {}", self.name, self.kind);
        if let Some(mime) = &self.mime {
            s.push_str(&format!(", {mime}"));
        }
        if let Some(pages) = self.pages {
            s.push_str(&format!(", {pages} page(s)"));
        }
        if self.kind == Kind::Text.as_str() {
            s.push_str(&format!(", {} characters read", self.text_chars));
        }
        if let Some(language) = &self.language {
            s.push_str(&format!(", language {language}"));
        }
        if let Some(reason) = &self.reason {
            s.push_str(&format!(" ({reason})"));
        }
        if let Some(kept) = &self.kept {
            s.push_str(&format!(", kept at {kept}"));
        }
        s
    }

    /// Whether the sender can mend it by sending it again: a password-protected or damaged file.
    pub(crate) fn asks_sender(&self) -> bool {
        self.kind == Kind::Encrypted.as_str() || self.kind == Kind::Corrupt.as_str()
    }

    pub(crate) fn not_read(name: &str, kind: &str, reason: &str) -> Self {
        Read {
            name: name.to_owned(),
            kind: kind.to_owned(),
            mime: None,
            pages: None,
            text_chars: 0,
            language: None,
            reason: Some(reason.to_owned()),
            kept: None,
        }
    }
}
