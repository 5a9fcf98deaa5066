//! `switchyard connector check` as a team runs it on its description before deploying.

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
