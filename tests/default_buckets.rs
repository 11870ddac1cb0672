//! Process-wide default buckets (its own test binary: it sets global state).
#![cfg(not(feature = "disable-instrumentation"))]

#[telemark::timed]
fn quick() {}

#[test]
fn global_buckets_apply_until_the_first_recorded_call() {
    let telemetry = telemark::builder!()
        .without_server()
        .duration_buckets(&[0.25, 1.0, 4.0])
        .start()
        .unwrap();
    quick();
    let text = telemetry.render_metrics();
    let service = telemetry.service_name();
    for le in ["0.25", "1", "4", "+Inf"] {
        let line = format!(
            "function_calls_duration_seconds_bucket{{function=\"quick\",module=\"default_buckets\",service_name=\"{service}\",le=\"{le}\"}} 1"
        );
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert!(!text.contains("le=\"0.005\""), "{text}");
    assert_eq!(
        telemark::metrics::set_default_buckets(&[0.5, 2.0]),
        Err(telemark::metrics::BucketError::AlreadyRecorded)
    );
    assert_eq!(
        telemark::metrics::set_default_buckets(&[0.25, 1.0, 4.0]),
        Ok(())
    );
}
