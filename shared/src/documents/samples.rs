//! Files of every kind, generated (no checked-in binaries): what the tests inspect, what the
//! sandbox's vendors serve as attachments, and what the demo sends.

use std::io::Write;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

/// The demo's subpoena: the words that make a document legal, with none of them in the ticket.
pub const SUBPOENA: &[&str] = &[
    "SUBPOENA DUCES TECUM",
    "United States District Court, Northern District of Examplia",
    "You are commanded to produce the documents, records and electronically stored",
    "information listed in Schedule A, concerning the account of the respondent, and to",
    "permit inspection by counsel for the plaintiff within fourteen days of service.",
    "Failure to comply with this subpoena may be punished as contempt of court.",
];

/// A Spanish letter about a double charge.
pub const SPANISH: &[&str] = &[
    "Estimado equipo de soporte:",
    "Me han cobrado dos veces la misma factura este mes y necesito que me devuelvan",
    "el importe duplicado lo antes posible. Adjunto el extracto del banco con los dos",
    "cargos. Muchas gracias por su ayuda y quedo a la espera de su respuesta.",
];

/// A one-page PDF showing `lines` in Helvetica, with the trailer `/ID` encryption needs.
fn document(lines: &[&str]) -> Document {
    let mut doc = Document::with_version("1.5");
    doc.trailer.set(
        "ID",
        Object::Array(vec![
            Object::string_literal(b"switchyard-sampl".to_vec()),
            Object::string_literal(b"switchyard-sampl".to_vec()),
        ]),
    );
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 11.into()]),
        Operation::new("TL", vec![14.into()]),
        Operation::new("Td", vec![72.into(), 720.into()]),
    ];
    for line in lines {
        operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations }.encode().expect("content encodes");
    let font = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    page(
        &mut doc,
        content,
        dictionary! { "Font" => dictionary! { "F1" => font } },
    );
    doc
}

/// Adds the page tree, one page of `content` with `resources`, and the catalog.
fn page(doc: &mut Document, content: Vec<u8>, resources: lopdf::Dictionary) {
    let pages = doc.new_object_id();
    let contents = doc.add_object(Stream::new(dictionary! {}, content));
    let page = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        "Resources" => resources,
        "Contents" => contents,
    });
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    doc.trailer.set("Root", catalog);
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("an in-memory PDF saves");
    out
}

/// A PDF with a text layer.
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    save(document(lines))
}

/// A scanner's PDF: one page that is one grey image, no text operators at all.
pub fn scanned_pdf() -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let image = doc.add_object(Stream::new(
        dictionary! {
            "Type" => "XObject", "Subtype" => "Image", "Width" => 8, "Height" => 8,
            "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
        },
        vec![0x80; 64],
    ));
    let content = b"q 540 0 0 720 36 36 cm /Im1 Do Q".to_vec();
    page(
        &mut doc,
        content,
        dictionary! { "XObject" => dictionary! { "Im1" => image } },
    );
    save(doc)
}

/// A scanner's PDF of `pages` pages, each one image of its own grey (page n is grey n), whose
/// size every page inherits from the page tree, as scanners write them.
pub fn scanned_pages_pdf(pages: u8) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let root = doc.new_object_id();
    let kids: Vec<Object> = (1..=pages)
        .map(|grey| {
            let image = doc.add_object(Stream::new(
                dictionary! {
                    "Type" => "XObject", "Subtype" => "Image", "Width" => 8, "Height" => 8,
                    "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
                },
                vec![grey; 64],
            ));
            let contents = doc.add_object(Stream::new(
                dictionary! {},
                b"q 540 0 0 720 36 36 cm /Im1 Do Q".to_vec(),
            ));
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => root, "Contents" => contents,
                "Resources" => dictionary! { "XObject" => dictionary! { "Im1" => image } },
            })
            .into()
        })
        .collect();
    doc.objects.insert(
        root,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => pages as i64,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
    doc.trailer.set("Root", catalog);
    save(doc)
}

