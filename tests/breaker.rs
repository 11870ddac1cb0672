//! `#[circuit_breaker]` as users call it: refusals through their own error
//! type, classification, fallback, shared names, timeouts, retry timing on
//! tokio's paused clock, metrics, `/status` and span events.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry_sdk::trace::SpanData;
use telemark::breaker::{BreakerConfig, BreakerState, ManualClock};
use telemark::{circuit_breaker, traced, BreakerError, CircuitBreaker};

use common::span_fixture as fixture;

fn metric_line(name: &str, labels: &str) -> Option<f64> {
    let text = fixture().telemetry.render_metrics();
    let prefix = format!("{name}{{{labels}");
    text.lines()
        .find(|line| line.starts_with(&prefix))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
}

#[derive(Debug, Clone, PartialEq)]
enum CallError {
    Refused(BreakerError),
    Down,
    NotFound,
    BadRequest,
}

impl From<BreakerError> for CallError {
    fn from(error: BreakerError) -> Self {
        CallError::Refused(error)
    }
}

fn is_not_found(error: &CallError) -> bool {
    *error == CallError::NotFound
}

fn is_server_side(error: &CallError) -> bool {
    *error == CallError::Down
}

fn refused(result: Result<u32, CallError>) -> BreakerError {
    match result {
        Err(CallError::Refused(error)) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

// ---- sync: tripping, classification, fallback, sharing ---------------------

#[circuit_breaker(name = "sync-basic", consecutive_failures = 3, open_for = "1h")]
fn sync_call(fail: bool) -> Result<u32, CallError> {
    if fail {
        Err(CallError::Down)
    } else {
        Ok(7)
    }
}

#[test]
fn a_sync_function_is_refused_through_its_own_error_type_once_the_breaker_opens() {
    assert_eq!(sync_call(false), Ok(7));
    for _ in 0..3 {
        assert_eq!(sync_call(true), Err(CallError::Down));
    }
    let error = refused(sync_call(false));
    assert!(error.is_rejected());
    assert_eq!(error.breaker(), "sync-basic");
    assert_eq!(error.state(), Some(BreakerState::Open));
    let breaker = CircuitBreaker::named("sync-basic").unwrap();
    let stats = breaker.stats();
    assert_eq!((stats.successes, stats.failures, stats.rejected), (1, 3, 1));
    breaker.reset();
    assert_eq!(sync_call(false), Ok(7));
}

#[circuit_breaker(name = "classified", consecutive_failures = 2, ignore_if = is_not_found, failure_if = is_server_side)]
fn classified(error: CallError) -> Result<u32, CallError> {
    Err(error)
}

#[test]
fn ignored_errors_and_errors_that_are_not_failures_do_not_trip_it() {
    for _ in 0..10 {
        assert_eq!(classified(CallError::NotFound), Err(CallError::NotFound));
        assert_eq!(
            classified(CallError::BadRequest),
            Err(CallError::BadRequest)
        );
    }
    let breaker = CircuitBreaker::named("classified").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    let stats = breaker.stats();
    assert_eq!(
        (stats.ignored, stats.successes, stats.failures),
        (10, 10, 0)
    );
    classified(CallError::Down).unwrap_err();
    classified(CallError::Down).unwrap_err();
    assert_eq!(breaker.state(), BreakerState::Open);
}

fn cached(error: BreakerError) -> Result<u32, CallError> {
    assert!(error.is_rejected());
    Ok(0)
}

#[circuit_breaker(name = "with-fallback", consecutive_failures = 1, fallback = cached)]
fn with_fallback(fail: bool) -> Result<u32, CallError> {
    if fail {
        Err(CallError::Down)
    } else {
        Ok(9)
    }
}

#[test]
fn the_fallback_answers_refused_calls() {
    assert_eq!(with_fallback(true), Err(CallError::Down));
    assert_eq!(with_fallback(false), Ok(0));
    assert_eq!(
        CircuitBreaker::named("with-fallback")
            .unwrap()
            .stats()
            .rejected,
        1
    );
}

#[circuit_breaker(name = "shared", consecutive_failures = 2, open_for = "1h")]
fn shared_a() -> Result<(), CallError> {
    Err(CallError::Down)
}

#[circuit_breaker(name = "shared")]
fn shared_b() -> Result<(), CallError> {
    Ok(())
}

#[test]
fn functions_with_one_name_share_one_breaker() {
    assert_eq!(shared_b(), Ok(()));
    shared_a().unwrap_err();
    shared_a().unwrap_err();
    assert!(matches!(shared_b(), Err(CallError::Refused(_))));
    let breaker = CircuitBreaker::named("shared").unwrap();
    assert_eq!(breaker.config().open_duration(), Duration::from_secs(3600));
}

struct Client {
    calls: AtomicU32,
}

// In an annotated impl block the breaker sees the type, and a method's
// breaker may go unnamed.
#[telemark::counted]
impl Client {
    #[circuit_breaker]
    fn get(&self) -> Result<u32, std::io::Error> {
        Ok(self.calls.fetch_add(1, SeqCst))
    }
}

#[test]
fn an_unnamed_breaker_is_named_after_its_function_and_io_errors_carry_refusals() {
    let client = Client {
        calls: AtomicU32::new(0),
    };
    assert_eq!(client.get().unwrap(), 0);
    let name = concat!(module_path!(), "::Client::get");
    let breaker = CircuitBreaker::named(name).expect("registered under its function's path");
    breaker.force_open();
    let error = client.get().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(error.to_string().contains("forced_open"), "{error}");
    breaker.disable();
    assert_eq!(client.get().unwrap(), 1);
    breaker.reset();
}

#[circuit_breaker(name = "clocked", consecutive_failures = 1)]
fn clocked(fail: bool) -> Result<(), CallError> {
    if fail {
        Err(CallError::Down)
    } else {
        Ok(())
    }
}

#[test]
fn a_breaker_registered_in_code_with_a_manual_clock_drives_annotated_functions() {
    let clock = ManualClock::new();
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open_calls(1);
    let breaker = CircuitBreaker::new("clocked", config)
        .unwrap()
        .with_manual_clock(clock.clone());
    CircuitBreaker::register(breaker).unwrap();
    clocked(true).unwrap_err();
    let error = match clocked(false) {
        Err(CallError::Refused(error)) => error,
        other => panic!("{other:?}"),
    };
    assert_eq!(error.retry_after(), Some(Duration::from_secs(5)));
    clock.advance(Duration::from_secs(5));
    assert_eq!(clocked(false), Ok(()));
    let breaker = CircuitBreaker::named("clocked").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(
        breaker.transitions(BreakerState::HalfOpen, BreakerState::Closed),
        1
    );
}

// ---- async: timeouts and retry timing on a paused clock --------------------

#[circuit_breaker(
    name = "slow-dependency",
    consecutive_failures = 2,
    timeout = "50ms",
    open_for = "1h"
)]
async fn slow_dependency(delay_ms: u64) -> Result<u64, CallError> {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(delay_ms)
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_timeout_fails_and_timeouts_open_the_breaker() {
    assert_eq!(slow_dependency(10).await, Ok(10));
    let started = tokio::time::Instant::now();
    let error = match slow_dependency(1000).await {
        Err(CallError::Refused(error)) => error,
        other => panic!("{other:?}"),
    };
    assert!(error.is_timeout());
    // The timeout counts from the call's start in real time, to the
    // millisecond: the paused clock sees 50 ms, or 49 if the first poll was
    // kept off the core for a millisecond or more.
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(49)..=Duration::from_millis(50)).contains(&waited),
        "{waited:?}"
    );
    slow_dependency(1000).await.unwrap_err();
    let breaker = CircuitBreaker::named("slow-dependency").unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.stats().timeouts, 2);
    assert!(refused(slow_dependency(1).await.map(|n| n as u32)).is_rejected());
}

