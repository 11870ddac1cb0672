//! Span export over OTLP (gRPC, or HTTP with protobuf bodies), with TLS
//! (with the `tls` feature), headers, gzip and a timeout, configured in
//! code or by the standard `OTEL_EXPORTER_OTLP_*` environment.

mod settings;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};

use super::error::TraceError;
use crate::error::ConfigError;
pub(crate) use settings::{Settings, Signal};

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
        OtlpProtocol::from_env_for(Signal::Traces)
    }

    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub(crate) fn from_env_for(signal: Signal) -> Result<Self, ConfigError> {
        let [_, generic] = signal.variables("PROTOCOL");
        let (variable, value) = signal.env("PROTOCOL").unwrap_or((generic, String::new()));
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

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpCompression {
    /// Not compressed (the default).
    None,
    /// gzip.
    Gzip,
}

/// Where and how spans are sent over OTLP. Anything not set here comes
/// from the standard environment (`OTEL_EXPORTER_OTLP_TRACES_*`, else
/// `OTEL_EXPORTER_OTLP_*`) when telemetry starts, which fails with an error
/// naming the variable if a value is bad. Pass it to
/// [`Traces::otlp_with`](super::Traces::otlp_with).
///
/// ```no_run
/// use telemark_runtime::trace::{Otlp, OtlpCompression, Traces};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let api_key = std::env::var("BACKEND_API_KEY")?;
/// let _telemetry = telemark_runtime::builder!()
///     .traces(Traces::otlp_with(
///         Otlp::http("https://api.backend.example/v1/traces")
///             .header("x-api-key", api_key)
///             .compression(OtlpCompression::Gzip),
///     ))
///     .start()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Otlp {
    protocol: Option<OtlpProtocol>,
    endpoint: Option<String>,
    headers: Vec<(String, String)>,
    compression: Option<OtlpCompression>,
    timeout: Option<Duration>,
    ca_certificate: Option<PathBuf>,
    client_identity: Option<(PathBuf, PathBuf)>,
}

impl Otlp {
    /// Everything from the environment (protocol, endpoint, headers, …).
    pub fn from_env() -> Self {
        Otlp::default()
    }

    /// OTLP over gRPC to `endpoint` (e.g. `https://collector:4317`).
    pub fn grpc(endpoint: impl Into<String>) -> Self {
        Otlp {
            protocol: Some(OtlpProtocol::Grpc),
            endpoint: Some(endpoint.into()),
            ..Otlp::default()
        }
    }

    /// OTLP over HTTP with protobuf bodies to `endpoint`, the full URL
    /// (e.g. `https://collector:4318/v1/traces`).
    pub fn http(endpoint: impl Into<String>) -> Self {
        Otlp {
            protocol: Some(OtlpProtocol::HttpProtobuf),
            endpoint: Some(endpoint.into()),
            ..Otlp::default()
        }
    }

    /// A header (gRPC metadata) sent with every export, such as an API
    /// key; added to those of `OTEL_EXPORTER_OTLP_HEADERS`, replacing one of
    /// the same name. Its value is never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Compression of request bodies (default: `OTEL_EXPORTER_OTLP_COMPRESSION`,
    /// else none).
    pub fn compression(mut self, compression: OtlpCompression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// How long one export request may take (default:
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A PEM file of certificates to trust besides the usual roots, for a
    /// collector with a private CA (default: `OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub fn ca_certificate(mut self, pem: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(pem.into());
        self
    }

    /// A client certificate chain and its private key (PEM files), for
    /// mutual TLS (default: `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and
    /// `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub fn client_identity(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_identity = Some((certificate.into(), key.into()));
        self
    }
}

/// An OTLP span exporter from resolved settings. Runs inside the export
/// thread's runtime (gRPC channels need one).
pub(crate) fn exporter(settings: Settings) -> Result<opentelemetry_otlp::SpanExporter, TraceError> {
    let compression = match settings.compression {
        OtlpCompression::None => None,
        OtlpCompression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
    };
    let built = match settings.protocol {
        OtlpProtocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(settings.endpoint.clone())
                .with_timeout(settings.timeout);
            if !settings.headers.is_empty() {
                let mut headers = http::HeaderMap::new();
                for (name, value) in &settings.headers {
                    let name = http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| header_error(name))?;
                    let value = http::HeaderValue::from_str(value)
                        .map_err(|_| header_error(name.as_str()))?;
                    headers.append(name, value);
                }
                builder = builder.with_metadata(
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers),
                );
            }
            if let Some(compression) = compression {
                builder = builder.with_compression(compression);
            }
            #[cfg(feature = "tls")]
            if settings.uses_tls() {
                builder = builder.with_tls_config(tls::tonic_config(&settings)?);
            }
            builder.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let headers: HashMap<String, String> = settings.headers.iter().cloned().collect();
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(settings.endpoint.clone())
                .with_timeout(settings.timeout)
                .with_headers(headers);
            if let Some(compression) = compression {
                builder = builder.with_compression(compression);
            }
            #[cfg(feature = "tls")]
            let connector = tls::https_connector(&settings)?;
            #[cfg(not(feature = "tls"))]
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let client =
                opentelemetry_http::hyper::HyperClient::new(connector, settings.timeout, None);
            builder.with_http_client(client).build()
        }
    };
    built.map_err(|error| TraceError::Exporter(Box::new(error)))
}

fn header_error(name: &str) -> TraceError {
    TraceError::Config(ConfigError::new(
        "OTLP header",
        name.to_owned(),
        "cannot be sent as gRPC metadata",
    ))
}
