//! What a function's start builds, one piece at a time: the HTTP client (its TLS setup loads the
//! trust store) and a connector description's registry. Run: `cargo bench -p switchyard --bench
//! startup` (the whole start: `switchyard bench cold-start`).

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    c.bench_function("http client (rustls, platform trust store)", |b| {
        b.iter(switchyard::connectors::http_client)
    });
    let text = include_str!("../connectors/casebook.toml");
    c.bench_function("load one connector description", |b| {
        b.iter(|| switchyard::connectors::declared::load(&[("casebook.toml", text)], &[]).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
