//! The shared limiter against the emulator's DynamoDB (the template's PacingTable), with
//! concurrent workers. moto runs serially here so its conditional writes are atomic, as
//! DynamoDB's are (see `Emulator::start_serial`).

use std::collections::HashMap;
use std::time::Duration;

use switchyard::pacing::{Admission, Limiter, Rate};
use switchyard_infra::emulator::Emulator;

struct Table {
    emulator: Emulator,
    ddb: aws_sdk_dynamodb::Client,
    name: String,
}

async fn pacing_table() -> Table {
    let emulator = Emulator::start_serial().unwrap();
    let config = emulator.sdk_config().await;
    let template = switchyard_infra::template::Template::load(
        &switchyard_infra::repo_root().join("template.yaml"),
    )
    .unwrap();
    let prefix = format!("sy-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let p = switchyard_infra::provision::provision(&config, &template, &prefix, &HashMap::new())
        .await
        .unwrap();
    Table {
        emulator,
        ddb: aws_sdk_dynamodb::Client::new(&config),
        name: p.refs["PacingTable"].clone(),
    }
}

fn limiter(t: &Table) -> Limiter {
    Limiter::new(t.ddb.clone(), &t.name)
}

/// DynamoDB bills a write whose condition fails: a worker that saw its budget idle tries the
/// idle write first, so traffic slower than the pace pays one write per slot, not two; a busy
/// budget still pays one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_costs_one_write_whether_the_budget_was_idle_or_busy() {
    let t = pacing_table().await;
    let l = limiter(&t);
    let rate = Rate::per_minute(60); // a slot a second
    let key = "budget#zendesk#cost";
    let t0 = chrono::Utc::now().timestamp_micros();
    let go = |at| {
        let l = l.clone();
        async move { l.acquire(key, rate, at, Duration::ZERO).await.unwrap() }
    };
    let units = || async {
        let u = t.emulator.take_usage().await.unwrap();
        u.write_units.values().sum::<f64>()
    };
    assert_eq!(go(t0).await, Admission::Go { at_us: t0 });
    units().await;
    // Three seconds later the budget is idle again: one write.
    let t1 = t0 + 3_000_000;
    assert_eq!(go(t1).await, Admission::Go { at_us: t1 });
    assert_eq!(units().await, 1.0, "an idle budget's slot");
    // At once after, it is busy: the next slot is a second away (no wait allowed: refused).
    assert!(matches!(go(t1).await, Admission::Wait { .. }));
    units().await;
    let t2 = t1 + 500_000;
    assert!(matches!(
        l.acquire(key, rate, t2, Duration::from_secs(1)).await.unwrap(),
        Admission::Go { at_us } if at_us == t1 + rate.interval_us()
    ));
    assert_eq!(units().await, 1.0, "a busy budget's slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_get_distinct_slots_never_closer_than_the_interval() {
    let stack = pacing_table().await;
    let rate = Rate::per_minute(600); // a slot every 100 ms
    let now = chrono::Utc::now().timestamp_micros();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let l = limiter(&stack);
        tasks.push(tokio::spawn(async move {
            let mut slots = Vec::new();
            for _ in 0..10 {
                match l
                    .acquire("budget#zendesk#test", rate, now, Duration::from_secs(60))
                    .await
                    .unwrap()
                {
                    Admission::Go { at_us } => slots.push(at_us),
                    Admission::Wait { retry_after } => {
                        panic!("a 60 s horizon must fit 80 slots, got a wait of {retry_after:?}")
                    }
                }
            }
            slots
        }));
    }
    let mut slots = Vec::new();
    for t in tasks {
        slots.extend(t.await.unwrap());
    }
    slots.sort_unstable();
    assert_eq!(slots.len(), 80);
    assert_eq!(slots[0], now, "an idle budget starts now");
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= rate.interval_us(),
            "slots {pair:?} are closer than 100 ms"
        );
    }
    // 80 slots at 100 ms: the last one is 7.9 s out, exactly.
    assert_eq!(slots[79] - slots[0], 79 * rate.interval_us());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_budget_says_how_long_to_wait_and_a_hold_moves_everyone() {
    let stack = pacing_table().await;
    let l = limiter(&stack);
    let rate = Rate::per_minute(60); // one a second
    let now = chrono::Utc::now().timestamp_micros();
    let key = "budget#slack#test";
    assert_eq!(
        l.acquire(key, rate, now, Duration::ZERO).await.unwrap(),
        Admission::Go { at_us: now }
    );
    assert_eq!(
        l.acquire(key, rate, now, Duration::ZERO).await.unwrap(),
        Admission::Wait {
            retry_after: Duration::from_secs(1)
        }
    );
    // Within a 2 s horizon the next slot is reserved for 1 s from now.
    assert_eq!(
        l.acquire(key, rate, now, Duration::from_secs(2))
            .await
            .unwrap(),
        Admission::Go {
            at_us: now + 1_000_000
        }
    );
    // The vendor answered 429 with Retry-After: 30 — nobody goes for 30 s, whatever they ask.
    l.hold_until(key, now + 30_000_000).await.unwrap();
    assert_eq!(
        l.acquire(key, rate, now + 5_000_000, Duration::from_secs(2))
            .await
            .unwrap(),
        Admission::Wait {
            retry_after: Duration::from_secs(25)
        }
    );
    // A shorter hold does not shorten it.
    l.hold_until(key, now + 10_000_000).await.unwrap();
    assert_eq!(l.tat(key).await.unwrap(), Some(now + 30_000_000));
    // After an idle spell the clock restarts at "now", without a stored burst.
    let later = now + 120_000_000;
    assert_eq!(
        l.acquire(key, rate, later, Duration::ZERO).await.unwrap(),
        Admission::Go { at_us: later }
    );
    assert!(matches!(
        l.acquire(key, rate, later, Duration::ZERO).await.unwrap(),
        Admission::Wait { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_delays_lets_one_probe_through_and_closes() {
    use switchyard::pacing::{Breaker, Gate};
    let table = pacing_table().await;
    let mut b = Breaker::new(table.ddb.clone(), &table.name);
    b.threshold = 2;
    b.cooldown = Duration::from_secs(30);
    let key = "breaker#zendesk#test";
    let t0 = chrono::Utc::now().timestamp_micros();
    assert_eq!(b.gate(key, t0).await.unwrap(), Gate::Closed { failures: 0 });
    assert_eq!(
        b.failure(key, t0).await.unwrap(),
        Gate::Closed { failures: 1 }
    );
    assert_eq!(
        b.failure(key, t0).await.unwrap(),
        Gate::Open {
            retry_after: Duration::from_secs(30)
        }
    );
    // Open: every worker is told to come back when the cooldown ends — delayed, not failed.
    assert_eq!(
        b.gate(key, t0 + 10_000_000).await.unwrap(),
        Gate::Open {
            retry_after: Duration::from_secs(20)
        }
    );
    // Half-open: exactly one of several concurrent workers gets the probe.
    let later = t0 + 31_000_000;
    let gates = futures::future::join_all((0..5).map(|_| b.gate(key, later))).await;
    let probes = gates
        .iter()
        .filter(|g| matches!(g, Ok(Gate::Probe)))
        .count();
    assert_eq!(probes, 1, "{gates:?}");
    // The probe failed: open again for a full cooldown.
    assert_eq!(
        b.failure(key, later).await.unwrap(),
        Gate::Open {
            retry_after: Duration::from_secs(30)
        }
    );
    // The next probe succeeds (or a canary passes): closed, the count reset.
    let much_later = later + 31_000_000;
    assert_eq!(b.gate(key, much_later).await.unwrap(), Gate::Probe);
    b.success(key).await.unwrap();
    assert_eq!(
        b.gate(key, much_later).await.unwrap(),
        Gate::Closed { failures: 0 }
    );
}

fn customers(n: usize) -> Vec<switchyard::sync::Customer> {
    let domains = [
        "acme.com",
        "globex.com",
        "initech.com",
        "umbrella.com",
        "hooli.com",
    ];
    (0..n)
        .map(|i| switchyard::sync::Customer {
            email: format!("customer{i}@example.com"),
            firstname: format!("C{i}"),
            lastname: "Example".into(),
            company_domain: domains[i % domains.len()].into(),
        })
        .collect()
}

fn bulk_sync(
    table: &Table,
    limits: &str,
    connector: &str,
    base_url: String,
    token: &str,
) -> switchyard::sync::BulkSync {
    let credential = switchyard::secrets::Credential::BearerToken {
        base_url,
        token: secrecy::SecretString::from(token.to_owned()),
    };
    switchyard::sync::BulkSync {
        http: switchyard::connectors::http_client(),
        pacer: switchyard::pacing::Pacer {
            limiter: limiter(table),
            limits: switchyard::pacing::Limits::parse(limits)
                .unwrap()
                .with_documented(&switchyard::vendors::DOCUMENTED),
            breaker: switchyard::pacing::Breaker::new(table.ddb.clone(), &table.name),
        },
        credential: format!("batch-test-{connector}"),
        target: switchyard::vendors::sync_target(connector, credential).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sync_reads_each_company_once_writes_in_bulk_and_never_meets_a_429() {
    use switchyard::sync::Plan;
    let table = pacing_table().await;
    let sandbox = switchyard_infra::sandbox::Sandbox::start().await.unwrap();
    // The portal's budget: 30 calls in any ten seconds, enforced by the sandbox.
    sandbox.set_hubspot_rate_limit(Some(30));
    let customers = customers(250);
    assert_eq!(
        Plan::new(&customers, 100),
        Plan {
            rows: 250,
            company_reads: 5,
            batch_writes: 3,
            job_polls: 0,
        }
    );
    let sync = bulk_sync(
        &table,
        "hubspot=30/10s",
        "hubspot",
        sandbox.base_url("hubspot"),
        &sandbox.credentials.hubspot_token,
    );
    let done = std::sync::atomic::AtomicUsize::new(0);
    let progress = |n: usize| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    // Eight calls cannot fit 0.1 s under a 3-per-second budget: refused before any call.
    let e = sync
        .run(&customers, Duration::from_millis(100), &progress)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("widen the window"), "{e}");
    let report = sync
        .run(&customers, Duration::from_secs(4), &progress)
        .await
        .unwrap();
    assert_eq!(
        (
            report.synced,
            report.refused,
            report.calls,
            report.rate_limited
        ),
        (250, 0, 8, 0)
    );
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 250);
    let (company_reads, refused) = sandbox.hubspot_counts();
    assert_eq!((company_reads, refused), (5, 0));
    let contacts = sandbox
        .ledger()
        .iter()
        .filter(|e| e.operation == "create_contact")
        .count();
    assert_eq!(contacts, 250);
    // Spread across the window, not burst: eight calls half a second apart.
    assert!(
        report.elapsed >= Duration::from_millis(3_400),
        "{:?}",
        report.elapsed
    );
    sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_sync_uses_sobject_collections_links_accounts_and_counts_refused_records() {
    let table = pacing_table().await;
    let sandbox = switchyard_infra::sandbox::Sandbox::start().await.unwrap();
    let mut customers = customers(450);
    // One record Salesforce refuses (its e-mail has a space): the rest of its batch still lands.
    customers[7].email = "not an@example.com".into();
    let sync = bulk_sync(
        &table,
        "salesforce=20/1s",
        "salesforce",
        sandbox.base_url("salesforce"),
        &sandbox.credentials.salesforce_token,
    );
    let report = sync
        .run(&customers, Duration::from_secs(2), &|_| {})
        .await
        .unwrap();
    // 5 account queries + 3 collections of at most 200.
    assert_eq!(
        (
            report.synced,
            report.refused,
            report.calls,
            report.rate_limited
        ),
        (449, 1, 8, 0)
    );
    assert_eq!(sandbox.salesforce_counts(), (5, 8));
    let ledger = sandbox.ledger();
    let created: Vec<_> = ledger
        .iter()
        .filter(|e| e.operation == "create_contact")
        .collect();
    assert_eq!(created.len(), 449);
    assert!(created.iter().all(|e| e.detail["account"]
        .as_str()
        .is_some_and(|a| a.starts_with("001"))));
    // Run again: the same 449 contacts are updated, not duplicated.
    sync.run(&customers, Duration::from_secs(2), &|_| {})
        .await
        .unwrap();
    let ledger = sandbox.ledger();
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.operation == "create_contact")
            .count(),
        449
    );
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.operation == "update_contact")
            .count(),
        449
    );
    sandbox.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zendesk_sync_upserts_users_in_bulk_jobs_and_waits_for_each_to_finish() {
    let table = pacing_table().await;
    let sandbox = switchyard_infra::sandbox::Sandbox::start().await.unwrap();
    let mut customers = customers(250);
    customers[3].email = "not an@example.com".into();
    let credential = switchyard::secrets::Credential::ApiToken {
        base_url: sandbox.base_url("zendesk"),
        email: sandbox.credentials.zendesk_email.clone(),
        api_token: secrecy::SecretString::from(sandbox.credentials.zendesk_token.clone()),
    };
    let sync = switchyard::sync::BulkSync {
        http: switchyard::connectors::http_client(),
        pacer: switchyard::pacing::Pacer {
            limiter: limiter(&table),
            limits: switchyard::pacing::Limits::parse("zendesk=600/minute")
                .unwrap()
                .with_documented(&switchyard::vendors::DOCUMENTED),
            breaker: switchyard::pacing::Breaker::new(table.ddb.clone(), &table.name),
        },
        credential: "batch-test-zendesk".into(),
        target: switchyard::vendors::sync_target("zendesk", credential).unwrap(),
    };
    let plan = switchyard::sync::Plan::for_target(&customers, sync.target.as_ref());
    // Zendesk links users to organizations by domain itself: no company reads.
    assert_eq!(
        (plan.company_reads, plan.batch_writes, plan.job_polls),
        (0, 3, 3)
    );
    let report = sync
        .run(&customers, Duration::from_secs(2), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.synced, report.refused, report.rate_limited),
        (249, 1, 0)
    );
    // Three writes, and each job's status read (first in the slot the plan kept for it) until
    // completed.
    let (users, polls) = sandbox.zendesk_users();
    assert_eq!(users, 249);
    assert!(polls >= 3, "{polls}");
    assert_eq!(report.calls as u64, 3 + polls);
    sandbox.stop();
}

fn pacer(t: &Table, limits: &str) -> switchyard::pacing::Pacer {
    switchyard::pacing::Pacer {
        limiter: limiter(t),
        limits: switchyard::pacing::Limits::parse(limits)
            .unwrap()
            .with_documented(&switchyard::vendors::DOCUMENTED),
        breaker: switchyard::pacing::Breaker::new(t.ddb.clone(), &t.name),
    }
}

/// Start offsets (ms after `now`) of `n` reservations made at the same instant.
async fn starts(
    p: &switchyard::pacing::Pacer,
    connector: &str,
    credential: &str,
    class: Option<&str>,
    now: i64,
    n: usize,
) -> Vec<i64> {
    let mut out = Vec::new();
    for _ in 0..n {
        match p
            .reserve(
                connector,
                credential,
                class,
                now,
                switchyard::pacing::IN_FUNCTION_WAIT,
            )
            .await
            .unwrap()
        {
            Admission::Go { at_us } => out.push((at_us - now) / 1_000),
            Admission::Wait { .. } => out.push(-1),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_class_has_its_own_narrower_budget_scoped_per_channel() {
    let table = pacing_table().await;
    let p = pacer(&table, "slack=600/minute");
    let now = chrono::Utc::now().timestamp_micros();
    // HubSpot: 100 per 10 s for the credential, CRM search 5 per second.
    let plain = starts(&p, "hubspot", "cred-a", None, now, 5).await;
    let search = starts(&p, "hubspot", "cred-b", Some("search"), now, 5).await;
    let spaced = |v: &[i64], ms: i64| v.windows(2).all(|w| w[1] - w[0] >= ms - 1);
    assert!(spaced(&plain, 100) && plain[4] < 600, "{plain:?}");
    assert!(spaced(&search, 200) && search[4] >= 799, "{search:?}");
    // Slack: one message per second per channel; another channel is not held back by it.
    let c1 = starts(&p, "slack", "cred-c", Some("post_message#C1"), now, 2).await;
    let c2 = starts(&p, "slack", "cred-c", Some("post_message#C2"), now, 1).await;
    assert!(c1[1] >= 999, "{c1:?}");
    assert!((0..500).contains(&c2[0]), "{c2:?}");
    // A class past the in-function wait says how long to wait instead.
    let many = starts(&p, "slack", "cred-d", Some("post_message#C1"), now, 4).await;
    assert_eq!(many[3], -1, "{many:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_cap_holds_n_calls_in_flight_across_workers() {
    let table = pacing_table().await;
    let limits = switchyard::pacing::Limits::parse("salesforce=3/concurrent")
        .unwrap()
        .with_documented(&switchyard::vendors::DOCUMENTED);
    assert_eq!(limits.concurrency("salesforce"), Some(3));
    assert_eq!(limits.concurrency("zendesk"), None);
    let c = limiter(&table).concurrency();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.acquire("sf#cred", 3, Duration::from_secs(30))
                .await
                .unwrap()
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.unwrap() {
            held.push(p);
        }
    }
    assert_eq!(held.len(), 3, "exactly the cap in flight");
    assert!(c
        .acquire("sf#cred", 3, Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    c.release(held.pop().unwrap()).await;
    assert!(c
        .acquire("sf#cred", 3, Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
    // A worker that died holding a slot: its lease runs out and the slot is free again.
    let _abandoned = c
        .acquire("sf#other", 1, Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    assert!(c
        .acquire("sf#other", 1, Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c
        .acquire("sf#other", 1, Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_draw_on_a_budget_so_a_failing_api_is_not_hammered() {
    let table = pacing_table().await;
    // Zendesk 600 a minute: retries get 60 a minute, in bursts of at most 5.
    let p = pacer(&table, "zendesk=600/minute");
    let rate = p.limits.retry_rate("zendesk");
    assert_eq!((rate.count, rate.burst), (60, 5));
    let now = chrono::Utc::now().timestamp_micros();
    let mut allowed = 0;
    for _ in 0..20 {
        if p.retry_allowed("zendesk", "cred", now).await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 5,
        "a burst of five, then none until the budget refills"
    );
    // One interval (1 s) later, one more.
    assert!(p
        .retry_allowed("zendesk", "cred", now + 1_000_000)
        .await
        .unwrap());
    assert!(!p
        .retry_allowed("zendesk", "cred", now + 1_000_000)
        .await
        .unwrap());
    // Another credential has its own.
    assert!(p.retry_allowed("zendesk", "other", now).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_window_caps_the_credential_beyond_its_pace() {
    let table = pacing_table().await;
    // 50 a second, and at most 48 in any minute: a burst of two, then one every 1.3 s.
    let p = pacer(&table, "jira=50/s+48/minute");
    let now = chrono::Utc::now().timestamp_micros();
    let got = starts(&p, "jira", "cred-a", None, now, 4).await;
    assert_eq!(&got[..2], &[0, 20], "the burst goes at the pace: {got:?}");
    assert!(
        (1_300..1_310).contains(&got[2]),
        "then the ceiling spaces calls: {got:?}"
    );
    assert_eq!(got[3], -1, "past the in-function wait: hand back {got:?}");
    match p
        .reserve(
            "jira",
            "cred-a",
            None,
            now,
            switchyard::pacing::IN_FUNCTION_WAIT,
        )
        .await
        .unwrap()
    {
        Admission::Wait { retry_after } => {
            assert!(retry_after > Duration::from_secs(2), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    // The pace alone (another credential without the ceiling) would have let them all go.
    let paced = pacer(&table, "jira=50/s");
    let free = starts(&paced, "jira", "cred-b", None, now, 4).await;
    assert!(free[0] == 0 && (60..70).contains(&free[3]), "{free:?}");
}
