//! Two functions configuring one breaker name differently: telemetry refuses
//! to start and names both (its own test binary, as the conflict is global).

#[derive(Debug)]
struct Refused;

impl From<telemark::BreakerError> for Refused {
    fn from(_: telemark::BreakerError) -> Self {
        Refused
    }
}

#[telemark::circuit_breaker(name = "inventory", consecutive_failures = 3)]
fn reserve() -> Result<(), Refused> {
    Ok(())
}

#[telemark::circuit_breaker(name = "inventory", consecutive_failures = 10)]
fn release() -> Result<(), Refused> {
    Ok(())
}

#[test]
fn conflicting_configurations_for_one_name_stop_telemetry_from_starting() {
    let error = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .start()
        .expect_err("two configurations for one breaker");
    let message = error.to_string();
    for expected in ["inventory", "reserve", "release"] {
        assert!(message.contains(expected), "{message}");
    }
    // The functions still work: the first configuration (by module and name) wins.
    reserve().unwrap();
    release().unwrap();
    let breaker = telemark::CircuitBreaker::named("inventory").unwrap();
    assert_eq!(
        breaker.config(),
        &telemark::breaker::BreakerConfig::new().consecutive_failures(10)
    );
}
