//! The crash-and-fault soak, small: classify and act as worker processes, SIGKILLed and
//! restarted mid-stream (one kill aimed at act holding an effect it has not recorded), vendor
//! faults on; every event must end terminal with exactly one effect.
//! (`switchyard soak --events 1000 --kills 20` is the full run; its figures are in docs/reliability.md.)

use std::path::Path;
use std::time::Duration;

use switchyard_infra::soak::{run, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_and_repeat_nothing() {
    let cfg = SoakConfig {
        events: 40,
        kills: 4,
        aimed: Some(2),
        seed: None,
        faults: true,
        settle: Duration::from_secs(400),
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let report = run(&cfg, exe, &|_| {}).await.unwrap();
    // What happened, measured: both aimed kills found act holding an effect it had not recorded,
    // and every queued fault met a request.
    assert_eq!(report.kills, 4, "{report}");
    assert_eq!(report.aimed_landed, 2, "{report}");
    assert!(report.kills_by_window["after_effect"] >= 2, "{report}");
    let served: usize = report
        .faults_served
        .iter()
        .filter(|(kind, _)| kind.as_str() != "zendesk 429")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(served, report.faults_injected, "{report}");
    assert!(
        report.faults_served.contains_key("zendesk lost_answer"),
        "{report}"
    );
    assert!(
        report.faults_served.contains_key("slack lost_answer"),
        "{report}"
    );
    assert_eq!(report.accepted, 40, "{report}");
    assert_eq!(
        (
            report.terminal,
            report.duplicated,
            report.lost,
            report.in_flight
        ),
        (40, 0, 0, 0),
        "{report}"
    );
    assert_eq!(report.by_state.get("done"), Some(&40), "{report}");
    assert!(report.clean(), "{report}");
    println!("{report}");
}
