//! Span export over OTLP (gRPC or HTTP with protobuf bodies).

use super::error::TraceError;
use crate::error::ConfigError;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Reads `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` (the default) or `http/protobuf`.
    ///
    /// ```
    /// assert!(telemark_runtime::trace::OtlpProtocol::from_env().is_ok());
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let (variable, value) = [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)))
        .unwrap_or(("OTEL_EXPORTER_OTLP_PROTOCOL", String::new()));
        match value.trim() {
            "" | "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            _ => Err(ConfigError::new(
                variable,
                value,
                "supported protocols are grpc and http/protobuf",
            )),
        }
    }
}

/// An OTLP span exporter for `protocol`, to `endpoint` or where the
/// environment says.
pub(crate) fn otlp_exporter(
    protocol: OtlpProtocol,
    endpoint: Option<String>,
) -> Result<opentelemetry_otlp::SpanExporter, TraceError> {
    use opentelemetry_otlp::WithExportConfig;
    let built = match protocol {
        OtlpProtocol::Grpc => {
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            match endpoint {
                Some(endpoint) => builder.with_endpoint(endpoint).build(),
                None => builder.build(),
            }
        }
        OtlpProtocol::HttpProtobuf => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            match endpoint {
                Some(endpoint) => builder.with_endpoint(endpoint).build(),
                None => builder.build(),
            }
        }
    };
    built.map_err(|error| TraceError::Exporter(Box::new(error)))
}
