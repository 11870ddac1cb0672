//! What the span API costs where it records nothing: `current_span()` and
//! a method call outside any sampled span (the path every call of a
//! library function pays when its caller is not sampled), beside the same
//! through OpenTelemetry's `Context::current().span()` and an
//! uninstrumented baseline measured in the same run.
//!
//! `cargo bench --bench span_api`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use telemark::opentelemetry::trace::TraceContextExt;
use telemark::opentelemetry::{Context, KeyValue};
use telemark::trace::current_span;

#[inline(never)]
fn baseline(x: i64) -> i64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn with_telemark_api(x: i64) -> i64 {
    current_span().set_attribute(KeyValue::new("x", x));
    baseline(x)
}

#[inline(never)]
fn with_opentelemetry_api(x: i64) -> i64 {
    Context::map_current(|cx| cx.span().set_attribute(KeyValue::new("x", x)));
    baseline(x)
}

fn span_api(c: &mut Criterion) {
    let _telemetry = telemark::builder!()
        .without_server()
        .traces(telemark::Traces::exporter(
            opentelemetry_sdk::trace::InMemorySpanExporter::default(),
        ))
        .start()
        .unwrap();
    let mut group = c.benchmark_group("span_api_not_sampled");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("current_span_set_attribute", |b| {
        b.iter(|| with_telemark_api(black_box(7)))
    });
    group.bench_function("opentelemetry_context_span_set_attribute", |b| {
        b.iter(|| with_opentelemetry_api(black_box(7)))
    });
    group.finish();
}

criterion_group!(benches, span_api);
criterion_main!(benches);
