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
    dyn FnOnce(&Resource, Sampler, BatchLimits) -> std::io::Result<pipeline::PipelineHandle> + Send,
>;

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

    /// Spans handed to any OpenTelemetry SDK exporter (OTLP, in-memory, …).
    pub fn exporter<E: SpanExporter + 'static>(exporter: E) -> Self {
        Traces {
            installer: Box::new(move |resource, sampler, limits| {
                pipeline::install(exporter, resource, sampler, limits)
            }),
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
        (self.installer)(&resource, sampler, self.limits).map_err(crate::TelemetryError::Runtime)
    }
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
