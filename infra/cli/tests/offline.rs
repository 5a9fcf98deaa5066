//! The offline commands as people run them: `switchyard connector check` on a description
//! before deploying, and every `console` example in `docs/`, run and compared with what it shows.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["connector", "check"])
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_malformed_description_is_refused_with_its_file_and_line() {
    let dir = std::env::temp_dir().join(format!("sy-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/connectors/casebook.toml"
    ))
    .unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("kind = \"ip_blocked\""))
        .unwrap()
        + 1;
    let bad = dir.join("casebook.toml");
    std::fs::write(
        &bad,
        text.replace("kind = \"ip_blocked\"", "kind = \"ip_block\""),
    )
    .unwrap();
    let (code, _, err) = check(&[bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "{}:{line}: unknown variant `ip_block`",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn a_sample_event_renders_the_requests_without_a_secret() {
    let dir = std::env::temp_dir().join(format!("sy-event-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let event = dir.join("event.json");
    std::fs::write(
        &event,
        r#"{"id": "ev-1", "source": "zendesk", "event_type": "ticket.created", "delivery_id": "d-1",
            "object_id": "35439", "subject": "Subpoena for account records", "text": "Served today.",
            "requester": null, "occurred_at": null, "received_at": "2026-12-04T10:31:00Z", "raw": {}}"#,
    )
    .unwrap();
    let (code, out, err) = check(&[
        "shared/connectors/casebook.toml",
        "--event",
        event.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("shared/connectors/casebook.toml: ok: connector casebook"),
        "{out}"
    );
    assert!(
        out.contains("POST https://api.example.invalid/api/v2/matters/M-INTAKE/cases"),
        "{out}"
    );
    assert!(out.contains(r#""password":"[redacted]""#), "{out}");
    assert!(out.contains("x-casebook-session: [redacted]"), "{out}");
}

/// A command line as a shell splits it: words, with `'…'` and `"…"` quoting spaces.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, c) => (word, in_word) = (word + &c.to_string(), true),
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Each `console` block's commands (`$ switchyard …`) with the output shown under each.
fn console_examples(text: &str) -> Vec<(String, String)> {
    let mut examples: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("```") {
            inside = line == "```console";
            continue;
        }
        if !inside {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => examples.push((command.to_owned(), String::new())),
            None => {
                let (_, shown) = examples
                    .last_mut()
                    .expect("a console block starts with `$ `");
                shown.push_str(line);
                shown.push('\n');
            }
        }
    }
    examples
}

#[test]
fn every_console_example_in_the_docs_prints_what_it_shows() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut ran = 0;
    for doc in std::fs::read_dir(format!("{root}/docs")).unwrap() {
        let doc = doc.unwrap().path();
        if doc.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&doc).unwrap();
        for (command, shown) in console_examples(&text) {
            let words = shell_words(&command);
            assert_eq!(words[0], "switchyard", "{}: {command}", doc.display());
            let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(&words[1..])
                .current_dir(root)
                .output()
                .unwrap();
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}: {command}: {out:?}",
                doc.display()
            );
            assert_eq!(printed, shown, "{}: `{command}` prints", doc.display());
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} console examples found");
}

#[test]
fn shell_words_split_as_a_shell_does() {
    assert_eq!(
        shell_words("webhook normalize --header 'X-GitHub-Event: issues' \"a b\" c"),
        [
            "webhook",
            "normalize",
            "--header",
            "X-GitHub-Event: issues",
            "a b",
            "c"
        ]
    );
}

#[test]
fn document_inspect_names_every_kind_and_exits_0() {
    use switchyard::documents::samples;
    let dir = std::env::temp_dir().join(format!("sy-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, Vec<u8>, &str); 7] = [
        ("subpoena.pdf", samples::text_pdf(samples::SUBPOENA), "text"),
        ("scan.pdf", samples::scanned_pdf(), "scanned"),
        (
            "locked.pdf",
            samples::password_pdf(samples::SUBPOENA, "pw"),
            "encrypted",
        ),
        (
            "cut.pdf",
            samples::truncated_pdf(samples::SUBPOENA),
            "corrupt",
        ),
        ("photo.png", samples::png(), "image"),
        // The name says PDF; the bytes say otherwise, and the bytes decide.
        (
            "claim.pdf",
            samples::docx(&["Notice of claim against the company"]),
            "text",
        ),
        (
            "archive.bin",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3],
            "unsupported",
        ),
    ];
    for (name, bytes, kind) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["document", "inspect", "--json", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["kind"], kind, "{name}: {json}");
        for key in ["mime", "pages", "text_chars", "language"] {
            assert!(json.get(key).is_some(), "{name}: {key} missing in {json}");
        }
        if name == "subpoena.pdf" {
            assert_eq!(json["language"], "eng");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("SUBPOENA"));
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "document",
            "inspect",
            dir.join("missing.pdf").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