static ATTEMPT_TIMES: Mutex<Vec<tokio::time::Instant>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "flaky-exact",
    consecutive_failures = 100,
    retry(attempts = 5, backoff = "100ms..300ms", jitter = "none")
)]
async fn always_down_exact() -> Result<(), CallError> {
    ATTEMPT_TIMES
        .lock()
        .unwrap()
        .push(tokio::time::Instant::now());
    Err(CallError::Down)
}

fn gaps(times: &[tokio::time::Instant]) -> Vec<Duration> {
    times.windows(2).map(|pair| pair[1] - pair[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn retry_delays_double_from_the_shortest_and_stop_at_the_longest() {
    ATTEMPT_TIMES.lock().unwrap().clear();
    assert_eq!(always_down_exact().await, Err(CallError::Down));
    let times = ATTEMPT_TIMES.lock().unwrap().clone();
    assert_eq!(times.len(), 5);
    assert_eq!(
        gaps(&times),
        [100, 200, 300, 300].map(Duration::from_millis)
    );
    assert_eq!(
        metric_line("retry_attempts_total", "function=\"always_down_exact\""),
        Some(4.0)
    );
}

static JITTERED_TIMES: Mutex<Vec<tokio::time::Instant>> = Mutex::new(Vec::new());

#[circuit_breaker(
    name = "flaky-jitter",
    consecutive_failures = 1000,
    retry(attempts = 4, backoff = "100ms..250ms", jitter = "full")
)]
async fn always_down_jittered() -> Result<(), CallError> {
    JITTERED_TIMES
        .lock()
        .unwrap()
        .push(tokio::time::Instant::now());
    Err(CallError::Down)
}

#[tokio::test(start_paused = true)]
async fn jittered_retry_delays_stay_under_the_exponential_ceiling_and_the_cap() {
    let ceilings = [100, 200, 250].map(Duration::from_millis);
    let mut spread = [false; 2];
    for _ in 0..50 {
        JITTERED_TIMES.lock().unwrap().clear();
        always_down_jittered().await.unwrap_err();
        let times = JITTERED_TIMES.lock().unwrap().clone();
        assert_eq!(times.len(), 4);
        for (gap, ceiling) in gaps(&times).into_iter().zip(ceilings) {
            assert!(gap <= ceiling, "{gap:?} over {ceiling:?}");
            spread[0] |= gap < ceiling / 4;
            spread[1] |= gap > ceiling * 3 / 4;
        }
    }
    assert_eq!(spread, [true, true], "full jitter should spread the delays");
}

static RETRIED_CALLS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "opens-mid-retry", consecutive_failures = 2, open_for = "1h", ignore_if = is_not_found, retry(attempts = 5, backoff = "10ms..10ms"))]
async fn opens_mid_retry(error: CallError) -> Result<(), CallError> {
    RETRIED_CALLS.fetch_add(1, SeqCst);
    // Each attempt runs the body again: what it consumes, it clones.
    Err(error.clone())
}

