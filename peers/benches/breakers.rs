//! A closed circuit breaker's cost per call: telemark's `#[circuit_breaker]`
//! beside failsafe and recloser (sync, and async beside recloser's
//! `AsyncRecloser`), on one thread and with a second thread
//! calling the same breaker, each against an uninstrumented baseline
//! measured in the same run.
//!
//! `cargo bench -p telemark-peers --bench breakers`

use std::hint::black_box;
use std::sync::OnceLock;

use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::CircuitBreaker as _;
use telemark_peers::support::{awaited, calls, contended, ready, CallError};

/// The protected call; inlined into each case, whose own function is the
/// unit measured.
#[inline(always)]
fn work(x: u64) -> Result<u64, CallError> {
    if x == u64::MAX {
        return Err(CallError::Failed);
    }
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::circuit_breaker(name = "peers-async-timeout", timeout = "1s")]
#[inline(always)]
async fn telemark_attribute_async_timeout(x: u64) -> Result<u64, CallError> {
    work(x)
}

#[inline(never)]
fn baseline(x: u64) -> u64 {
    work(x).unwrap_or(0)
}

/// Default rules: consecutive failures.
#[telemark::circuit_breaker(name = "peers-closed")]
#[inline(always)]
fn telemark_attribute(x: u64) -> Result<u64, CallError> {
    work(x)
}

/// A failure-rate rule over a window of 100 calls, as recloser's default.
#[telemark::circuit_breaker(name = "peers-window", failure_rate = 50, window = 100)]
#[inline(always)]
fn telemark_attribute_window(x: u64) -> Result<u64, CallError> {
    work(x)
}

#[inline(never)]
fn telemark_closed(x: u64) -> u64 {
    telemark_attribute(x).unwrap_or(0)
}

#[inline(never)]
fn telemark_window(x: u64) -> u64 {
    telemark_attribute_window(x).unwrap_or(0)
}

#[telemark::circuit_breaker(name = "peers-async")]
#[inline(always)]
async fn telemark_attribute_async(x: u64) -> Result<u64, CallError> {
    work(x)
}

#[inline(never)]
fn baseline_async(x: u64) -> u64 {
    ready(async { work(x) }).unwrap_or(0)
}

#[inline(never)]
fn telemark_async(x: u64) -> u64 {
    ready(telemark_attribute_async(x)).unwrap_or(0)
}

fn async_recloser() -> &'static recloser::AsyncRecloser {
    static BREAKER: OnceLock<recloser::AsyncRecloser> = OnceLock::new();
    BREAKER.get_or_init(|| recloser::AsyncRecloser::from(recloser::Recloser::default()))
}

#[inline(never)]
fn recloser_async(x: u64) -> u64 {
    ready(async_recloser().call(async { work(x) })).unwrap_or(0)
}

fn telemark_api() -> &'static telemark::CircuitBreaker {
    static BREAKER: OnceLock<telemark::CircuitBreaker> = OnceLock::new();
    BREAKER.get_or_init(|| {
        telemark::CircuitBreaker::new("peers-api", telemark::breaker::BreakerConfig::new()).unwrap()
    })
}

#[inline(never)]
fn telemark_call(x: u64) -> u64 {
    match telemark_api().call(|| work(x)) {
        Ok(Ok(value)) => value,
        _ => 0,
    }
}

/// failsafe's default: a success rate over a time window, or else
/// consecutive failures.
type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

fn failsafe_breaker() -> &'static Failsafe {
    static BREAKER: OnceLock<Failsafe> = OnceLock::new();
    BREAKER.get_or_init(|| failsafe::Config::new().build())
}

#[inline(never)]
fn failsafe_call(x: u64) -> u64 {
    failsafe_breaker().call(|| work(x)).unwrap_or(0)
}

fn recloser_breaker() -> &'static recloser::Recloser {
    static BREAKER: OnceLock<recloser::Recloser> = OnceLock::new();
    BREAKER.get_or_init(recloser::Recloser::default)
}

#[inline(never)]
fn recloser_call(x: u64) -> u64 {
    recloser_breaker().call(|| work(x)).unwrap_or(0)
}

/// A named case: the function measured.
type Case = (&'static str, fn(u64) -> u64);

const CASES: [Case; 9] = [
    ("baseline", baseline),
    ("telemark_attribute", telemark_closed),
    ("telemark_attribute_window", telemark_window),
    ("telemark_call", telemark_call),
    ("failsafe", failsafe_call),
    ("recloser", recloser_call),
    ("baseline_async", baseline_async),
    ("telemark_attribute_async", telemark_async),
    ("recloser_async", recloser_async),
];

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed");
    for (name, call) in CASES {
        group.bench_function(name, |b| b.iter(|| call(black_box(7))));
    }
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker_closed_two_threads");
    for (name, call) in CASES {
        contended(call, || group.bench_function(name, |b| b.iter(calls(call))));
    }
    group.finish();
}

/// As `telemark_attribute_async` without the attribute (inlined alike).
#[inline(always)]
async fn baseline_async_fn(x: u64) -> Result<u64, CallError> {
    work(x)
}

fn in_tokio(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("breaker_closed_in_tokio");
    group.bench_function("baseline_async", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, baseline_async_fn))
    });
    group.bench_function("telemark_attribute_async", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, telemark_attribute_async))
    });
    group.bench_function("telemark_attribute_async_with_timeout", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, telemark_attribute_async_timeout))
    });
    group.bench_function("recloser_async", |b| {
        b.iter_custom(|iters| {
            awaited(&runtime, iters, |x| {
                async_recloser().call(async move { work(x) })
            })
        })
    });
    group.finish();
}

criterion_group!(benches, one_thread, two_threads, in_tokio);
criterion_main!(benches);
