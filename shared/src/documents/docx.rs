//! Word documents (docx): a zip whose `word/document.xml` holds the text in `w:t` runs, one
//! `w:p` per paragraph.

use std::io::{Cursor, Read};

use quick_xml::events::Event;

use super::{Inspection, Kind, Limits, DOCX};

const BODY: &str = "word/document.xml";

pub(super) fn inspect(bytes: &[u8], limits: &Limits) -> Inspection {
    let of = |kind| Inspection::of(kind, Some(DOCX));
    let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) => return of(Kind::Corrupt).because(format!("not a readable docx: {e}")),
    };
    let mut part = match archive.by_name(BODY) {
        Ok(p) => p,
        Err(_) => {
            return Inspection::of(Kind::Unsupported, Some(super::ZIP))
                .because(format!("a zip archive without {BODY}: not a Word document"))
        }
    };
    // The declared size can lie; the read below is bounded either way.
    if part.size() > limits.max_decompressed as u64 {
        return of(Kind::Unsupported).because(too_big(limits));
    }
    let mut xml = Vec::new();
    if let Err(e) = part
        .by_ref()
        .take(limits.max_decompressed as u64 + 1)
        .read_to_end(&mut xml)
    {
        return of(Kind::Corrupt).because(format!("not a readable docx: {e}"));
    }
    if xml.len() > limits.max_decompressed {
        return of(Kind::Unsupported).because(too_big(limits));
    }
    match text(&xml, limits.max_text_chars) {
        Ok(t) => of(Kind::Text).with_text(&t, limits),
        Err(e) => of(Kind::Corrupt).because(format!("not a readable docx: {e}")),
    }
}

fn too_big(limits: &Limits) -> String {
    format!(
        "{BODY} inflates past the {}-byte limit",
        limits.max_decompressed
    )
}

/// The runs' text, a newline after each paragraph, a tab for each `w:tab`.
fn text(xml: &[u8], cap: usize) -> Result<String, quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut out = String::new();
    let mut in_run = false;
    let mut buf = Vec::new();
    while out.len() < cap * 4 {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) if e.name().as_ref() == b"w:t" => in_run = true,
            Event::End(e) if e.name().as_ref() == b"w:t" => in_run = false,
            Event::End(e) if e.name().as_ref() == b"w:p" => out.push('\n'),
            Event::Empty(e) if e.name().as_ref() == b"w:tab" => out.push('\t'),
            Event::Text(t) if in_run => out.push_str(&t.unescape()?),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}
