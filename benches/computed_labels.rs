//! Per-call cost of `#[counted]` with labels computed on each call (an
//! enum, a `&'static str`, an integer, two labels), beside `#[counted]`
//! without them and the `metrics` facade's `counter!` with a label, in the
//! same run. The values cycle through 4 per label, as a service's modes,
//! routes or status codes would.
//!
//! `cargo bench --bench computed_labels`. The Prometheus recorder is
//! installed (by telemark's builder), as in a real service.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

mod support;
use support::{baseline, calls, contended, counted};

#[derive(Clone, Copy, telemark::LabelValue)]
enum Mode {
    Real,
    Fallback,
    Cached,
    Skipped,
}

const MODES: [Mode; 4] = [Mode::Real, Mode::Fallback, Mode::Cached, Mode::Skipped];
const ROUTES: [&str; 4] = ["/cart", "/checkout", "/item", "/search"];
const CODES: [u16; 4] = [200, 201, 404, 503];

#[telemark::counted(labels(mode = mode))]
#[inline(never)]
fn counted_enum(x: u64, mode: Mode) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted(labels(route = route))]
#[inline(never)]
fn counted_str(x: u64, route: &'static str) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted(labels(status = status))]
#[inline(never)]
fn counted_integer(x: u64, status: u16) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted(labels(mode = mode, big = |value: &u64| *value > u64::MAX / 2))]
#[inline(never)]
fn counted_enum_and_returned(x: u64, mode: Mode) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn facade_macro_with_label(x: u64, route: &'static str) -> u64 {
    metrics::counter!("bench_routes_total", "route" => route).increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

fn per_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("computed_labels");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("counted", |b| b.iter(|| counted(black_box(7))));
    let mut i = 0usize;
    let mut next = move || {
        i = i.wrapping_add(1);
        i & 3
    };
    group.bench_function("counted_enum", |b| {
        b.iter(|| counted_enum(black_box(7), black_box(MODES[next()])))
    });
    group.bench_function("counted_str", |b| {
        b.iter(|| counted_str(black_box(7), black_box(ROUTES[next()])))
    });
    group.bench_function("counted_integer", |b| {
        b.iter(|| counted_integer(black_box(7), black_box(CODES[next()])))
    });
    group.bench_function("counted_enum_and_returned", |b| {
        b.iter(|| counted_enum_and_returned(black_box(7), black_box(MODES[next()])))
    });
    group.bench_function("metrics_counter_macro_with_label", |b| {
        b.iter(|| facade_macro_with_label(black_box(7), black_box(ROUTES[next()])))
    });
    group.finish();
}

/// `counted_enum` with the mode picked from the argument, as a
/// `fn(u64) -> u64` for the contended cases.
#[inline(never)]
fn counted_enum_cycling(x: u64) -> u64 {
    counted_enum(x, MODES[(x & 3) as usize])
}

/// A benchmarked function.
type Call = fn(u64) -> u64;

/// A second thread calls the same function (so the same four series) for
/// the whole case: the labeled series are one cell each, not one per
/// thread as a plain `#[counted]`'s.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("computed_labels_two_threads");
    let cases: [(&str, Call); 3] = [
        ("baseline", baseline),
        ("counted", counted),
        ("counted_enum", counted_enum_cycling),
    ];
    for (name, call) in cases {
        contended(call, || group.bench_function(name, |b| b.iter(calls(call))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion_with_telemetry();
    targets = per_call, two_threads
}
criterion_main!(benches);
