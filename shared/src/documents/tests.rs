use proptest::prelude::*;

use super::samples::*;
use super::*;

fn kind(bytes: &[u8]) -> Inspection {
    inspect(bytes, &Limits::default())
}

#[test]
fn a_text_pdf_gives_its_text_and_language() {
    let i = kind(&text_pdf(SUBPOENA));
    assert_eq!((i.kind, i.mime, i.pages), (Kind::Text, Some(PDF), Some(1)));
    assert!(i.text.contains("SUBPOENA DUCES TECUM"), "{}", i.text);
    assert!(i.text.contains("contempt of court"), "{}", i.text);
    assert_eq!(i.text_chars, i.text.chars().count());
    assert_eq!(i.language, Some("eng"));
    assert_eq!(i.reason, None);

    let i = kind(&text_pdf(SPANISH));
    assert_eq!((i.kind, i.language), (Kind::Text, Some("spa")));
}

#[test]
fn a_pdf_without_a_text_layer_is_scanned() {
    let i = kind(&scanned_pdf());
    assert_eq!((i.kind, i.pages, i.text_chars), (Kind::Scanned, Some(1), 0));
    assert_eq!(i.reason.as_deref(), Some("no text layer: 1 page image(s)"));
}

#[test]
fn a_user_password_shuts_a_pdf_and_an_owner_password_alone_does_not() {
    let i = kind(&password_pdf(SUBPOENA, "hunter2"));
    assert_eq!((i.kind, i.text_chars), (Kind::Encrypted, 0));
    assert_eq!(i.reason.as_deref(), Some("needs a password to open"));

    let i = kind(&owner_restricted_pdf(SUBPOENA));
    assert_eq!(i.kind, Kind::Text, "{:?}", i.reason);
    assert!(i.text.contains("SUBPOENA"), "{}", i.text);
    assert!(i.reason.unwrap().starts_with("owner-restricted"));
}

#[test]
fn a_pdf_cut_short_or_garbled_is_corrupt() {
    let i = kind(&truncated_pdf(SUBPOENA));
    assert_eq!(i.kind, Kind::Corrupt);
    assert_eq!(
        i.reason.as_deref(),
        Some("truncated: no end-of-file marker")
    );

    let i = kind(b"%PDF-1.7\n this is not a pdf at all \n%%EOF\n");
    assert_eq!(i.kind, Kind::Corrupt, "{:?}", i.reason);
    assert!(i.reason.unwrap().starts_with("not a readable PDF"));
}

#[test]
fn a_stream_bomb_is_refused_within_the_limit() {
    let bomb = bomb_pdf(8 * 1024 * 1024);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let i = kind(&bomb);
    assert_eq!(i.kind, Kind::Unsupported);
    assert_eq!(
        i.reason.as_deref(),
        Some("a page's content inflates past the 2097152-byte limit")
    );
    // The same file under a limit it fits is an ordinary (blank) page.
    let roomy = Limits {
        max_page_content: 16 * 1024 * 1024,
        ..Limits::default()
    };
    assert_eq!(inspect(&bomb, &roomy).kind, Kind::Scanned);
}

#[test]
fn pages_sharing_one_stream_inflate_it_once_and_the_total_is_bounded() {
    // 400 pages over one 1.5 MiB stream: 600 MiB if each page were read, 1.5 MiB as it is.
    let shared = shared_content_pdf(400, 1536 * 1024);
    let i = kind(&shared);
    assert_eq!(
        (i.kind, i.pages),
        (Kind::Scanned, Some(400)),
        "{:?}",
        i.reason
    );
    // Distinct streams add up: ten pages of 1.5 MiB each are over an 8 MiB total.
    let tight = Limits {
        max_content_total: 8 * 1024 * 1024,
        ..Limits::default()
    };
    let distinct: Vec<u8> = {
        let mut doc = lopdf::Document::load_mem(&shared_content_pdf(1, 0)).unwrap();
        let pages = doc.get_pages();
        let page = *pages.values().next().unwrap();
        for _ in 0..9 {
            let mut s = lopdf::Stream::new(lopdf::Dictionary::new(), vec![b' '; 1536 * 1024]);
            s.compress().unwrap();
            let id = doc.add_object(s);
            let mut p = doc.get_dictionary(page).unwrap().clone();
            p.set("Contents", id);
            let new_page = doc.add_object(p);
            let root = doc
                .catalog()
                .unwrap()
                .get(b"Pages")
                .unwrap()
                .as_reference()
                .unwrap();
            let tree = doc.get_dictionary_mut(root).unwrap();
            let mut kids = tree.get(b"Kids").unwrap().as_array().unwrap().clone();
            kids.push(new_page.into());
            let n = kids.len() as i64;
            tree.set("Kids", kids);
            tree.set("Count", n);
        }
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    };
    let i = inspect(&distinct, &tight);
    assert_eq!(i.kind, Kind::Unsupported, "{:?}", i.reason);
    assert_eq!(
        i.reason.as_deref(),
        Some("the pages' content inflates past the 8388608-byte limit")
    );
}

