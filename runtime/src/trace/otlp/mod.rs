//! Span export over OTLP (gRPC, or HTTP with protobuf bodies), with TLS
//! (with the `tls` feature), headers, gzip and a timeout, configured in
//! code or by the standard `OTEL_EXPORTER_OTLP_*` environment.

mod encode;
mod settings;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod transport;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;

use super::error::TraceError;
use super::pipeline::{self, BatchLimits, Batcher, Pipeline};
use super::span::SpanRecord;
use crate::clock::WallClock;
use crate::error::ConfigError;
pub(crate) use settings::{Settings, Signal};
use transport::Transport;

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

/// Spans encoded straight into OTLP requests on the export thread
/// ([`encode`]) and sent by a tokio runtime of one thread beside it, at
/// most `max_concurrent_exports` requests at once: the export thread
/// encodes the next batch while earlier ones are under way.
pub(crate) struct OtlpBatcher {
    encoder: encode::TraceRequestEncoder,
    transport: Arc<Transport>,
    /// A permit per export under way.
    slots: Arc<tokio::sync::Semaphore>,
    max_in_flight: u32,
    /// The exports spawned and perhaps not settled yet.
    underway: Vec<Arc<Underway>>,
    export_timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

/// One export under way: its spans are settled once, by the export when it
/// ends, or as dropped by a shutdown that could not wait for it.
struct Underway {
    count: u64,
    settled: AtomicBool,
}

impl Underway {
    /// Whether the caller is the one to settle the export's spans.
    fn claim(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }
}

impl OtlpBatcher {
    pub(crate) fn new(
        settings: &Settings,
        resource: &Resource,
        limits: &BatchLimits,
    ) -> Result<Self, TraceError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("telemark-spans-io")
            .enable_all()
            .build()
            .map_err(TraceError::Thread)?;
        let (runtime, transport) = pipeline::build_in(runtime, || {
            Transport::new(settings, Signal::Traces).map_err(|error| {
                match error.downcast::<TraceError>() {
                    Ok(error) => *error,
                    Err(error) => TraceError::Exporter(error),
                }
            })
        })?;
        let max_in_flight = u32::try_from(limits.max_concurrent_exports)
            .unwrap_or(u32::MAX)
            .clamp(1, 1 << 16);
        Ok(OtlpBatcher {
            encoder: encode::TraceRequestEncoder::new(resource),
            transport: Arc::new(transport),
            slots: Arc::new(tokio::sync::Semaphore::new(max_in_flight as usize)),
            max_in_flight,
            underway: Vec::new(),
            export_timeout: limits.export_timeout,
            runtime: Some(runtime),
        })
    }

    /// Waits until no export is under way, or `deadline`.
    fn wait_for_exports(&self, deadline: Instant) {
        let Some(runtime) = &self.runtime else { return };
        let within = deadline.saturating_duration_since(Instant::now());
        let _ = runtime.block_on(async {
            tokio::time::timeout(within, self.slots.acquire_many(self.max_in_flight)).await
        });
    }
}

impl Batcher for OtlpBatcher {
    fn add(&mut self, record: SpanRecord, clock: &WallClock) {
        self.encoder.add(record, clock);
    }

    fn len(&self) -> usize {
        self.encoder.len()
    }

    fn export(&mut self, pipeline: &'static Pipeline, deadline: Option<Instant>) {
        if self.encoder.len() == 0 {
            return;
        }
        let count = self.encoder.len() as u64;
        let request = self.encoder.take();
        let limit = pipeline::export_limit(self.export_timeout, deadline);
        let Some(runtime) = self.runtime.as_ref().filter(|_| !limit.is_zero()) else {
            pipeline.settle(count, count);
            return;
        };
        // A free slot, waited for no longer than the export could take.
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => runtime
                .block_on(async {
                    tokio::time::timeout(limit, Arc::clone(&self.slots).acquire_owned()).await
                })
                .ok()
                .and_then(Result::ok),
        };
        let Some(slot) = slot else {
            pipeline::export_ended(
                pipeline,
                count,
                Instant::now(),
                Err("no export under way ended in time to start another".to_owned()),
            );
            return;
        };
        // The export's own time starts now that it can start (none left
        // past a shutdown's deadline: its spans are dropped).
        let within = pipeline::export_limit(self.export_timeout, deadline);
        if within.is_zero() {
            pipeline.settle(count, count);
            return;
        }
        let underway = Arc::new(Underway {
            count,
            settled: AtomicBool::new(false),
        });
        self.underway
            .retain(|other| !other.settled.load(Ordering::Acquire));
        self.underway.push(Arc::clone(&underway));
        let transport = Arc::clone(&self.transport);
        runtime.spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(within, transport.send(request)).await {
                Ok(result) => result,
                Err(_) => Err("export timed out".to_owned()),
            };
            if underway.claim() {
                pipeline::export_ended(pipeline, count, started, result);
            }
            drop(slot);
        });
    }

    fn flush(&mut self, deadline: Instant) {
        self.wait_for_exports(deadline);
    }

    fn shutdown(&mut self, pipeline: &'static Pipeline, deadline: Instant) {
        self.wait_for_exports(deadline);
        // Exports still under way are abandoned: their spans are dropped.
        for underway in self.underway.drain(..) {
            if underway.claim() {
                pipeline.settle(underway.count, underway.count);
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for OtlpBatcher {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
