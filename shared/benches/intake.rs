//! The intake hot path without I/O, for a ~0.5 KB and a ~4 KB Zendesk event:
//! - `intake_zendesk`: the steps the Python equivalent (`infra/bench-intake.sh`) also takes —
//!   verify the signature, parse and normalize, build the SQS message body (with its event id);
//! - `intake_full`: everything `handlers::intake` runs between reading the body and its first AWS
//!   call, which adds the payload fingerprint its delivery claim stores;
//! - `stage/*`: the steps apart.
//!
//! Run: `cargo bench -p switchyard --bench intake`.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use http::HeaderMap;
use secrecy::SecretString;
use switchyard::event::{event_id_for, Source};
use switchyard::idempotency::payload_hash;
use switchyard::vendors::inbound;
use switchyard::webhook::{signature::hmac_sha256, SignedRequest};

const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
const TS: &str = "2024-01-15T10:31:00Z";

fn zendesk_body(description_len: usize) -> String {
    serde_json::json!({
        "account_id": 22129848,
        "detail": {"id": "35436", "subject": "Refund for a double charge", "requester_id": "366630390791",
                   "status": "NEW", "priority": "LOW", "created_at": TS, "updated_at": TS,
                   "description": "x".repeat(description_len)},
        "event": {}, "id": "cbe4028c-7239-495d-b020-f22348516046", "subject": "zen:ticket:35436",
        "time": TS, "type": "zen:event-type:ticket.created", "zendesk_event_version": "2022-11-06"
    })
    .to_string()
}

fn headers(body: &str) -> HeaderMap {
    let sig = STANDARD.encode(hmac_sha256(
        SECRET.as_bytes(),
        &[TS.as_bytes(), body.as_bytes()],
    ));
    let mut h = HeaderMap::new();
    h.insert("x-zendesk-webhook-signature", sig.parse().unwrap());
    h.insert("x-zendesk-webhook-signature-timestamp", TS.parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h
}

fn intake_path(
    body: &[u8],
    h: &HeaderMap,
    secrets: &[SecretString],
    now: DateTime<Utc>,
    claim: bool,
) -> String {
    let req = SignedRequest {
        method: "POST",
        url: "https://x.lambda-url.us-east-1.on.aws/webhooks/zendesk",
        headers: h,
        body,
    };
    inbound::verify(
        Source::Zendesk,
        &req,
        secrets,
        now,
        switchyard::vendors::hubspot::inbound::Version::V3,
    )
    .unwrap();
    let n = inbound::normalize(Source::Zendesk, h, body)
        .unwrap()
        .into_events()
        .remove(0);
    if claim {
        black_box(payload_hash(n.raw.get().as_bytes()));
    }
    let delivery_id = n.delivery_id.clone().unwrap_or_default();
    let event = n.into_event(
        event_id_for(Source::Zendesk, &delivery_id),
        Source::Zendesk,
        delivery_id,
        now,
    );
    event.queue_body().unwrap()
}

fn bench(c: &mut Criterion) {
    let secrets = [SecretString::from(SECRET)];
    let now = switchyard::dates::parse(TS).unwrap();
    for (group, claim) in [("intake_zendesk", false), ("intake_full", true)] {
        intake_group(c, group, claim, &secrets, now);
    }
    stages(c);
}

fn intake_group(
    c: &mut Criterion,
    name: &str,
    claim: bool,
    secrets: &[SecretString],
    now: DateTime<Utc>,
) {
    let mut group = c.benchmark_group(name);
    for (name, len) in [("0.5KB", 60), ("4KB", 3600)] {
        let body = zendesk_body(len);
        let h = headers(&body);
        // The same signed request for the Python baseline (`infra/bench-intake.sh`).
        if let (Some(dir), "0.5KB") = (std::env::var_os("SWITCHYARD_INTAKE_CASE_DIR"), name) {
            let case = serde_json::json!({"scheme": "zendesk", "secret": SECRET, "method": "POST",
                "url": "/webhooks/zendesk", "body": body,
                "headers": h.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect::<std::collections::BTreeMap<_, _>>()});
            std::fs::write(
                std::path::Path::new(&dir).join("intake-case.json"),
                case.to_string(),
            )
            .expect("writing the case file");
        }
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{name} ({} bytes)", body.len()), |b| {
            b.iter(|| intake_path(black_box(body.as_bytes()), &h, secrets, now, claim))
        });
    }
    group.finish();
}

fn stages(c: &mut Criterion) {
    let secrets = [SecretString::from(SECRET)];
    let now = switchyard::dates::parse(TS).unwrap();

    // The stages apart, to see where the time goes.
    let body = zendesk_body(60);
    let h = headers(&body);
    let req = SignedRequest {
        method: "POST",
        url: "https://x/webhooks/zendesk",
        headers: &h,
        body: body.as_bytes(),
    };
    c.bench_function("stage/verify", |b| {
        b.iter(|| {
            inbound::verify(
                Source::Zendesk,
                black_box(&req),
                &secrets,
                now,
                switchyard::vendors::hubspot::inbound::Version::V3,
            )
        })
    });
    c.bench_function("stage/normalize", |b| {
        b.iter(|| inbound::normalize(Source::Zendesk, &h, black_box(body.as_bytes())))
    });
    c.bench_function("stage/parse_date", |b| {
        b.iter(|| switchyard::dates::parse(black_box(TS)))
    });
    let n = inbound::normalize(Source::Zendesk, &h, body.as_bytes())
        .unwrap()
        .into_events()
        .remove(0);
    let event = n.into_event("id".into(), Source::Zendesk, "d".into(), now);
    c.bench_function("stage/claim_hash", |b| {
        b.iter(|| payload_hash(black_box(event.raw.get().as_bytes())))
    });
    c.bench_function("stage/event_id", |b| {
        b.iter(|| event_id_for(Source::Zendesk, black_box(&event.delivery_id)))
    });
    c.bench_function("stage/payload_depth", |b| {
        b.iter(|| black_box(&event.raw).depth_if_over(100))
    });
    c.bench_function("stage/queue_body", |b| {
        b.iter(|| black_box(&event).queue_body())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
