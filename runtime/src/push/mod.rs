//! OTLP metrics push: every series `/metrics` serves (the function,
//! breaker, HTTP, process and `metrics`-facade families) sent to an
//! OpenTelemetry collector on an interval, over gRPC or HTTP with the
//! same TLS, header and compression settings as span export.
//!
//! A push thread renders the exposition, converts it (`convert`) and sends
//! it (`transport`). An export that fails or times out is counted
//! (`telemark_metric_exports_failed_total`, with its points in
//! `telemark_metric_points_dropped_total`) and the next one goes on,
//! carrying the totals again (cumulative) or the changes since the last
//! export the collector took (delta): nothing is lost but the time points.
//! Shutting down (or dropping the `Telemetry` guard) pushes a last time.
//!
//! ```no_run
//! use telemark_runtime::push::{MetricsPush, Temporality};
//! use telemark_runtime::trace::Otlp;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let _telemetry = telemark_runtime::builder!()
//!     .metrics_push(
//!         MetricsPush::otlp_with(Otlp::grpc("http://collector:4317"))
//!             .interval(std::time::Duration::from_secs(10))
//!             .temporality(Temporality::Delta),
//!     )
//!     .start()?;
//! # Ok(()) }
//! ```

mod convert;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use convert::Temporality;

use crate::clock::unix_nanos;
use crate::error::ConfigError;
use crate::metrics::ExpositionFormat;
use crate::report::{Report, METRIC_EXPORTS, METRIC_EXPORTS_FAILED, METRIC_POINTS_DROPPED};
use crate::trace::otlp::transport::Transport;
use crate::trace::otlp::{Settings, Signal};
use crate::trace::pipeline::whole_milliseconds;
use crate::trace::Otlp;

/// The interval when neither the code nor `OTEL_METRIC_EXPORT_INTERVAL`
/// sets one (the specification's).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// How long one export may take in all when neither the code nor
/// `OTEL_METRIC_EXPORT_TIMEOUT` says (the specification's).
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how often telemark pushes its metrics over OTLP. Anything not
/// set here comes from the standard environment when telemetry starts:
/// `OTEL_EXPORTER_OTLP_METRICS_*` (else `OTEL_EXPORTER_OTLP_*`) for the
/// endpoint, protocol, headers, compression, timeout and TLS files;
/// `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_METRIC_EXPORT_TIMEOUT`
/// (milliseconds); `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`
/// (`cumulative`, the default, or `delta`; `lowmemory` is treated as
/// `delta`).
///
/// `OTEL_METRICS_EXPORTER`, when set, decides which exporters run,
/// whatever the code says (an operator's switch): `otlp` starts the push
/// without code, and a list without it stops the code's; a list without
/// `prometheus` makes `/metrics` answer 404 (`/health`, `/ready` and
/// `/status` stay). Its other values (`console`, `logging`) are refused.
#[derive(Debug, Clone, Default)]
pub struct MetricsPush {
    otlp: Otlp,
    interval: Option<Duration>,
    export_timeout: Option<Duration>,
    temporality: Option<Temporality>,
}

impl MetricsPush {
    /// Everything from the environment.
    pub fn otlp() -> Self {
        MetricsPush::default()
    }

    /// To the collector `otlp` describes (what it leaves unset comes from
    /// the environment, as for spans).
    pub fn otlp_with(otlp: Otlp) -> Self {
        MetricsPush {
            otlp,
            ..MetricsPush::default()
        }
    }

    /// How often to push (more than zero).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// How long one export may take in all, retries included (more than
    /// zero).
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = Some(timeout);
        self
    }

    /// Cumulative (totals, the default) or delta (changes since the
    /// previous push) sums and histograms.
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = Some(temporality);
        self
    }

    /// The settings, completed from the environment and checked.
    fn resolve(&self) -> Result<Resolved, ConfigError> {
        let positive = |setting: &'static str, value: Option<Duration>| match value {
            Some(value) if value.is_zero() => {
                Err(ConfigError::new(setting, "0s", "must be longer than zero"))
            }
            other => Ok(other),
        };
        let interval = match positive("MetricsPush::interval", self.interval)? {
            Some(interval) => interval,
            None => match env("OTEL_METRIC_EXPORT_INTERVAL") {
                Some(value) => whole_milliseconds("OTEL_METRIC_EXPORT_INTERVAL", &value)?,
                None => DEFAULT_INTERVAL,
            },
        };
        let export_timeout = match positive("MetricsPush::export_timeout", self.export_timeout)? {
            Some(timeout) => timeout,
            None => match env("OTEL_METRIC_EXPORT_TIMEOUT") {
                Some(value) => whole_milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", &value)?,
                None => DEFAULT_EXPORT_TIMEOUT,
            },
        };
        let variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        let temporality = match self.temporality {
            Some(temporality) => temporality,
            None => match env(variable) {
                None => Temporality::Cumulative,
                Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                    "cumulative" => Temporality::Cumulative,
                    "delta" | "lowmemory" => Temporality::Delta,
                    _ => {
                        return Err(ConfigError::new(
                            variable,
                            value,
                            "expected cumulative, delta or lowmemory",
                        ))
                    }
                },
            },
        };
        Ok(Resolved {
            otlp: Settings::resolve_for(&self.otlp, Signal::Metrics)?,
            interval,
            export_timeout,
            temporality,
        })
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// A push's settings, resolved.
struct Resolved {
    otlp: Settings,
    interval: Duration,
    export_timeout: Duration,
    temporality: Temporality,
}

