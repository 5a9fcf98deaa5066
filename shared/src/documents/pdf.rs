//! PDFs through lopdf: the five things a PDF can be (text, scanned, needing a password,
//! owner-restricted but readable, corrupt) and the limits that keep a crafted one cheap.

use lopdf::{dictionary, DecompressError, Document, Error, LoadOptions, Object, ObjectId};

use super::{meaningful, Inspection, Kind, Limits, PDF};

/// Fewer letters and digits than this over the whole document is no text layer: a scan's
/// stray OCR-less page numbers or a blank form.
pub(super) const MIN_TEXT: usize = 16;

pub(super) fn inspect(bytes: &[u8], limits: &Limits) -> Inspection {
    let of = |kind| Inspection::of(kind, Some(PDF));
    // lopdf's lenient loading rebuilds a damaged cross-reference table, which reads a file cut
    // short in transit as if it were whole: the end marker is what says it arrived entire.
    if !has_end_marker(bytes) {
        return of(Kind::Corrupt).because("truncated: no end-of-file marker");
    }
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_decompressed),
        ..Default::default()
    };
    let doc = match Document::load_mem_with_options(bytes, options) {
        Ok(doc) => doc,
        Err(e) => return failed(of, &e, limits),
    };
    // Loading opens a document whose user password is empty (owner-restricted: it may forbid
    // copying or printing, but anyone may read it); one with a real user password stays shut.
    if doc.is_encrypted() && !doc.was_encrypted() {
        return of(Kind::Encrypted).because("needs a password to open");
    }
    let restricted = doc.was_encrypted();
    let declared = declared_pages(&doc);
    if declared > limits.max_pages as i64 {
        return of(Kind::Unsupported).because(format!(
            "declares {declared} pages, over the {}-page limit",
            limits.max_pages
        ));
    }
    // lopdf sizes its page list from the tree's /Count entries, which a crafted file sets to
    // 2^40 under a root that claims one page: the allocation alone aborts the process. Without
    // them the list grows with the pages really walked, and that walk is bounded by lopdf to
    // one step per object in the file.
    let mut doc = doc;
    forget_counts(&mut doc);
    let pages = doc.page_iter().take(limits.max_pages + 1).count();
    if pages == 0 {
        return of(Kind::Corrupt).because("no pages");
    }
    if pages > limits.max_pages {
        let mut i = of(Kind::Unsupported).because(format!(
            "more than {} pages, over the limit",
            limits.max_pages
        ));
        // Not the walk's count: it stopped one past the limit.
        i.pages = Some(pages);
        return i;
    }
    let mut text = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut inflated = 0usize;
    for (number, page) in doc.get_pages() {
        // A stream shown on many pages is read once: 500 pages over one bomb cost one page.
        let streams = doc.get_page_contents(page);
        if !streams.is_empty() && streams.iter().all(|s| seen.contains(s)) {
            continue;
        }
        seen.extend(streams);
        let refused = |why: String| {
            let mut i = of(Kind::Unsupported).because(why);
            i.pages = Some(pages);
            i
        };
        match doc.get_page_content_with_limit(page, limits.max_page_content) {
            Ok(content) => inflated += content.len(),
            Err(e) if is_bomb(&e) => {
                return refused(format!(
                    "a page's content inflates past the {}-byte limit",
                    limits.max_page_content
                ))
            }
            Err(_) => continue,
        }
        if inflated > limits.max_content_total {
            return refused(format!(
                "the pages' content inflates past the {}-byte limit",
                limits.max_content_total
            ));
        }
        // A page whose fonts lopdf cannot map gives no text; the others still may.
        if let Ok(t) = doc.extract_text_with_limit(&[number], limits.max_page_content) {
            text.push_str(&t);
        }
        if text.chars().count() >= limits.max_text_chars {
            break;
        }
    }
    let mut i = if meaningful(&text) >= MIN_TEXT {
        let i = of(Kind::Text).with_text(&text, limits);
        if restricted {
            i.because("owner-restricted: opens without a password, read")
        } else {
            i
        }
    } else {
        let images = images(&doc);
        of(Kind::Scanned).because(if images > 0 {
            format!("no text layer: {images} page image(s)")
        } else {
            "no text layer".to_owned()
        })
    };
    i.pages = Some(pages);
    i
}

fn failed(of: impl Fn(Kind) -> Inspection, e: &Error, limits: &Limits) -> Inspection {
    if is_bomb(e) {
        return of(Kind::Unsupported).because(bomb(limits));
    }
    // lopdf's message names the structure that failed (offsets, object ids), never content.
    of(Kind::Corrupt).because(format!("not a readable PDF: {e}"))
}

