//! The standard `OTEL_*` environment of OTLP export: the signal-specific
//! variable wins over the generic one, and a bad value stops `start()` with
//! an error naming its variable (never showing a header's value). Its own
//! test binary: it changes the process's environment.
#![cfg(all(feature = "otlp", not(feature = "disable-instrumentation")))]

mod common;

use telemark::trace::{Otlp, Traces};

fn start_with(traces: Traces) -> Result<telemark::Telemetry, String> {
    telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .traces(traces)
        .start()
        .map_err(|error| common::error_chain(&error))
}

/// `start()` fails with `variable` in the message.
fn refused(variable: &str, value: &str, expected_in_message: &str) {
    std::env::set_var(variable, value);
    let error = start_with(Traces::otlp()).expect_err(variable);
    std::env::remove_var(variable);
    assert!(error.contains(variable), "{error}");
    assert!(error.contains(expected_in_message), "{error}");
}

#[test]
fn bad_values_are_errors_naming_their_variable_and_the_signal_variable_wins() {
    let http = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
    for (name, value) in http {
        std::env::set_var(name, value);
    }
    refused("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "gzip or none");
    refused(
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "zip",
        "gzip or none",
    );
    refused("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds");
    refused("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "milliseconds");
    refused(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "ftp://collector",
        "http:// or https://",
    );
    refused("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url", "URL");
    refused("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/tmp/key.pem", "both");
    refused("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "whole number");
    refused("OTEL_BSP_SCHEDULE_DELAY", "-5", "milliseconds");
    refused("OTEL_BSP_EXPORT_TIMEOUT", "0", "milliseconds");
    refused(
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "100000",
        "larger than the queue",
    );
    #[cfg(feature = "tls")]
    {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1");
        refused(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "/no/such/ca.pem",
            "cannot read it",
        );
        std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    // A header list: the value is never shown, even when it is wrong.
    std::env::set_var("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret,broken");
    let error = start_with(Traces::otlp()).expect_err("a bad header list");
    assert!(
        error.contains("OTEL_EXPORTER_OTLP_HEADERS") && error.contains("entry 2"),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "a header value leaked: {error}");

    // The signal-specific variable wins: a good one hides a bad generic one.
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=fine");
    std::env::set_var("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli");
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip");
    std::env::set_var("OTEL_EXPORTER_OTLP_TIMEOUT", "never");
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500");
    let telemetry = start_with(Traces::otlp()).expect("the signal-specific values are good");
    telemetry.shutdown();

    // What the code sets wins over the environment.
    std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zip");
    let otlp = Otlp::http("http://127.0.0.1:4318/v1/traces")
        .compression(telemark::trace::OtlpCompression::Gzip)
        .timeout(std::time::Duration::from_secs(1))
        .header("x-team", "payments");
    let telemetry = start_with(Traces::otlp_with(otlp)).expect("the code's values win");
    telemetry.shutdown();
    let error = start_with(Traces::otlp_with(Otlp::from_env().header("bad name", "1")))
        .expect_err("a bad header name");
    assert!(error.contains("not a valid header name"), "{error}");
}
