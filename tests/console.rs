//! The console in a real browser: headless Chromium (Debian's package; `.ci/run` installs it)
//! loads the page the local stack serves after the demo's webhooks and must show the events,
//! the health tables, both charts drawn, and an event's story.

use std::path::Path;
use std::time::Duration;

use switchyard_infra::{console, demo, stack::LocalStack};

/// The browser: `CHROMIUM` or `chromium` on PATH.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Chromium's headless run of `args` against `url` (its own profile, no background traffic).
async fn browse(url: &str, args: &[&str], profile: &Path) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=2000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(url)
            .output(),
    )
    .await
    .expect("chromium answered within a minute")
    .unwrap_or_else(|e| {
        panic!(
            "could not run {} (install Debian's chromium, as .ci/run does): {e}",
            chromium()
        )
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_events_health_charts_and_a_story_in_a_real_browser() {
    let stack = LocalStack::start().await.unwrap();
    let http = reqwest::Client::new();
    let summary = demo::run(&stack, &http, &demo::demo_webhooks(&stack))
        .await
        .unwrap();
    assert!(summary.settled, "{}", summary.render());
    // One more vague message, left undecided: the console lists it as waiting for a person.
    let vague = switchyard_infra::fixtures::slack_message(
        &stack.signing.slack,
        "EvWAIT1",
        "C0SUPPORT",
        "The app is slow",
        chrono::Utc::now(),
    );
    let (_, body) = vague.send(&http, &stack.webhook_base).await.unwrap();
    let waiting_id = body["event_id"].as_str().unwrap().to_owned();
    assert_eq!(
        switchyard_tests::settled(&stack, &waiting_id).await.status,
        "in_review"
    );
    let (addr, task) = console::serve(console::ConsoleState::of(&stack).unwrap())
        .await
        .unwrap();
    let profile = std::env::temp_dir().join(format!("sy-chromium-{}", uuid::Uuid::new_v4()));
    // DNS rebinding: a page under another name that resolves to loopback is refused.
    let rebound = http
        .get(format!("http://{addr}/"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);

    let dom = browse(&format!("http://{addr}/"), &["--dump-dom"], &profile).await;
    // Every accepted event is listed, each linking to its story.
    for d in &summary.decisions {
        assert!(
            dom.contains(&format!("href=\"/events/{}\"", d.event_id)),
            "{dom}"
        );
    }
    // The demo's events are done (the two that waited for a person were decided from Slack);
    // the ones left undecided wait, listed with how long and why: this test's own, and the
    // demo's two documents (the subpoena awaiting a legal approver, the locked contract).
    assert_eq!(
        dom.matches(r#"<td class="state-done">done</td>"#).count(),
        6,
        "{dom}"
    );
    let waiting = &dom[dom
        .find(r#"<table id="waiting">"#)
        .expect("the waiting table")..];
    let waiting = &waiting[..waiting.find("</table>").unwrap()];
    assert_eq!(waiting.matches("<tr>").count(), 4, "{waiting}");
    assert!(
        waiting.contains("password-protected document: \"contract.pdf\""),
        "{waiting}"
    );
    assert!(
        waiting.contains(&format!("href=\"/events/{waiting_id}\""))
            && waiting.contains("is below the review threshold")
            && waiting.contains("<td>slack</td>"),
        "{waiting}"
    );
    // Health: the queues (DLQs empty), the canary, the budgets the actions used.
    assert!(
        dom.contains("<td>ActDLQ</td><td class=\"\">0</td>"),
        "{dom}"
    );
    assert!(dom.contains("zendesk</td><td class=\"ok\">ok"), "{dom}");
    assert!(dom.contains("budget slack"), "{dom}");
    // Both charts are drawn: the demo's events and this test's one in the last minutes, latency
    // bars per connector.
    let throughput = &dom[dom.find(r#"<svg id="throughput""#).unwrap()..];
    let throughput = &throughput[..throughput.find("</svg>").unwrap()];
    let counted: u32 = throughput
        .match_indices("<title>")
        .map(|(i, _)| {
            let t = &throughput[i..];
            t[t.find(": ").unwrap() + 2..t.find("</title>").unwrap()]
                .parse::<u32>()
                .unwrap()
        })
        .sum();
    assert_eq!(counted as usize, summary.accepted.len() + 1, "{throughput}");
    let latency = &dom[dom.find(r#"<svg id="latency""#).unwrap()..];
    let latency = &latency[..latency.find("</svg>").unwrap()];
    assert!(latency.matches("<rect").count() >= 4, "{latency}");
    assert!(latency.contains(">zendesk</text>") && latency.contains(">slack</text>"));

    // An event's story, as explain tells it.
    let reviewed = summary
        .decisions
        .iter()
        .find(|d| d.path == "review")
        .unwrap();
    let story = browse(
        &format!("http://{addr}/events/{}", reviewed.event_id),
        &["--dump-dom"],
        &profile,
    )
    .await;
    assert!(
        story.contains("route       no route matched and confidence 0.50 is below the review threshold 0.60 -&gt; review"),
        "{story}"
    );

    // A screenshot a person can look at.
    let shot = profile.join("console.png");
    browse(
        &format!("http://{addr}/"),
        &[
            "--window-size=1200,1000",
            &format!("--screenshot={}", shot.display()),
        ],
        &profile,
    )
    .await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("SWITCHYARD_CONSOLE_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    task.abort();
    let _ = std::fs::remove_dir_all(&profile);
    stack.stop();
}