#[tokio::test(start_paused = true)]
async fn only_failures_are_retried_and_a_refusal_never_is() {
    RETRIED_CALLS.store(0, SeqCst);
    // An ignored error is returned at once.
    assert_eq!(
        opens_mid_retry(CallError::NotFound).await,
        Err(CallError::NotFound)
    );
    assert_eq!(RETRIED_CALLS.load(SeqCst), 1);
    // Two failures open the breaker; the third attempt is refused and the
    // refusal is returned without further attempts.
    let error = match opens_mid_retry(CallError::Down).await {
        Err(CallError::Refused(error)) => error,
        other => panic!("{other:?}"),
    };
    assert!(error.is_rejected());
    assert_eq!(RETRIED_CALLS.load(SeqCst), 3);
}

static SYNC_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "sync-retry",
    consecutive_failures = 100,
    retry(attempts = 3, backoff = "1ms..2ms")
)]
fn sync_retry(succeed_on: u32, label: &str) -> Result<String, CallError> {
    let attempt = SYNC_ATTEMPTS.fetch_add(1, SeqCst) + 1;
    if attempt < succeed_on {
        return Err(CallError::Down);
    }
    Ok(format!("{label} on attempt {attempt}"))
}

#[test]
fn a_sync_retry_returns_the_first_success_and_borrows_its_arguments_each_time() {
    SYNC_ATTEMPTS.store(0, SeqCst);
    let label = String::from("done");
    assert_eq!(sync_retry(2, &label).unwrap(), "done on attempt 2");
    SYNC_ATTEMPTS.store(0, SeqCst);
    assert_eq!(sync_retry(9, &label), Err(CallError::Down));
    assert_eq!(SYNC_ATTEMPTS.load(SeqCst), 3);
}

