//! What telemetry reports about the process, built from every subsystem:
//! the `/metrics` text and the `/status` document (served by `server`,
//! and returned by [`Telemetry`](crate::Telemetry) without it).

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::breaker::render::{render_breaker_metrics, write_breakers_status};
use crate::catalog::{
    counted_sites, gauge_sites, instrumented_functions, timed_sites, value_histogram_sites,
};
use crate::metrics::exemplar::WallClock;
use crate::metrics::exposition::{header, json_key, json_string, sample};
use crate::metrics::openmetrics::{to_openmetrics, ExpositionFormat};
use crate::metrics::process::render_process_metrics;
use crate::metrics::render::{
    render_build_info, render_function_metrics, render_value_metrics, BuildInfo,
};
use crate::trace::pipeline::{EXPORT_NANOS, SPANS_DROPPED, SPANS_EXPORTED};

/// What telemetry reports about the process.
pub(crate) struct Report {
    pub service_name: String,
    pub build: BuildInfo,
    #[cfg(feature = "metrics-recorder")]
    pub recorder: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub started: Instant,
    /// Whether `/metrics` is served (`OTEL_METRICS_EXPORTER` can say not).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub serves_metrics: bool,
    /// Whether metrics are pushed over OTLP (then their export counters
    /// are rendered).
    pub pushes_metrics: bool,
}

/// OTLP metric exports tried, by the push thread.
pub(crate) static METRIC_EXPORTS: AtomicU64 = AtomicU64::new(0);
/// OTLP metric exports that failed or timed out.
pub(crate) static METRIC_EXPORTS_FAILED: AtomicU64 = AtomicU64::new(0);
/// Data points of the failed exports.
pub(crate) static METRIC_POINTS_DROPPED: AtomicU64 = AtomicU64::new(0);

impl Report {
    /// What `/metrics` serves, in `format` (OpenMetrics with exemplars).
    pub(crate) fn render_metrics(&self, format: ExpositionFormat) -> String {
        let started = Instant::now();
        let mut out = String::with_capacity(4096);
        let service = &self.service_name;
        let exemplars = (format == ExpositionFormat::OpenMetrics).then(WallClock::now);
        render_function_metrics(
            &mut out,
            service,
            crate::caller::Caller::TRACKED,
            exemplars.as_ref(),
            counted_sites(),
            timed_sites(),
        );
        render_value_metrics(&mut out, service, value_histogram_sites(), gauge_sites());
        render_breaker_metrics(&mut out, service);
        render_build_info(&mut out, service, &self.build);
        render_span_counters(&mut out);
        render_own_cost(&mut out);
        if self.pushes_metrics {
            render_push_counters(&mut out);
        }
        render_process_metrics(&mut out);
        #[cfg(feature = "tower")]
        {
            crate::integrations::http_server::render_http_server_metrics(&mut out, service);
            crate::integrations::http_client::render_http_client_metrics(&mut out, service);
        }
        #[cfg(feature = "metrics-recorder")]
        if let Some(recorder) = &self.recorder {
            recorder.run_upkeep();
            out.push_str(&recorder.render());
        }
        if format == ExpositionFormat::OpenMetrics {
            out = to_openmetrics(&out);
        }
        let spent = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        RENDER_NANOS.fetch_add(spent, Relaxed);
        out
    }

    /// What `/status` serves, as a JSON document: written out directly,
    /// so that thousands of breakers cost milliseconds.
    pub(crate) fn status_json(&self) -> String {
        let functions = instrumented_functions();
        let mut out = String::with_capacity(4096 + functions.len() * 200);
        out.push('{');
        json_key(&mut out, "service");
        json_string(&mut out, &self.service_name);
        out.push(',');
        json_key(&mut out, "version");
        json_string(&mut out, &self.build.version);
        out.push(',');
        json_key(&mut out, "commit");
        json_string(&mut out, &self.build.commit);
        let uptime = self.started.elapsed().as_secs_f64();
        let enabled = crate::switch::is_enabled();
        let _ = write!(
            out,
            ",\"uptime_seconds\":{uptime},\"instrumentation_enabled\":{enabled},\"functions\":["
        );
        for (i, function) in functions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json_key(&mut out, "function");
            json_string(&mut out, function.function);
            out.push(',');
            json_key(&mut out, "module");
            json_string(&mut out, function.module);
            out.push(',');
            json_key(&mut out, "file");
            json_string(&mut out, function.file);
            out.push(',');
            json_key(&mut out, "attributes");
            out.push('[');
            for (j, attribute) in function.attributes.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_string(&mut out, attribute);
            }
            let _ = write!(
                out,
                "],\"line\":{},\"calls\":{},\"errors\":{},\"in_flight\":{}",
                function.line, function.calls, function.errors, function.in_flight
            );
            if let Some(labels) = &function.computed_labels {
                let _ = write!(
                    out,
                    ",\"computed_labels\":{{\"series\":{},\"cardinality_limit\":{},\"overflow_calls\":{}}}",
                    labels.series, labels.cardinality_limit, labels.overflow_calls
                );
            }
            out.push('}');
        }
        out.push_str("],");
        json_key(&mut out, "breakers");
        write_breakers_status(&mut out);
        out.push('}');
        out
    }

    /// What `/status` serves, parsed.
    pub(crate) fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.status_json()).unwrap_or(serde_json::Value::Null)
    }
}

/// `telemark_spans_exported_total` and `telemark_spans_dropped_total`.
/// Wall time spent rendering `/metrics`, in nanoseconds (each render adds
/// its own after it is written, so a scrape shows the ones before it).
static RENDER_NANOS: AtomicU64 = AtomicU64::new(0);

/// What observability costs the process: time rendering `/metrics` and
/// time in span exports.
fn render_own_cost(out: &mut String) {
    let seconds = |nanos: &AtomicU64| nanos.load(Relaxed) as f64 / 1e9;
    counter(
        out,
        "telemark_render_seconds_total",
        "Time spent rendering /metrics before this scrape, in seconds.",
        seconds(&RENDER_NANOS),
    );
    counter(
        out,
        "telemark_span_export_seconds_total",
        "Time span exports took, each from its start to its end (waiting on the collector included; exports under way at once each count), in seconds.",
        seconds(&EXPORT_NANOS),
    );
}

/// What the OTLP metrics push did.
fn render_push_counters(out: &mut String) {
    counter(
        out,
        "telemark_metric_exports_total",
        "OTLP metric exports tried.",
        METRIC_EXPORTS.load(Relaxed),
    );
    counter(
        out,
        "telemark_metric_exports_failed_total",
        "OTLP metric exports that failed or timed out.",
        METRIC_EXPORTS_FAILED.load(Relaxed),
    );
    counter(
        out,
        "telemark_metric_points_dropped_total",
        "Data points of the OTLP metric exports that failed.",
        METRIC_POINTS_DROPPED.load(Relaxed),
    );
}

/// One unlabelled counter family.
fn counter(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, "counter", help);
    sample(out, name, [], value);
}

fn render_span_counters(out: &mut String) {
    counter(
        out,
        "telemark_spans_exported_total",
        "Spans handed to the span exporter.",
        SPANS_EXPORTED.load(Relaxed),
    );
    counter(
        out,
        "telemark_spans_dropped_total",
        "Spans lost because the queue was full or the export failed.",
        SPANS_DROPPED.load(Relaxed),
    );
    counter(
        out,
        "telemark_span_updates_dropped_total",
        "Additions to spans from other threads dropped: too many waiting, or their span ended first.",
        crate::trace::span_updates_dropped(),
    );
}
