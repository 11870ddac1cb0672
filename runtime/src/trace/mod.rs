//! Traces: what `#[traced]` records, how spans are sampled and exported.
//!
//! This folder owns:
//! - `span`: the hot path: sampling decisions, ids, the span record and the
//!   guards generated code creates;
//! - `sampler`: head sampling as the OpenTelemetry samplers define it;
//! - `lane`: each thread's own ring of ended spans, read by the export
//!   thread;
//! - `pipeline`: the bounded queue and the export thread batching spans
//!   (into any `opentelemetry_sdk` span exporter, or into OTLP requests),
//!   counting every export and drop;
//! - `current`: the span user code runs in ([`current_span`], and the span
//!   object in the OpenTelemetry context);
//! - `updates`: what is added to a running span by code that does not hold
//!   it, applied at once on its thread or waiting for it;
//! - `console` and `otlp`: the exporters telemark configures itself (OTLP
//!   requests are encoded straight from span records and sent by telemark's
//!   own gRPC or HTTP transport, several at once);
//! - [`Traces`]: where spans go and how they are sampled.
//!
//! ```no_run
//! use telemark_runtime::trace::{Sampler, Traces};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = telemark_runtime::builder!()
//!     .traces(Traces::from_env().sampler(Sampler::TraceIdRatio(0.1)))
//!     .start()?;
//! # Ok(()) }
//! ```

mod console;
mod current;
pub(crate) mod error;
mod lane;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod pipeline;
mod sampler;
pub(crate) mod span;
mod updates;

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SpanExporter;
use opentelemetry_sdk::Resource;

pub use console::ConsoleExporter;
pub(crate) use current::event_on_current_span;
pub use current::{current_span, CurrentSpan};
pub use error::TraceError;
#[cfg(feature = "otlp")]
pub use otlp::{Otlp, OtlpCompression, OtlpProtocol};
pub use pipeline::BatchLimits;
pub use sampler::{Root, Sampler};

use crate::error::ConfigError;