/// What `OTEL_METRICS_EXPORTER` asks for, when it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exporters {
    pub otlp: bool,
    pub prometheus: bool,
}

/// `OTEL_METRICS_EXPORTER`: a comma-separated list of `otlp`, `prometheus`
/// and `none`; `None` when unset.
pub(crate) fn exporters_from_env() -> Result<Option<Exporters>, ConfigError> {
    let variable = "OTEL_METRICS_EXPORTER";
    let Some(value) = env(variable) else {
        return Ok(None);
    };
    let mut exporters = Exporters {
        otlp: false,
        prometheus: false,
    };
    for name in value
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
    {
        match name.as_str() {
            "otlp" => exporters.otlp = true,
            "prometheus" => exporters.prometheus = true,
            "none" | "" => {}
            _ => {
                return Err(ConfigError::new(
                    variable,
                    value.clone(),
                    "telemark exports metrics with otlp and prometheus (or none)",
                ))
            }
        }
    }
    Ok(Some(exporters))
}

/// Why the push could not start.
pub(crate) type PushError = Box<dyn std::error::Error + Send + Sync>;

/// The running push thread.
pub(crate) struct PushHandle {
    /// Tells the thread to push once more (within the given time) and stop.
    stop: tokio::sync::mpsc::UnboundedSender<Duration>,
    /// Says the thread has stopped (in a mutex: `Telemetry` is `Sync`).
    stopped: std::sync::Mutex<mpsc::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PushHandle {
    /// Asks for a last push within `timeout` (an export under way is
    /// abandoned for it); [`PushHandle::wait`] then waits for it.
    pub(crate) fn stop(&self, timeout: Duration) {
        let _ = self.stop.send(timeout);
    }

    /// Waits up to `timeout` for the thread to stop (it is left behind,
    /// still bounded by the last push's time, if it takes longer).
    pub(crate) fn wait(mut self, timeout: Duration) {
        self.join_within(timeout);
    }

    /// Joins the thread if it says it stopped within `timeout`; else
    /// leaves it behind. Either way the handle no longer holds it.
    fn join_within(&mut self, timeout: Duration) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let stopped = match self.stopped.get_mut() {
            Ok(stopped) => stopped,
            Err(poisoned) => poisoned.into_inner(),
        };
        if stopped.recv_timeout(timeout).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for PushHandle {
    /// Dropped without [`PushHandle::wait`] (the `Telemetry` guard
    /// dropped): a last push, waited for up to five seconds.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let timeout = Duration::from_secs(5);
            self.stop(timeout);
            self.join_within(timeout);
        }
    }
}