#[test]
fn a_page_tree_bomb_is_refused_without_allocating_for_it() {
    // 2^40 pages through shared nodes, in a few hundred bytes: the root says so...
    let bomb = page_bomb_pdf(40, None);
    assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
    let i = kind(&bomb);
    assert_eq!(i.kind, Kind::Unsupported, "{:?}", i.reason);
    assert_eq!(
        i.reason.as_deref(),
        Some("declares 1099511627776 pages, over the 500-page limit")
    );
    // ...or the root claims one page and the nodes below 2^39: lopdf would size a list of 2^40
    // page ids from those (12 TiB, an abort); inspected, it is a blank page tree.
    let liar = page_bomb_pdf(40, Some(1));
    let i = kind(&liar);
    assert_eq!(i.kind, Kind::Scanned, "{:?}", i.reason);
    assert!(i.pages.unwrap() <= 100, "{:?}", i.pages);
}

#[test]
fn more_pages_than_the_limit_are_not_read() {
    let limits = Limits {
        max_pages: 20,
        ..Limits::default()
    };
    let i = inspect(&many_pages_pdf(20), &limits);
    assert_eq!((i.kind, i.pages), (Kind::Scanned, Some(20)));
    let i = inspect(&many_pages_pdf(21), &limits);
    assert_eq!(i.kind, Kind::Unsupported);
    assert_eq!(
        i.reason.as_deref(),
        Some("declares 21 pages, over the 20-page limit")
    );
}

#[test]
fn docx_text_and_damaged_docx() {
    let i = kind(&docx(&["Notice of claim", "Tom & Jerry <legal>"]));
    assert_eq!((i.kind, i.mime), (Kind::Text, Some(DOCX)));
    assert_eq!(i.text, "Notice of claim\nTom & Jerry <legal>\n");

    let mut cut = docx(&["Notice of claim"]);
    cut.truncate(cut.len() - 40);
    let i = kind(&cut);
    assert_eq!(i.kind, Kind::Corrupt, "{:?} {:?}", i.mime, i.reason);
    assert!(i.reason.unwrap().starts_with("not a readable docx"));
}