#[circuit_breaker(name = "panicky", consecutive_failures = 1, open_for = "1h")]
async fn panicky() -> Result<(), CallError> {
    panic!("the dependency client panicked");
}

#[tokio::test]
async fn a_panicking_async_call_counts_as_a_failure_though_the_executor_catches_it() {
    // tokio catches the panic and drops the future afterwards.
    assert!(tokio::spawn(panicky()).await.unwrap_err().is_panic());
    let breaker = CircuitBreaker::named("panicky").unwrap();
    assert_eq!(breaker.stats().failures, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[circuit_breaker(name = "panicky-caught", consecutive_failures = 1, open_for = "1h")]
async fn panicky_caught() -> Result<(), CallError> {
    panic!("the dependency client panicked");
}

#[test]
fn a_panicking_async_call_counts_as_a_failure_when_its_future_is_dropped_after_the_panic() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let mut call = Box::pin(panicky_caught());
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    }));
    assert!(polled.is_err());
    drop(call); // after the panic was caught: not while unwinding
    let breaker = CircuitBreaker::named("panicky-caught").unwrap();
    assert_eq!(breaker.stats().failures, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[circuit_breaker(name = "cancelled", consecutive_failures = 1, open_for = "1h")]
async fn never_answers() -> Result<(), CallError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_async_call_counts_as_ignored() {
    let outer = tokio::time::timeout(Duration::from_secs(1), never_answers()).await;
    assert!(outer.is_err(), "the caller gave up");
    let breaker = CircuitBreaker::named("cancelled").unwrap();
    let stats = breaker.stats();
    assert_eq!((stats.ignored, stats.failures), (1, 0));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[circuit_breaker(name = "sized-untimed")]
async fn untimed_call() -> Result<(), CallError> {
    Ok(())
}

#[circuit_breaker(name = "sized-timed", timeout = "1s")]
async fn timed_call() -> Result<(), CallError> {
    Ok(())
}

#[test]
fn the_call_future_carries_no_timer() {
    // Every call moves its attempt into the caller's future: a timer there
    // would be copied on each call for nothing. A timeout's timer is made
    // (boxed) only when the body first waits: a timed attempt carries its
    // pointer, its start and its breaker's site (24 bytes) more.
    let untimed = std::mem::size_of_val(&untimed_call());
    let timed = std::mem::size_of_val(&timed_call());
    let timer = std::mem::size_of::<tokio::time::Sleep>();
    assert!(
        timed <= untimed + 24 && timed < untimed + timer,
        "untimed {untimed} bytes, timed {timed}, a tokio timer {timer}"
    );
}

#[circuit_breaker(name = "busy-first-poll", timeout = "200ms")]
async fn busy_then_waits() -> Result<(), CallError> {
    // Its first poll works for 300 ms before it waits (forever).
    std::thread::sleep(Duration::from_millis(300));
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn the_timeout_counts_from_the_start_of_the_call() {
    let started = std::time::Instant::now();
    match busy_then_waits().await {
        Err(CallError::Refused(error)) => assert!(error.is_timeout()),
        other => panic!("{other:?}"),
    }
    // Timed out when it first waited, 300 ms in: not 200 ms after that.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(450), "{elapsed:?}");
}

// ---- metrics, /status and spans --------------------------------------------

#[circuit_breaker(name = "observed", consecutive_failures = 1, open_for = "1h")]
fn observed(fail: bool) -> Result<(), CallError> {
    if fail {
        Err(CallError::Down)
    } else {
        Ok(())
    }
}

#[circuit_breaker(name = "never-called")]
fn never_called() -> Result<(), CallError> {
    Ok(())
}

#[test]
fn breaker_series_are_exported_from_the_start_and_follow_the_calls() {
    let labels = "breaker=\"never-called\"";
    assert_eq!(
        metric_line(
            "circuit_breaker_state",
            &format!("{labels},service_name=\"telemark\",state=\"closed\"")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_line(
            "circuit_breaker_calls_total",
            &format!("{labels},service_name=\"telemark\",outcome=\"success\"")
        ),
        Some(0.0)
    );
    never_called().unwrap();

    observed(false).unwrap();
    observed(true).unwrap_err();
    observed(false).unwrap_err();
    let labels = "breaker=\"observed\",service_name=\"telemark\"";
    for (outcome, expected) in [
        ("success", 1.0),
        ("failure", 1.0),
        ("rejected", 1.0),
        ("timeout", 0.0),
    ] {
        assert_eq!(
            metric_line(
                "circuit_breaker_calls_total",
                &format!("{labels},outcome=\"{outcome}\"")
            ),
            Some(expected),
            "{outcome}"
        );
    }
    assert_eq!(
        metric_line("circuit_breaker_state", &format!("{labels},state=\"open\"")),
        Some(1.0)
    );
    assert_eq!(
        metric_line(
            "circuit_breaker_state",
            &format!("{labels},state=\"closed\"")
        ),
        Some(0.0)
    );
    assert_eq!(
        metric_line(
            "circuit_breaker_transitions_total",
            &format!("{labels},from=\"closed\",to=\"open\"")
        ),
        Some(1.0)
    );
    let status = fixture().telemetry.status();
    let entry = status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "observed")
        .expect("/status lists the breaker")
        .clone();
    assert_eq!(entry["state"], "open");
    assert_eq!(entry["rejected"], 1);
    let next_trial = entry["next_trial_in_seconds"].as_f64().unwrap();
    assert!(next_trial > 3500.0 && next_trial <= 3600.0, "{next_trial}");
}

#[traced]
#[circuit_breaker(
    name = "traced-breaker",
    consecutive_failures = 1,
    open_for = "1h",
    retry(attempts = 2, backoff = "1ms..1ms")
)]
fn traced_breaker() -> Result<(), CallError> {
    Err(CallError::Down)
}

fn event_names(span: &SpanData) -> Vec<String> {
    span.events
        .iter()
        .map(|event| event.name.to_string())
        .collect()
}

#[test]
fn refusals_retries_and_transitions_are_events_on_the_calls_span() {
    let fixture = fixture();
    // First call: the attempt fails and opens the breaker, the retry is refused.
    assert!(matches!(traced_breaker(), Err(CallError::Refused(_))));
    // Second call: refused at once.
    assert!(matches!(traced_breaker(), Err(CallError::Refused(_))));
    assert!(fixture.telemetry.flush_traces(Duration::from_secs(5)));
    let spans: Vec<SpanData> = fixture
        .exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|span| span.name == "traced_breaker")
        .collect();
    assert_eq!(
        spans.len(),
        2,
        "{:?}",
        spans.iter().map(event_names).collect::<Vec<_>>()
    );
    assert_eq!(
        event_names(&spans[0]),
        [
            "circuit_breaker.transition",
            "circuit_breaker.retry",
            "circuit_breaker.rejected"
        ]
    );
    assert_eq!(event_names(&spans[1]), ["circuit_breaker.rejected"]);
}
