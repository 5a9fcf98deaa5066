//! classify without I/O: the built-in model's cold start (loaded from its compiled-in bytes; and,
//! for comparison, trained from the examples as it was before it shipped trained),
//! one message through the model, and language detection.
//! Run: `cargo bench -p switchyard --bench classify`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard::classifier::{detect_language, embedded_model};

fn bench(c: &mut Criterion) {
    c.bench_function("builtin model cold start (load the shipped model)", |b| {
        b.iter(|| embedded_model().unwrap())
    });
    c.bench_function("builtin model trained from its 96 examples", |b| {
        b.iter(|| switchyard::classifier::train_builtin().unwrap())
    });
    let model = embedded_model().unwrap();
    let text =
        "Hello, my card was charged twice for the March invoice. Please refund the second payment.";
    c.bench_function("builtin model, one message", |b| {
        b.iter(|| model.predict(black_box(text)))
    });
    c.bench_function("language detection, one message", |b| {
        b.iter(|| detect_language(black_box(text)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
