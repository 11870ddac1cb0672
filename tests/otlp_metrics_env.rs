//! The standard environment of the OTLP metrics push:
//! `OTEL_METRICS_EXPORTER` starts it without code and says whether
//! `/metrics` is served; bad values stop `start()` with an error naming
//! their variable. Its own test binary: it changes the process's
//! environment.
#![cfg(all(
    feature = "otlp",
    feature = "server",
    not(feature = "disable-instrumentation")
))]

mod common;

use std::time::Duration;

use telemark::push::MetricsPush;

fn start(push: Option<MetricsPush>) -> Result<telemark::Telemetry, String> {
    let mut builder = telemark::builder!()
        .listen("127.0.0.1:0")
        .metrics_recorder(false);
    if let Some(push) = push {
        builder = builder.metrics_push(push);
    }
    builder.start().map_err(|error| common::error_chain(&error))
}

fn refused(variable: &str, value: &str, expected_in_message: &str) {
    std::env::set_var(variable, value);
    let error = start(Some(MetricsPush::otlp())).expect_err(variable);
    std::env::remove_var(variable);
    assert!(error.contains(variable), "{error}");
    assert!(error.contains(expected_in_message), "{error}");
}

#[test]
fn the_environment_starts_the_push_and_chooses_what_is_served() {
    // Nothing listens there: exports fail, counted.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::env::set_var(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        format!("http://{closed}"),
    );
    std::env::set_var("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "200");

    refused("OTEL_METRICS_EXPORTER", "console", "otlp and prometheus");
    refused("OTEL_METRIC_EXPORT_INTERVAL", "0", "milliseconds");
    refused("OTEL_METRIC_EXPORT_TIMEOUT", "soon", "milliseconds");
    refused(
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "sometimes",
        "cumulative, delta or lowmemory",
    );
    refused(
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "carrier-pigeon",
        "grpc",
    );

    // Unset: no push unless the code asks, and /metrics is served.
    let telemetry = start(None).unwrap();
    let address = telemetry.local_addr().unwrap();
    assert_eq!(common::http_get(address, "/metrics").0, 200);
    assert!(!telemetry
        .render_metrics()
        .contains("telemark_metric_exports_total"));
    telemetry.shutdown();

    // `otlp` alone: pushed without code, /metrics not served, the rest is.
    std::env::set_var("OTEL_METRICS_EXPORTER", "otlp");
    std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "50");
    let telemetry = start(None).unwrap();
    let address = telemetry.local_addr().unwrap();
    let (status, body) = common::http_get(address, "/metrics");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("OTEL_METRICS_EXPORTER"), "{body}");
    assert_eq!(common::http_get(address, "/status").0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !telemetry
        .render_metrics()
        .contains("telemark_metric_exports_failed_total 1")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(telemetry
        .render_metrics()
        .contains("telemark_metric_exports_total"));
    telemetry.shutdown_within(Duration::from_millis(500));

    // Both: pushed and served.
    std::env::set_var("OTEL_METRICS_EXPORTER", "prometheus, otlp");
    let telemetry = start(None).unwrap();
    assert_eq!(
        common::http_get(telemetry.local_addr().unwrap(), "/metrics").0,
        200
    );
    assert!(telemetry
        .render_metrics()
        .contains("telemark_metric_exports_total"));
    telemetry.shutdown_within(Duration::from_millis(500));

    // `none`: the code's push does not start, and /metrics is not served.
    std::env::set_var("OTEL_METRICS_EXPORTER", "none");
    let telemetry = start(Some(MetricsPush::otlp())).unwrap();
    assert_eq!(
        common::http_get(telemetry.local_addr().unwrap(), "/metrics").0,
        404
    );
    assert!(!telemetry
        .render_metrics()
        .contains("telemark_metric_exports_total"));
    telemetry.shutdown();
    std::env::remove_var("OTEL_METRICS_EXPORTER");
}