#[test]
fn images_text_and_other_types() {
    let i = kind(&png());
    assert_eq!((i.kind, i.mime), (Kind::Image, Some("image/png")));

    let i = kind(SPANISH.join("\n").as_bytes());
    assert_eq!(
        (i.kind, i.mime, i.language),
        (Kind::Text, Some(PLAIN), Some("spa"))
    );

    let i = kind(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(
        (i.kind, i.mime),
        (Kind::Unsupported, Some("application/gzip"))
    );
    assert_eq!(
        i.reason.as_deref(),
        Some("application/gzip is not a type switchyard reads")
    );

    let i = kind(&[0, 1, 2, 3, 0xff, 0xfe]);
    assert_eq!((i.kind, i.mime), (Kind::Unsupported, None));
    assert_eq!(kind(b"  \n").reason.as_deref(), Some("an empty file"));
}

#[test]
fn the_name_does_not_decide_the_type() {
    // A PDF is a PDF whatever it is called; the bytes alone go in.
    let i = kind(&text_pdf(&[
        "Quarterly report for the board of directors, final version",
    ]));
    assert_eq!(i.mime, Some(PDF));
}

#[test]
fn text_is_capped_and_big_files_are_not_read() {
    let limits = Limits {
        max_text_chars: 10,
        ..Limits::default()
    };
    let i = inspect(&text_pdf(SUBPOENA), &limits);
    assert_eq!((i.kind, i.text_chars), (Kind::Text, 10));

    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let i = inspect(&text_pdf(SUBPOENA), &limits);
    assert_eq!(i.kind, Kind::Unsupported);
    assert!(i.reason.unwrap().ends_with("over the 100-byte limit"));
}

#[test]
fn the_json_shape_is_the_documented_one_and_holds_no_text() {
    let i = kind(&text_pdf(SUBPOENA));
    let json = serde_json::to_value(&i).unwrap();
    assert_eq!(json["kind"], "text");
    assert_eq!(json["mime"], "application/pdf");
    assert_eq!(json["pages"], 1);
    assert_eq!(json["language"], "eng");
    assert!(json["text_chars"].as_u64().unwrap() > 100);
    assert!(!json.to_string().contains("SUBPOENA"), "{json}");
    let json = serde_json::to_value(kind(&scanned_pdf())).unwrap();
    assert_eq!(json["language"], serde_json::Value::Null);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes, and any damage to a real PDF, give an inspection: never a panic.
    #[test]
    fn inspection_is_total(noise in proptest::collection::vec(any::<u8>(), 0..2048),
                           at in 0usize..4096, flip in any::<u8>()) {
        let _ = kind(&noise);
        let mut pdf = text_pdf(SUBPOENA);
        let i = at % pdf.len();
        pdf[i] ^= flip;
        let _ = kind(&pdf);
        let mut zipped = docx(&["a paragraph"]);
        let j = at % zipped.len();
        zipped[j] ^= flip;
        let _ = kind(&zipped);
    }
}

#[test]
fn a_one_page_scan_goes_to_ocr_as_it_came_and_a_longer_one_page_by_page() {
    let limits = Limits::default();
    let one = scanned_pdf();
    let pages = ocr_pages(&one, &kind(&one), &limits, 3).unwrap();
    assert_eq!(pages, vec![one]);

    let five = scanned_pages_pdf(5);
    let i = kind(&five);
    assert_eq!((i.kind, i.pages), (Kind::Scanned, Some(5)));
    let pages = ocr_pages(&five, &i, &limits, 3).unwrap();
    assert_eq!(pages.len(), 3, "the first three pages only");
    for (n, page) in pages.iter().enumerate() {
        let alone = kind(page);
        assert_eq!(
            (alone.kind, alone.pages),
            (Kind::Scanned, Some(1)),
            "{:?}",
            alone.reason
        );
        assert_eq!(
            alone.reason.as_deref(),
            Some("no text layer: 1 page image(s)")
        );
        // The page is the one it was cut from (its own grey), standing alone: the size it
        // inherited from the tree is its own now.
        let doc = lopdf::Document::load_mem(page).unwrap();
        let (_, id) = doc.get_pages().into_iter().next().unwrap();
        let dict = doc.get_dictionary(id).unwrap();
        assert!(
            dict.has(b"MediaBox"),
            "page {n} lost its inherited MediaBox"
        );
        let image = doc
            .objects
            .values()
            .find_map(|o| o.as_stream().ok().filter(|s| s.dict.has(b"Width")))
            .expect("the page's image");
        assert_eq!(image.content, vec![n as u8 + 1; 64], "page {n}");
    }
}

#[test]
fn pictures_ocr_reads_go_whole_and_others_are_refused_with_the_type() {
    let limits = Limits::default();
    let png = png();
    assert_eq!(ocr_pages(&png, &kind(&png), &limits, 3).unwrap(), vec![png]);
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    let i = kind(gif);
    assert_eq!((i.kind, i.mime), (Kind::Image, Some("image/gif")));
    assert_eq!(
        ocr_pages(gif, &i, &limits, 3).unwrap_err().to_string(),
        "image/gif is not a picture type OCR reads (PNG, JPEG, TIFF)"
    );
    let text = text_pdf(SUBPOENA);
    assert_eq!(
        ocr_pages(&text, &kind(&text), &limits, 3).unwrap_err(),
        NotForOcr::NotAScan("text")
    );
}

#[test]
fn what_ocr_reads_becomes_the_documents_text_and_nothing_read_leaves_it_a_scan() {
    let limits = Limits::default();
    let scan = kind(&scanned_pages_pdf(5));
    let read = scan.clone().read_by_ocr(&SPANISH.join("\n"), 3, &limits);
    assert_eq!((read.kind, read.pages), (Kind::Text, Some(5)));
    assert_eq!(read.language, Some("spa"));
    assert_eq!(read.text_chars, read.text.chars().count());
    assert_eq!(
        read.reason.as_deref(),
        Some("read by OCR: the first 3 of 5 pages")
    );
    assert!(read.ocr && !scan.ocr);

    let blank = scan.clone().read_by_ocr("\n 1 \n\n", 3, &limits);
    assert_eq!(
        (blank.kind, blank.text_chars, blank.ocr),
        (Kind::Scanned, 0, true)
    );
    assert_eq!(
        blank.reason.as_deref(),
        Some("OCR found no text on the first 3 of 5 pages")
    );
    let capped = scan.read_by_ocr(
        &SUBPOENA.join(" ").repeat(100),
        1,
        &Limits {
            max_text_chars: 50,
            ..Limits::default()
        },
    );
    assert_eq!(capped.text_chars, 50);
}
