//! The sandbox as its own process: a connector calls it, and its admin API injects a fault and
//! shows the effect ledger, as any external test suite would use it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_sandbox_runs_as_a_process_with_an_admin_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("SaaS sandbox     ")
                .map(|r| r.split("/{").next().unwrap().to_owned())
        })
        .unwrap();
    let creds = lines
        .map_while(Result::ok)
        .find(|l| l.starts_with("credentials"))
        .unwrap();
    let words: Vec<&str> = creds.split_whitespace().collect();
    let (email, token) = (words[2], words[4].trim_end_matches(','));
    let http = reqwest::Client::new();
    let seeded = http
        .post(format!("{base}/_admin/zendesk/tickets"))
        .json(&serde_json::json!({"id": 777, "subject": "Refund"}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status().as_u16(), 201);
    // A browser page that rebound its own name to loopback sends its own Host: refused.
    let rebound = http
        .get(format!("{base}/_admin/ledger"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    let z = switchyard::vendors::zendesk::outbound::Zendesk::new(
        switchyard::connectors::http_client(),
        switchyard::secrets::Credential::ApiToken {
            base_url: format!("{base}/zendesk"),
            email: email.into(),
            api_token: token.to_owned().into(),
        },
    )
    .unwrap();
    use switchyard::connectors::Connector;
    let update = switchyard::routing::PlannedAction {
        json: Default::default(),
        connector: "zendesk".into(),
        action: "update_ticket".into(),
        params: [
            ("ticket_id".to_owned(), "777".to_owned()),
            ("comment".to_owned(), "seen".to_owned()),
        ]
        .into(),
    };
    let fault = http
        .post(format!("{base}/_admin/faults"))
        .json(&serde_json::json!({"vendor": "zendesk", "fault": "server_error", "status": 502}))
        .send()
        .await
        .unwrap();
    assert_eq!(fault.status().as_u16(), 204);
    let e = z.perform(&update, "k").await.unwrap_err();
    assert!(e.to_string().contains("502"), "{e}");
    z.perform(&update, "k").await.unwrap();
    let ledger: serde_json::Value = http
        .get(format!("{base}/_admin/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger.as_array().unwrap().len(), 1, "{ledger}");
    assert_eq!(ledger[0]["object_id"], "777");
    let refused = http
        .post(format!("{base}/_admin/faults"))
        .json(&serde_json::json!({"vendor": "myspace", "fault": "slow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    child.kill().unwrap();
    child.wait().unwrap();
}
