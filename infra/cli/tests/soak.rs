//! The crash-and-fault soak, small: classify and act as worker processes, SIGKILLed and
//! restarted mid-stream, vendor faults on; every event must end terminal with exactly one effect.
//! (`switchyard soak --events 1000 --kills 20` is the full run; its figures are in docs/reliability.md.)

use std::path::Path;
use std::time::Duration;

use switchyard_infra::soak::{run, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing_and_repeat_nothing() {
    let cfg = SoakConfig {
        events: 40,
        kills: 3,
        faults: true,
        settle: Duration::from_secs(400),
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let report = run(&cfg, exe, &|_| {}).await.unwrap();
    assert_eq!(report.kills, 3);
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
}