/// Starts pushing `report`'s metrics as `push` says, the resource named
/// `service_name` (with `OTEL_RESOURCE_ATTRIBUTES`). The thread builds its
/// runtime and transport itself, and says whether it could.
pub(crate) fn start(
    push: &MetricsPush,
    report: Arc<Report>,
    service_name: &str,
) -> Result<PushHandle, PushError> {
    let resolved = push.resolve()?;
    let resource = resource(service_name, &report.build.version);
    let started_nanos = unix_nanos(SystemTime::now())
        .saturating_sub(u64::try_from(report.started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let (stop, mut stop_received) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let (stopped_sent, stopped) = mpsc::channel::<()>();
    let (ready_sent, ready) = mpsc::channel::<Result<(), PushError>>();
    let thread = std::thread::Builder::new()
        .name("telemark-metrics".into())
        .spawn(move || {
            let built = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(PushError::from)
                .and_then(|runtime| {
                    let transport = {
                        let _context = runtime.enter();
                        Transport::new(&resolved.otlp, Signal::Metrics)?
                    };
                    Ok((runtime, transport))
                });
            let (runtime, transport) = match built {
                Ok(built) => {
                    let _ = ready_sent.send(Ok(()));
                    built
                }
                Err(error) => {
                    let _ = ready_sent.send(Err(error));
                    return;
                }
            };
            let mut converter = convert::Converter::new(resolved.temporality, started_nanos);
            runtime.block_on(async {
                let mut next = tokio::time::Instant::now() + resolved.interval;
                loop {
                    let last_within = tokio::select! {
                        _ = tokio::time::sleep_until(next) => None,
                        stop = stop_received.recv() => Some(stop),
                    };
                    let within = match last_within {
                        None => resolved.export_timeout,
                        // Asked to stop: one last push. Dropped: stop.
                        Some(Some(within)) => within.min(resolved.export_timeout),
                        Some(None) => break,
                    };
                    let exported = export(
                        &report,
                        &mut converter,
                        &resource,
                        &transport,
                        within,
                        last_within.is_none().then_some(&mut stop_received),
                    )
                    .await;
                    if last_within.is_some() {
                        break;
                    }
                    if let Some(within) = exported {
                        // Asked to stop during the export: one last push.
                        let within = within.min(resolved.export_timeout);
                        export(&report, &mut converter, &resource, &transport, within, None).await;
                        break;
                    }
                    next += resolved.interval;
                    let now = tokio::time::Instant::now();
                    if next < now {
                        // Exports took longer than the interval: no catching up.
                        next = now + resolved.interval;
                    }
                }
            });
            let _ = stopped_sent.send(());
        })?;
    match ready.recv() {
        Ok(Ok(())) => Ok(PushHandle {
            stop,
            stopped: std::sync::Mutex::new(stopped),
            thread: Some(thread),
        }),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => Err("the metrics push thread stopped before it started".into()),
    }
}

/// One export within `within`: rendered, converted, sent, counted. With
/// `stop`, a stop request abandons it (counted as failed) and comes back.
async fn export(
    report: &Report,
    converter: &mut convert::Converter,
    resource: &Resource,
    transport: &Transport,
    within: Duration,
    stop: Option<&mut tokio::sync::mpsc::UnboundedReceiver<Duration>>,
) -> Option<Duration> {
    let text = report.render_metrics(ExpositionFormat::PrometheusText);
    let now = unix_nanos(SystemTime::now());
    let (metrics, state) = converter.convert(&text, now);
    let points = metrics.iter().map(points_of).sum::<u64>();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "telemark".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let sending = tokio::time::timeout(
        within,
        transport.send(bytes::Bytes::from(request.encode_to_vec())),
    );
    let (sent, stopped) = match stop {
        Some(stop) => tokio::select! {
            sent = sending => (sent.ok(), None),
            asked = stop.recv() => (None, Some(asked.unwrap_or(Duration::ZERO))),
        },
        None => (sending.await.ok(), None),
    };
    METRIC_EXPORTS.fetch_add(1, Relaxed);
    match sent {
        Some(Ok(rejected)) => {
            // Deltas count from the last export the collector took. Points
            // it rejected (a partial success) are lost: sending them again
            // would count the others twice.
            converter.commit(state, now);
            METRIC_POINTS_DROPPED.fetch_add(rejected.min(points), Relaxed);
        }
        _ => {
            METRIC_EXPORTS_FAILED.fetch_add(1, Relaxed);
            METRIC_POINTS_DROPPED.fetch_add(points, Relaxed);
        }
    }
    stopped
}

/// The data points of one metric, counted as dropped when its export fails.
fn points_of(metric: &Metric) -> u64 {
    let points = match &metric.data {
        Some(metric::Data::Sum(sum)) => sum.data_points.len(),
        Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
        Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
        Some(metric::Data::Summary(summary)) => summary.data_points.len(),
        _ => 0,
    };
    points as u64
}

/// The process's resource: the service's name and version, telemark as
/// the SDK, and `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(service_name: &str, version: &str) -> Resource {
    let sdk = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            version.to_owned(),
        ))
        .build();
    let attributes = sdk
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.to_string(),
            key_strindex: 0,
            value: Some(AnyValue {
                value: Some(match value {
                    opentelemetry::Value::Bool(value) => any_value::Value::BoolValue(*value),
                    opentelemetry::Value::I64(value) => any_value::Value::IntValue(*value),
                    opentelemetry::Value::F64(value) => any_value::Value::DoubleValue(*value),
                    other => any_value::Value::StringValue(other.to_string()),
                }),
            }),
        })
        .collect();
    Resource {
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_errors_naming_them() {
        let zero = MetricsPush::otlp().interval(Duration::ZERO).resolve();
        assert_eq!(zero.err().unwrap().setting(), "MetricsPush::interval");
        let zero = MetricsPush::otlp().export_timeout(Duration::ZERO).resolve();
        assert_eq!(zero.err().unwrap().setting(), "MetricsPush::export_timeout");
        let resolved = MetricsPush::otlp_with(Otlp::http("http://collector:4318/v1/metrics"))
            .interval(Duration::from_millis(1500))
            .temporality(Temporality::Delta)
            .resolve()
            .unwrap();
        assert_eq!(resolved.interval, Duration::from_millis(1500));
        assert_eq!(resolved.temporality, Temporality::Delta);
        assert_eq!(resolved.otlp.endpoint, "http://collector:4318/v1/metrics");
    }
}
