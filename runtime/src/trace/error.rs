//! Why tracing could not start.

use std::fmt;

use crate::error::ConfigError;

/// Why tracing could not start (returned inside
/// [`TelemetryError::Traces`](crate::telemetry::TelemetryError::Traces)).
///
/// ```
/// use telemark_runtime::trace::TraceError;
/// use telemark_runtime::telemetry::ConfigError;
///
/// let error = TraceError::Config(ConfigError::new("OTEL_TRACES_SAMPLER", "sometimes", "not a sampler"));
/// assert!(std::error::Error::source(&error).is_some());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TraceError {
    /// A setting (an `OTEL_*` environment variable or a builder value) is invalid.
    Config(ConfigError),
    /// The span exporter could not be built (an invalid OTLP endpoint, say).
    Exporter(Box<dyn std::error::Error + Send + Sync>),
    /// The export thread or its async runtime could not start.
    Thread(std::io::Error),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Config(error) => write!(f, "invalid trace setting: {error}"),
            TraceError::Exporter(error) => write!(f, "cannot build the span exporter: {error}"),
            TraceError::Thread(error) => write!(f, "cannot start the span export thread: {error}"),
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Config(error) => Some(error),
            TraceError::Exporter(error) => Some(&**error),
            TraceError::Thread(error) => Some(error),
        }
    }
}

impl From<ConfigError> for TraceError {
    fn from(error: ConfigError) -> Self {
        TraceError::Config(error)
    }
}
