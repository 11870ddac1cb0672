//! Traces: what `#[traced]` records, how spans are sampled and exported.

mod console;
pub(crate) mod pipeline;
mod sampler;
pub(crate) mod span;

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SpanExporter;
use opentelemetry_sdk::Resource;

pub use console::ConsoleExporter;
pub use pipeline::BatchLimits;
pub use sampler::{Root, Sampler, SamplerError};

type Installer = Box<
    dyn FnOnce(
            &Resource,
            Sampler,
            BatchLimits,
        ) -> Result<pipeline::PipelineHandle, crate::TelemetryError>
        + Send,
>;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// assert!(telemark_runtime::OtlpProtocol::from_env().is_ok());
    /// ```
    pub fn from_env() -> Result<Self, crate::TelemetryError> {
        let value = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        match value.trim() {
            "" | "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            other => Err(crate::TelemetryError::Config(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported; use grpc or http/protobuf"
            ))),
        }
    }
}

fn otlp_exporter(
    protocol: OtlpProtocol,
    endpoint: Option<String>,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
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
    built.map_err(|error| format!("cannot build the OTLP span exporter: {error}"))
}

/// Where `#[traced]` spans go, and how they are sampled. Pass it to
/// [`TelemetryBuilder::traces`](crate::TelemetryBuilder::traces).
///
/// ```no_run
/// use telemark_runtime::{Sampler, Traces};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _telemetry = telemark_runtime::builder!()
///     .traces(Traces::console().sampler(Sampler::TraceIdRatio(0.1)).environment("staging"))
///     .start()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct Traces {
    installer: Installer,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) environment: Option<String>,
    pub(crate) resource: Vec<KeyValue>,
    pub(crate) limits: BatchLimits,
}

impl fmt::Debug for Traces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traces")
            .field("sampler", &self.sampler)
            .field("environment", &self.environment)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Traces {
    /// Spans printed to standard output, one line each.
    pub fn console() -> Self {
        Self::exporter(ConsoleExporter::stdout())
    }

    /// Spans sent over OTLP, configured by the standard environment:
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, the default, or
    /// `http/protobuf`) and `OTEL_EXPORTER_OTLP_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (default `http://localhost:4317`
    /// for gRPC, `http://localhost:4318` for HTTP). Invalid values make
    /// `start()` fail.
    pub fn otlp() -> Self {
        Self::with_installer(|resource, sampler, limits| {
            let protocol = OtlpProtocol::from_env()?;
            pipeline::install(
                move || otlp_exporter(protocol, None),
                resource,
                sampler,
                limits,
            )
        })
    }

    /// Spans sent over OTLP/gRPC to `endpoint` (e.g. `http://127.0.0.1:4317`).
    pub fn otlp_grpc(endpoint: impl Into<String>) -> Self {
        Self::otlp_to(OtlpProtocol::Grpc, endpoint.into())
    }

    /// Spans sent over OTLP/HTTP with protobuf bodies to `endpoint`, the full
    /// URL (e.g. `http://127.0.0.1:4318/v1/traces`).
    pub fn otlp_http(endpoint: impl Into<String>) -> Self {
        Self::otlp_to(OtlpProtocol::HttpProtobuf, endpoint.into())
    }

    fn otlp_to(protocol: OtlpProtocol, endpoint: String) -> Self {
        Self::with_installer(move |resource, sampler, limits| {
            pipeline::install(
                move || otlp_exporter(protocol, Some(endpoint)),
                resource,
                sampler,
                limits,
            )
        })
    }

    /// [`Traces::otlp`] when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, else [`Traces::console`].
    pub fn from_env() -> Self {
        let configured = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
        if configured {
            Self::otlp()
        } else {
            Self::console()
        }
    }

    /// Spans handed to any OpenTelemetry SDK exporter (in-memory, custom, …).
    pub fn exporter<E: SpanExporter + 'static>(exporter: E) -> Self {
        Self::with_installer(move |resource, sampler, limits| {
            pipeline::install(move || Ok(exporter), resource, sampler, limits)
        })
    }

    fn with_installer(
        installer: impl FnOnce(
                &Resource,
                Sampler,
                BatchLimits,
            ) -> Result<pipeline::PipelineHandle, crate::TelemetryError>
            + Send
            + 'static,
    ) -> Self {
        Traces {
            installer: Box::new(installer),
            sampler: None,
            environment: None,
            resource: Vec::new(),
            limits: BatchLimits::default(),
        }
    }

    /// The sampler. Default: from `OTEL_TRACES_SAMPLER` /
    /// `OTEL_TRACES_SAMPLER_ARG`, else parent-based always-on.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Sets `deployment.environment.name` on the resource.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Adds a resource attribute (also read from `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn resource_attribute(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.resource.push(KeyValue::new(key, value.into()));
        self
    }

    /// Queue and batch sizes of the export thread.
    pub fn batch_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn install(
        self,
        service_name: &str,
    ) -> Result<pipeline::PipelineHandle, crate::TelemetryError> {
        let limits = &self.limits;
        if limits.max_queue_size == 0
            || limits.max_export_batch_size == 0
            || limits.scheduled_delay.is_zero()
            || limits.export_timeout.is_zero()
        {
            return Err(crate::TelemetryError::Config(format!(
                "batch limits must all be positive: {limits:?}"
            )));
        }
        validate_resource_attributes_env()?;
        let sampler = match self.sampler {
            Some(sampler) => sampler,
            None => Sampler::from_env()
                .map_err(|error| crate::TelemetryError::Config(error.to_string()))?,
        };
        let mut resource = Resource::builder().with_service_name(service_name.to_owned());
        if let Some(environment) = self.environment {
            resource =
                resource.with_attribute(KeyValue::new("deployment.environment.name", environment));
        }
        let resource = resource.with_attributes(self.resource).build();
        (self.installer)(&resource, sampler, self.limits)
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES` must be `key=value` pairs separated by commas
/// (the SDK would skip malformed entries silently).
fn validate_resource_attributes_env() -> Result<(), crate::TelemetryError> {
    let Ok(value) = std::env::var("OTEL_RESOURCE_ATTRIBUTES") else {
        return Ok(());
    };
    for entry in value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
    {
        match entry.split_once('=') {
            Some((key, _)) if !key.trim().is_empty() => {}
            _ => {
                return Err(crate::TelemetryError::Config(format!(
                    "OTEL_RESOURCE_ATTRIBUTES entry {entry:?} is not key=value"
                )))
            }
        }
    }
    Ok(())
}

/// Whether `OTEL_SDK_DISABLED` asks for no telemetry SDK (tracing off).
pub(crate) fn sdk_disabled_by_env() -> Result<bool, crate::TelemetryError> {
    match std::env::var("OTEL_SDK_DISABLED") {
        Err(_) => Ok(false),
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            other => Err(crate::TelemetryError::Config(format!(
                "OTEL_SDK_DISABLED={other:?} is neither true nor false"
            ))),
        },
    }
}
