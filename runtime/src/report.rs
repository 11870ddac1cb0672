//! What telemetry reports about the process, built from every subsystem:
//! the `/metrics` text and the `/status` document (served by `server`,
//! and returned by [`Telemetry`](crate::Telemetry) without it).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde_json::json;

use crate::breaker::render::{breakers_status, render_breaker_metrics};
use crate::catalog::{counted_sites, instrumented_functions, timed_sites};
use crate::metrics::exposition::{header, sample};
use crate::metrics::render::{render_build_info, render_function_metrics, BuildInfo};
use crate::trace::pipeline::{SPANS_DROPPED, SPANS_EXPORTED};

/// What telemetry reports about the process.
pub(crate) struct Report {
    pub service_name: String,
    pub build: BuildInfo,
    #[cfg(feature = "metrics-recorder")]
    pub recorder: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub started: Instant,
}

impl Report {
    /// What `/metrics` serves.
    pub(crate) fn render_metrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        let service = &self.service_name;
        render_function_metrics(&mut out, service, counted_sites(), timed_sites());
        render_breaker_metrics(&mut out, service);
        render_build_info(&mut out, service, &self.build);
        render_span_counters(&mut out);
        #[cfg(feature = "metrics-recorder")]
        if let Some(recorder) = &self.recorder {
            recorder.run_upkeep();
            out.push_str(&recorder.render());
        }
        out
    }

    /// What `/status` serves.
    pub(crate) fn status(&self) -> serde_json::Value {
        let functions: Vec<_> = instrumented_functions()
            .into_iter()
            .map(|f| {
                json!({
                    "function": f.function,
                    "module": f.module,
                    "file": f.file,
                    "line": f.line,
                    "attributes": f.attributes,
                    "calls": f.calls,
                    "errors": f.errors,
                    "in_flight": f.in_flight,
                })
            })
            .collect();
        json!({
            "service": self.service_name,
            "version": self.build.version,
            "commit": self.build.commit,
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "instrumentation_enabled": crate::switch::is_enabled(),
            "functions": functions,
            "breakers": breakers_status(),
        })
    }
}

/// `telemark_spans_exported_total` and `telemark_spans_dropped_total`.
fn render_span_counters(out: &mut String) {
    let counters = [
        (
            "telemark_spans_exported_total",
            "Spans handed to the span exporter.",
            &SPANS_EXPORTED,
        ),
        (
            "telemark_spans_dropped_total",
            "Spans lost because the queue was full or the export failed.",
            &SPANS_DROPPED,
        ),
    ];
    for (name, help, count) in counters {
        header(out, name, "counter", help);
        sample(out, name, [], count.load(Relaxed));
    }
}
