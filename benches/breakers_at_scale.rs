//! Ten thousand named circuit breakers: rendering `/metrics` and `/status`
//! with all of them, looking one up, and registering more.
//!
//! `cargo bench --bench breakers_at_scale`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use telemark::breaker::BreakerConfig;
use telemark::CircuitBreaker;

const BREAKERS: u64 = 10_000;

fn register(name: String) {
    let breaker = CircuitBreaker::new(name, BreakerConfig::new()).expect("a valid configuration");
    CircuitBreaker::register(breaker).expect("a new name");
}

fn with_ten_thousand(c: &mut Criterion) {
    for i in 0..BREAKERS {
        register(format!("dependency-{i}"));
    }
    let telemetry = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .start()
        .expect("telemetry");
    let mut group = c.benchmark_group("ten_thousand_breakers");
    group.sample_size(20);
    group.bench_function("render_metrics", |b| {
        b.iter(|| black_box(telemetry.render_metrics()))
    });
    group.bench_function("render_status", |b| {
        b.iter(|| black_box(telemetry.render_status()))
    });
    group.bench_function("named", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7_919) % BREAKERS;
            black_box(CircuitBreaker::named(&format!("dependency-{i}")))
        })
    });
    group.finish();
}

/// The time to register `BREAKERS` breakers, from the time per breaker
/// (each iteration registers one more, into a registry of at least
/// `BREAKERS`).
fn registering(c: &mut Criterion) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut group = c.benchmark_group("ten_thousand_breakers");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(10))
        .measurement_time(Duration::from_millis(200));
    group.bench_function("register_one", |b| {
        b.iter_custom(|iters| {
            let names: Vec<String> = (0..iters)
                .map(|_| format!("more-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
                .collect();
            let started = Instant::now();
            for name in names {
                register(name);
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, with_ten_thousand, registering);
criterion_main!(benches);