fn encrypted(lines: &[&str], owner: &str, user: &str) -> Vec<u8> {
    let mut doc = document(lines);
    let state = lopdf::EncryptionState::try_from(lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: owner,
        user_password: user,
        key_length: 128,
        permissions: lopdf::Permissions::empty(),
    })
    .expect("RC4-128 state");
    doc.encrypt(&state).expect("the sample encrypts");
    save(doc)
}

/// A PDF that opens only with `password`.
pub fn password_pdf(lines: &[&str], password: &str) -> Vec<u8> {
    encrypted(lines, "owner-secret", password)
}

#[cfg(test)]
/// A PDF with an owner password and no user password: it forbids printing and copying, and
/// anyone can open and read it.
pub(crate) fn owner_restricted_pdf(lines: &[&str]) -> Vec<u8> {
    encrypted(lines, "owner-secret", "")
}

/// A text PDF cut off half-way, as an interrupted upload leaves it.
pub fn truncated_pdf(lines: &[&str]) -> Vec<u8> {
    let mut bytes = text_pdf(lines);
    bytes.truncate(bytes.len() / 2);
    bytes
}

#[cfg(test)]
/// A small PDF whose one content stream inflates to `inflated` bytes of spaces.
pub(crate) fn bomb_pdf(inflated: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let mut stream = Stream::new(dictionary! {}, vec![b' '; inflated]);
    stream.compress().expect("spaces compress");
    let pages = doc.new_object_id();
    let contents = doc.add_object(stream);
    let page = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages, "Contents" => contents,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
    });
    doc.objects.insert(
        pages,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    doc.trailer.set("Root", catalog);
    save(doc)
}

#[cfg(test)]
/// A PDF whose page tree holds 2^`depth` leaves through shared nodes (`depth` levels of two
/// kids pointing at the same node) from a few hundred bytes, each node's /Count true, except
/// the root's when `root_count` is given.
pub(crate) fn page_bomb_pdf(depth: u32, root_count: Option<i64>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let contents = doc.add_object(Stream::new(dictionary! {}, b"BT ET".to_vec()));
    let root = doc.new_object_id();
    let mut node = doc.add_object(dictionary! {
        "Type" => "Page", "Contents" => contents,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
    });
    for level in 0..depth {
        let count = 2_i64.pow(level + 1);
        node = if level + 1 == depth {
            doc.objects.insert(
                root,
                Object::Dictionary(dictionary! {
                    "Type" => "Pages", "Kids" => vec![node.into(), node.into()],
                    "Count" => root_count.unwrap_or(count),
                }),
            );
            root
        } else {
            doc.add_object(dictionary! {
                "Type" => "Pages", "Kids" => vec![node.into(), node.into()], "Count" => count,
            })
        };
    }
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
    doc.trailer.set("Root", catalog);
    save(doc)
}

#[cfg(test)]
/// A PDF of `pages` distinct pages sharing one content stream.
pub(crate) fn many_pages_pdf(pages: usize) -> Vec<u8> {
    shared_content_pdf(pages, 0)
}

#[cfg(test)]
/// `pages` distinct pages all showing one compressed content stream of `inflated` spaces.
pub(crate) fn shared_content_pdf(pages: usize, inflated: usize) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let mut stream = Stream::new(
        dictionary! {},
        [b"BT ET".as_slice(), &vec![b' '; inflated]].concat(),
    );
    stream.compress().expect("spaces compress");
    let contents = doc.add_object(stream);
    let root = doc.new_object_id();
    let kids: Vec<Object> = (0..pages)
        .map(|_| {
            doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => root, "Contents" => contents,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            })
            .into()
        })
        .collect();
    doc.objects.insert(
        root,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => pages as i64 },
        ),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => root });
    doc.trailer.set("Root", catalog);
    save(doc)
}

/// A Word document with one paragraph per entry of `paragraphs`.
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", escape(p)))
        .collect();
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_owned(),
        ),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
            ),
        ),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finishes").into_inner()
}

/// The smallest PNG: a 1×1 pixel.
pub fn png() -> Vec<u8> {
    const PIXEL: &str = "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a3a1b8650000000049454e44ae426082";
    hex::decode(PIXEL).expect("hex")
}
