//! What every benchmark suite shares: the root `overhead` bench, the peer
//! suites in `peers/benches` and the instruction-count driver (which reach
//! this file through the `telemark-peers` crate). No criterion in here, so
//! the driver can use it too.
#![allow(dead_code)] // each suite uses some of it

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use telemark::opentelemetry_sdk::error::OTelSdkResult;
use telemark::opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// The work every benchmarked function does, instrumented or not.
#[inline(always)]
pub fn work(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

// The functions every suite measures: the same work, bare or annotated.

#[inline(never)]
pub fn baseline(x: u64) -> u64 {
    work(x)
}

#[inline(never)]
pub async fn baseline_async(x: u64) -> u64 {
    work(x)
}

#[telemark::counted]
#[inline(never)]
pub fn counted(x: u64) -> u64 {
    work(x)
}

#[telemark::timed]
#[inline(never)]
pub fn timed(x: u64) -> u64 {
    work(x)
}

#[telemark::traced]
#[inline(never)]
pub fn traced(x: u64) -> u64 {
    work(x)
}

#[telemark::traced]
#[inline(never)]
pub async fn traced_async(x: u64) -> u64 {
    work(x)
}

/// A caller's error type: small, and able to carry a breaker's refusal.
#[derive(Debug)]
pub enum CallError {
    Refused,
    Failed,
}

impl From<telemark::BreakerError> for CallError {
    fn from(_: telemark::BreakerError) -> Self {
        CallError::Refused
    }
}

/// A span exporter that accepts every batch and does nothing, so that
/// measurements see the span path and not I/O.
///
/// ```
/// let _traces = telemark::Traces::exporter(telemark_peers::support::NoopExporter);
/// ```
#[derive(Debug)]
pub struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// Polls a future that never waits to its output, without a runtime.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            return output;
        }
    }
}

/// `iters` calls of an `async fn`, each awaited inside `runtime` (as a
/// service awaits them: the futures move into the caller's), timed inside
/// `block_on`.
pub fn awaited<T, F: Future<Output = T>>(
    runtime: &tokio::runtime::Runtime,
    iters: u64,
    call: impl Fn(u64) -> F,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let _ = std::hint::black_box(call(std::hint::black_box(i)).await);
        }
        start.elapsed()
    })
}

/// `call` with a new argument each time, for `b.iter(..)`.
pub fn calls(call: fn(u64) -> u64) -> impl FnMut() -> u64 {
    let mut i = 0u64;
    move || {
        i += 1;
        call(black_box(i))
    }
}

/// Runs `measure` while one other thread calls `call` in a loop, so every
/// sample sees the same contention.
pub fn contended<R>(call: fn(u64) -> u64, measure: impl FnOnce() -> R) -> R {
    let stop = Arc::new(AtomicBool::new(false));
    let contender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                black_box(call(black_box(i)));
                i += 1;
            }
        })
    };
    let result = measure();
    stop.store(true, Ordering::Relaxed);
    contender
        .join()
        .expect("the contending thread does not panic");
    result
}

/// Times `iters` calls in chunks that fit the span queue, each chunk's
/// flush timed with it: every timed call really queues its span (none is
/// dropped because the export thread fell behind), and what the export
/// thread does with the spans counts as far as the caller waits for it (it
/// runs beside the caller, on another core when there is one). Nothing is
/// left outside the timed region.
pub fn timed_in_chunks(iters: u64, call: impl FnMut(), flush: impl Fn()) -> Duration {
    timed_in_chunks_under(iters, |chunk| chunk(), call, flush)
}

/// As [`timed_in_chunks`], each chunk run by `parent` (inside a span of its
/// own, say).
pub fn timed_in_chunks_under(
    iters: u64,
    parent: impl Fn(&mut dyn FnMut()),
    mut call: impl FnMut(),
    flush: impl Fn(),
) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(1024);
        parent(&mut || {
            for _ in 0..chunk {
                call();
            }
        });
        left -= chunk;
        flush();
    }
    start.elapsed()
}

/// `telemark_spans_dropped_total` now.
pub fn dropped_spans(telemetry: &telemark::Telemetry) -> u64 {
    counter(&telemetry.render_metrics(), "telemark_spans_dropped_total")
}

/// `name value` from a Prometheus exposition (0 when absent).
pub fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Criterion for a suite whose cases need telemark started (without the
/// endpoints; with its `metrics` recorder when the feature is on), kept
/// for the whole run, as in a real service.
pub fn criterion_with_telemetry() -> criterion::Criterion {
    let telemetry = telemark::builder!()
        .without_server()
        .start()
        .expect("telemetry");
    std::mem::forget(telemetry);
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}