fn is_bomb(e: &Error) -> bool {
    matches!(
        e,
        Error::Decompress(DecompressError::MemoryLimitExceeded { .. })
    )
}

fn bomb(limits: &Limits) -> String {
    format!(
        "a stream inflates past the {}-byte limit",
        limits.max_decompressed
    )
}

/// `%%EOF` within the last KiB: writers may append a newline or a little padding after it.
fn has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    memchr::memmem::find(tail, b"%%EOF").is_some()
}

/// The root page tree node's /Count: what the file says of itself.
fn declared_pages(doc: &Document) -> i64 {
    doc.catalog()
        .and_then(|c| c.get_deref(b"Pages", doc))
        .and_then(Object::as_dict)
        .and_then(|p| p.get_deref(b"Count", doc))
        .and_then(Object::as_i64)
        .unwrap_or(0)
}

/// Drops /Count from every page tree node (the document is read, never saved).
fn forget_counts(doc: &mut Document) {
    for object in doc.objects.values_mut() {
        if let Object::Dictionary(d) = object {
            if d.get(b"Type")
                .and_then(Object::as_name)
                .is_ok_and(|t| t == b"Pages")
            {
                d.remove(b"Count");
            }
        }
    }
}

/// Image XObjects in the file: what a scanner's pages are made of.
fn images(doc: &Document) -> usize {
    doc.objects
        .values()
        .filter(|o| match o {
            Object::Stream(s) => s
                .dict
                .get(b"Subtype")
                .and_then(Object::as_name)
                .is_ok_and(|n| n == b"Image"),
            _ => false,
        })
        .count()
}

/// What a page takes from its page tree when it does not say itself (PDF 32000-1, 7.7.3.4).
const INHERITED: [&[u8]; 4] = [b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

/// Each of the first `max` pages of a PDF as a PDF of its own: OCR's synchronous call reads one
/// page at a time (Textract refuses a longer PDF). A one-page file is sent as it came. What a
/// page inherits from its tree is copied onto it, so each stands alone.
pub(super) fn single_pages(
    bytes: &[u8],
    limits: &Limits,
    max: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_decompressed),
        ..Default::default()
    };
    let mut doc = Document::load_mem_with_options(bytes, options)
        .map_err(|e| format!("not a readable PDF: {e}"))?;
    if doc.is_encrypted() && !doc.was_encrypted() {
        return Err("needs a password to open".into());
    }
    // Counts are what a bomb lies with (see `inspect`); the walk needs none.
    forget_counts(&mut doc);
    let pages: Vec<ObjectId> = doc.page_iter().take(max.max(1) + 1).collect();
    if pages.len() == 1 && !doc.was_encrypted() {
        return Ok(vec![bytes.to_vec()]);
    }
    let tree = doc
        .catalog()
        .and_then(|c| c.get(b"Pages"))
        .and_then(Object::as_reference)
        .map_err(|e| format!("no page tree: {e}"))?;
    // Loading decrypted an owner-restricted file: each page is written out as plain text.
    doc.trailer.remove(b"Encrypt");
    let mut out = Vec::new();
    for page in pages.into_iter().take(max) {
        let mut one = doc.clone();
        let inherited = inherited(&one, page);
        let dict = one
            .get_dictionary_mut(page)
            .map_err(|e| format!("a page is not a dictionary: {e}"))?;
        for (key, value) in inherited {
            if !dict.has(key) {
                dict.set(key, value);
            }
        }
        dict.set("Parent", tree);
        one.objects.insert(
            tree,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
            }),
        );
        one.prune_objects();
        let mut bytes = Vec::new();
        one.save_to(&mut bytes)
            .map_err(|e| format!("a page could not be written: {e}"))?;
        out.push(bytes);
    }
    Ok(out)
}

/// The attributes `page` inherits from its ancestors, nearest first, bounded by the tree's depth
/// in objects (a cycle of parents ends the walk).
fn inherited(doc: &Document, page: ObjectId) -> Vec<(&'static [u8], Object)> {
    let mut found: Vec<(&'static [u8], Object)> = Vec::new();
    let mut seen = std::collections::HashSet::from([page]);
    let mut next = doc
        .get_dictionary(page)
        .and_then(|d| d.get(b"Parent"))
        .and_then(Object::as_reference);
    while let Ok(id) = next {
        if !seen.insert(id) {
            break;
        }
        let Ok(node) = doc.get_dictionary(id) else {
            break;
        };
        for key in INHERITED {
            if let Ok(value) = node.get(key) {
                if !found.iter().any(|(k, _)| *k == key) {
                    found.push((key, value.clone()));
                }
            }
        }
        next = node.get(b"Parent").and_then(Object::as_reference);
    }
    found
}