/// Additions to running spans dropped so far (made off their thread, then
/// too many waiting, or waiting past their span's end).
pub(crate) fn span_updates_dropped() -> u64 {
    updates::UPDATES_DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

type Installer = Box<
    dyn FnOnce(&Resource, Sampler, BatchLimits) -> Result<pipeline::PipelineHandle, TraceError>
        + Send,
>;

/// Where `#[traced]` spans go, and how they are sampled. Pass it to
/// [`TelemetryBuilder::traces`](crate::telemetry::TelemetryBuilder::traces).
///
/// ```no_run
/// use telemark_runtime::trace::{Sampler, Traces};
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
    /// Set in code; else the defaults with the `OTEL_BSP_*` variables.
    pub(crate) limits: Option<BatchLimits>,
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
    /// `http/protobuf`), `OTEL_EXPORTER_OTLP_ENDPOINT`, `_HEADERS`,
    /// `_COMPRESSION`, `_TIMEOUT`, `_CERTIFICATE`, `_CLIENT_CERTIFICATE` and
    /// `_CLIENT_KEY` (each also in its `_TRACES_` form, which wins).
    /// Invalid values make `start()` fail, naming the variable.
    #[cfg(feature = "otlp")]
    pub fn otlp() -> Self {
        Self::otlp_with(Otlp::from_env())
    }

    /// Spans sent over OTLP/gRPC to `endpoint` (e.g. `http://127.0.0.1:4317`).
    #[cfg(feature = "otlp")]
    pub fn otlp_grpc(endpoint: impl Into<String>) -> Self {
        Self::otlp_with(Otlp::grpc(endpoint))
    }

    /// Spans sent over OTLP/HTTP with protobuf bodies to `endpoint`, the full
    /// URL (e.g. `http://127.0.0.1:4318/v1/traces`).
    #[cfg(feature = "otlp")]
    pub fn otlp_http(endpoint: impl Into<String>) -> Self {
        Self::otlp_with(Otlp::http(endpoint))
    }

    /// Spans sent over OTLP as `otlp` says, the environment filling in what
    /// it does not (headers, TLS, compression, timeout; see [`Otlp`]).
    #[cfg(feature = "otlp")]
    pub fn otlp_with(otlp: Otlp) -> Self {
        Self::with_installer(move |resource, sampler, limits| {
            let settings = otlp::Settings::resolve(&otlp)?;
            let batcher = otlp::OtlpBatcher::new(&settings, resource, &limits)?;
            pipeline::install(batcher, sampler, limits)
        })
    }

    /// `Traces::otlp()` when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (an error from `start()`
    /// without the `otlp` feature), else [`Traces::console`].
    pub fn from_env() -> Self {
        let configured = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .into_iter()
        .find(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
        match configured {
            None => Self::console(),
            #[cfg(feature = "otlp")]
            Some(_) => Self::otlp(),
            // An endpoint this build cannot export to: `start()` says so.
            #[cfg(not(feature = "otlp"))]
            Some(variable) => Self::with_installer(move |_, _, _| {
                let value = std::env::var(variable).unwrap_or_default();
                Err(TraceError::Config(ConfigError::new(
                    variable,
                    value,
                    "telemark was built without its `otlp` feature",
                )))
            }),
        }
    }

    /// Spans handed to any OpenTelemetry SDK exporter (in-memory, custom, …).
    pub fn exporter<E: SpanExporter + 'static>(exporter: E) -> Self {
        Self::with_installer(move |resource, sampler, limits| {
            let batcher = pipeline::SdkBatcher::new(move || Ok(exporter), resource, &limits)?;
            pipeline::install(batcher, sampler, limits)
        })
    }

    fn with_installer(
        installer: impl FnOnce(&Resource, Sampler, BatchLimits) -> Result<pipeline::PipelineHandle, TraceError>
            + Send
            + 'static,
    ) -> Self {
        Traces {
            installer: Box::new(installer),
            sampler: None,
            environment: None,
            resource: Vec::new(),
            limits: None,
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
        self.limits = Some(limits);
        self
    }

    pub(crate) fn install(
        self,
        service_name: &str,
    ) -> Result<pipeline::PipelineHandle, TraceError> {
        let limits = match self.limits.clone() {
            Some(limits) => limits,
            None => BatchLimits::from_env()?,
        };
        if limits.max_queue_size == 0
            || limits.max_export_batch_size == 0
            || limits.scheduled_delay.is_zero()
            || limits.export_timeout.is_zero()
            || limits.max_concurrent_exports == 0
        {
            return Err(TraceError::Config(ConfigError::new(
                "batch_limits",
                format!("{limits:?}"),
                "batch limits must all be positive",
            )));
        }
        if limits.max_export_batch_size > limits.max_queue_size {
            return Err(TraceError::Config(ConfigError::new(
                "batch_limits",
                format!("{limits:?}"),
                "a batch cannot be larger than the queue",
            )));
        }
        validate_resource_attributes_env()?;
        let sampler = match self.sampler {
            Some(sampler) => sampler,
            None => Sampler::from_env()?,
        };
        sampler.check()?;
        let mut resource = Resource::builder().with_service_name(service_name.to_owned());
        if let Some(environment) = self.environment {
            resource =
                resource.with_attribute(KeyValue::new("deployment.environment.name", environment));
        }
        let resource = resource.with_attributes(self.resource).build();
        (self.installer)(&resource, sampler, limits)
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES` must be `key=value` pairs separated by commas
/// (the SDK would skip malformed entries silently).
fn validate_resource_attributes_env() -> Result<(), ConfigError> {
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
                let reason = format!("entry {entry:?} is not key=value");
                return Err(ConfigError::new("OTEL_RESOURCE_ATTRIBUTES", value, reason));
            }
        }
    }
    Ok(())
}

/// Whether `OTEL_SDK_DISABLED` asks for no telemetry SDK (tracing off).
pub(crate) fn sdk_disabled_by_env() -> Result<bool, ConfigError> {
    match std::env::var("OTEL_SDK_DISABLED") {
        Err(_) => Ok(false),
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            _ => Err(ConfigError::new(
                "OTEL_SDK_DISABLED",
                value,
                "expected true or false",
            )),
        },
    }
}
