//! With the `disable-instrumentation` feature, attributes expand to the
//! unchanged function: nothing is recorded, and only circuit breakers are
//! catalogued. `#[circuit_breaker]` changes what a function does, so it stays.
//! Run with `cargo test --features disable-instrumentation --test compiled_out`.
#![cfg(feature = "disable-instrumentation")]

/// A private objective: still in use (no `dead_code` warning, which CI
/// denies) when the attributes naming it are compiled out.
const ADDING: telemark::Objective = telemark::Objective::new("adding")
    .success_rate(telemark::metrics::ObjectivePercentile::P99)
    .latency(
        std::time::Duration::from_millis(100),
        telemark::metrics::ObjectivePercentile::P90,
    );

#[telemark::counted(name = "still_validated_total", objective = ADDING)]
#[telemark::timed(buckets = [0.1, 1], objective = ADDING)]
fn add(a: u32, b: u32) -> Result<u32, String> {
    a.checked_add(b).ok_or_else(|| "overflow".to_owned())
}

#[test]
fn compiled_out_functions_behave_the_same_and_record_nothing() {
    assert_eq!(add(1, 2), Ok(3));
    assert!(add(u32::MAX, 1).is_err());
    let catalogued = telemark::catalog::instrumented_functions();
    assert!(
        catalogued
            .iter()
            .all(|f| f.attributes == ["circuit_breaker"]),
        "{catalogued:?}"
    );
    let telemetry = telemark::builder!().without_server().start().unwrap();
    assert!(!telemetry.render_metrics().contains("function_calls_total"));
}

#[telemark::counted]
#[telemark::circuit_breaker(name = "kept", consecutive_failures = 1, open_for = "1h")]
fn guarded(fail: bool) -> Result<(), std::io::Error> {
    if fail {
        Err(std::io::Error::other("down"))
    } else {
        Ok(())
    }
}

#[test]
fn circuit_breakers_are_protection_not_instrumentation_and_stay() {
    guarded(true).unwrap_err();
    let refusal = guarded(false).unwrap_err();
    assert_eq!(refusal.kind(), std::io::ErrorKind::ConnectionRefused);
    let breaker = telemark::CircuitBreaker::named("kept").unwrap();
    assert_eq!(breaker.state(), telemark::breaker::BreakerState::Open);
}

#[derive(Clone, Copy, telemark::LabelValue)]
enum Channel {
    Web,
    App,
}

/// `channel` is read by a computed label only: still in use (no
/// `unused_variables` warning) when the attribute is compiled out.
#[telemark::counted(labels(channel = channel, failed = |result: &Result<u8, ()>| result.is_err()))]
fn order(channel: Channel) -> Result<u8, ()> {
    Ok(1)
}

#[test]
fn computed_labels_compile_out_without_evaluating() {
    assert_eq!(order(Channel::Web), Ok(1));
    assert_eq!(order(Channel::App), Ok(1));
}

/// `payload` is read by the recorded value only: still in use when the
/// attribute is compiled out.
#[telemark::histogram(name = "compiled_out_payload_bytes", value = payload.len(), buckets = [1])]
#[telemark::gauge(name = "compiled_out_last", value = |n: &u8| *n)]
fn send(payload: &[u8]) -> u8 {
    7
}

#[test]
fn recorded_values_compile_out_without_evaluating() {
    assert_eq!(send(b"abc"), 7);
    let telemetry = telemark::builder!().without_server().start().unwrap();
    assert!(!telemetry
        .render_metrics()
        .contains("compiled_out_payload_bytes"));
}
