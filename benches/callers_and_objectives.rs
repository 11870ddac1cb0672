//! What objectives and caller labels cost per call, beside `#[counted]`
//! without them and an uninstrumented baseline measured in the same run.
//!
//! `cargo bench --bench callers_and_objectives` (group `callers_off`), then
//! with `--features caller-labels` (group `callers_on`). Async cases are
//! awaited inside a current-thread tokio runtime.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use telemark::metrics::ObjectivePercentile;
use telemark::Objective;

#[inline(always)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

const API: Objective = Objective::new("api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(Duration::from_millis(250), ObjectivePercentile::P99);

#[inline(never)]
fn baseline(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[inline(never)]
fn counted(x: u64) -> u64 {
    work(x)
}

#[telemark::counted(objective = API)]
#[inline(never)]
fn counted_objective(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[inline(never)]
fn leaf(x: u64) -> u64 {
    work(x)
}

/// An instrumented caller of `leaf`: two counted calls per iteration.
#[telemark::counted]
#[inline(never)]
fn caller(x: u64) -> u64 {
    leaf(x)
}

#[inline(never)]
async fn baseline_async(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[inline(never)]
async fn counted_async(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[inline(never)]
async fn caller_async(x: u64) -> u64 {
    counted_async(x).await
}

fn cases(c: &mut Criterion, group: &str, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group(group);
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("counted", |b| b.iter(|| counted(black_box(7))));
    group.bench_function("counted_objective", |b| {
        b.iter(|| counted_objective(black_box(7)))
    });
    group.bench_function("counted_from_counted", |b| b.iter(|| caller(black_box(7))));
    group.bench_function("async_baseline", |b| {
        b.iter(|| runtime.block_on(baseline_async(black_box(7))))
    });
    group.bench_function("async_counted", |b| {
        b.iter(|| runtime.block_on(counted_async(black_box(7))))
    });
    group.bench_function("async_counted_from_counted", |b| {
        b.iter(|| runtime.block_on(caller_async(black_box(7))))
    });
    group.finish();
}

fn callers_off_or_on(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _telemetry = telemark::builder!().without_server().start().unwrap();
    let group = if cfg!(feature = "caller-labels") {
        "callers_on"
    } else {
        "callers_off"
    };
    cases(c, group, &runtime);
}

criterion_group!(benches, callers_off_or_on);
criterion_main!(benches);
