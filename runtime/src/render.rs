//! Prometheus text exposition (format 0.0.4) of the function metrics.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::buckets::format_seconds;
use crate::catalog::{counted_sites, timed_sites};
use crate::site::{HistogramSnapshot, SiteInfo};

/// `build_info` labels.
#[derive(Debug, Clone)]
pub(crate) struct BuildInfo {
    pub version: String,
    pub commit: String,
    pub branch: String,
}

/// Name of the in-flight gauge family.
pub const CONCURRENT_METRIC: &str = "function_calls_concurrent";

fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `{function="…",module="…",service_name="…",extra…,tail…}`.
fn write_labels(out: &mut String, info: &SiteInfo, service: &str, tail: &[(&str, &str)]) {
    out.push('{');
    let base = [
        ("function", info.function),
        ("module", info.module),
        ("service_name", service),
    ];
    let all = base.iter().chain(info.labels).chain(tail);
    for (i, (key, value)) in all.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    out.push('}');
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The identity of a series: two call sites with the same one (a method-level
/// attribute and a free function of one name in one module, two trait impls
/// of one method, …) are rendered as one series with their counts added.
fn identity(
    info: &SiteInfo,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
) {
    (info.metric, info.function, info.module, info.labels)
}

/// Renders every catalogued function's series, zero-valued ones included.
pub(crate) fn render_function_metrics(out: &mut String, service: &str) {
    let mut counters: BTreeMap<&str, Vec<(&SiteInfo, u64, u64)>> = BTreeMap::new();
    for site in counted_sites() {
        let (ok, error) = site.counts();
        let family = counters.entry(site.info.metric).or_default();
        match family
            .iter_mut()
            .find(|(info, _, _)| identity(info) == identity(&site.info))
        {
            Some((_, total_ok, total_error)) => {
                *total_ok += ok;
                *total_error += error;
            }
            None => family.push((&site.info, ok, error)),
        }
    }
    for (name, series) in counters {
        header(
            out,
            name,
            "counter",
            "Calls of instrumented functions by result.",
        );
        for (info, ok, error) in series {
            for (result, value) in [("ok", ok), ("error", error)] {
                out.push_str(name);
                write_labels(out, info, service, &[("result", result)]);
                let _ = writeln!(out, " {value}");
            }
        }
    }

    let mut histograms: BTreeMap<&str, Vec<(&SiteInfo, HistogramSnapshot, i64)>> = BTreeMap::new();
    for site in timed_sites() {
        let snapshot = site.snapshot();
        let in_flight = site.in_flight();
        let family = histograms.entry(site.info.metric).or_default();
        match family
            .iter_mut()
            .find(|(info, _, _)| identity(info) == identity(&site.info))
        {
            // Same identity and bounds: add up. Different bounds cannot be
            // merged; the first site's series stands.
            Some((_, total, total_in_flight)) if total.bounds_nanos == snapshot.bounds_nanos => {
                for (sum, add) in total.cumulative.iter_mut().zip(&snapshot.cumulative) {
                    *sum += add;
                }
                total.sum_nanos = total.sum_nanos.wrapping_add(snapshot.sum_nanos);
                *total_in_flight += in_flight;
            }
            Some(_) => {}
            None => family.push((&site.info, snapshot, in_flight)),
        }
    }
    for (name, series) in &histograms {
        header(
            out,
            name,
            "histogram",
            "Duration of instrumented function calls in seconds.",
        );
        for (info, snap, _) in series {
            for (bound, cumulative) in snap.bounds_nanos.iter().zip(&snap.cumulative) {
                let le = format_seconds(*bound);
                let _ = write!(out, "{name}_bucket");
                write_labels(out, info, service, &[("le", &le)]);
                let _ = writeln!(out, " {cumulative}");
            }
            let _ = write!(out, "{name}_bucket");
            write_labels(out, info, service, &[("le", "+Inf")]);
            let _ = writeln!(out, " {}", snap.count());
            let _ = write!(out, "{name}_sum");
            write_labels(out, info, service, &[]);
            let _ = writeln!(out, " {}", snap.sum_nanos as f64 / 1e9);
            let _ = write!(out, "{name}_count");
            write_labels(out, info, service, &[]);
            let _ = writeln!(out, " {}", snap.count());
        }
    }

    // One gauge per function, whatever its histogram is named.
    let mut gauges: Vec<(&SiteInfo, i64)> = Vec::new();
    for (info, _, in_flight) in histograms.values().flatten() {
        let key = (info.function, info.module, info.labels);
        match gauges
            .iter_mut()
            .find(|(seen, _)| (seen.function, seen.module, seen.labels) == key)
        {
            Some((_, total)) => *total += in_flight,
            None => gauges.push((info, *in_flight)),
        }
    }
    if !gauges.is_empty() {
        header(
            out,
            CONCURRENT_METRIC,
            "gauge",
            "Calls of instrumented functions running now.",
        );
        for (info, in_flight) in gauges {
            out.push_str(CONCURRENT_METRIC);
            write_labels(out, info, service, &[]);
            let _ = writeln!(out, " {in_flight}");
        }
    }
}

/// Renders every breaker's series (those declared by `#[circuit_breaker]`
/// functions at zero from the start) and the retry counters.
pub(crate) fn render_breaker_metrics(out: &mut String, service: &str) {
    use crate::breaker::{BreakerState, CircuitBreaker, Outcome};
    let breakers = CircuitBreaker::all();
    if breakers.is_empty() {
        return;
    }
    let labels = |out: &mut String, breaker: &str, tail: &[(&str, &str)]| {
        out.push_str("{breaker=\"");
        escape_label_value(breaker, out);
        out.push_str("\",service_name=\"");
        escape_label_value(service, out);
        out.push('"');
        for (key, value) in tail {
            let _ = write!(out, ",{key}=\"{value}\"");
        }
        out.push('}');
    };
    let name = "circuit_breaker_calls_total";
    header(
        out,
        name,
        "counter",
        "Calls through each circuit breaker by outcome.",
    );
    for breaker in &breakers {
        for outcome in Outcome::ALL {
            out.push_str(name);
            labels(out, breaker.name(), &[("outcome", outcome.label())]);
            let _ = writeln!(out, " {}", breaker.outcome_count(outcome));
        }
    }
    let name = "circuit_breaker_state";
    header(
        out,
        name,
        "gauge",
        "1 for each circuit breaker's current state, 0 for the others.",
    );
    for breaker in &breakers {
        let state = breaker.state();
        for candidate in BreakerState::ALL {
            out.push_str(name);
            labels(out, breaker.name(), &[("state", candidate.label())]);
            let _ = writeln!(out, " {}", u8::from(candidate == state));
        }
    }
    let name = "circuit_breaker_transitions_total";
    header(
        out,
        name,
        "counter",
        "State changes of each circuit breaker.",
    );
    // The automatic edges always; changes made by run-time control once seen.
    const AUTOMATIC: [(BreakerState, BreakerState); 4] = [
        (BreakerState::Closed, BreakerState::Open),
        (BreakerState::Open, BreakerState::HalfOpen),
        (BreakerState::HalfOpen, BreakerState::Closed),
        (BreakerState::HalfOpen, BreakerState::Open),
    ];
    for breaker in &breakers {
        for from in BreakerState::ALL {
            for to in BreakerState::ALL {
                let count = breaker.transitions(from, to);
                if from == to || (count == 0 && !AUTOMATIC.contains(&(from, to))) {
                    continue;
                }
                out.push_str(name);
                labels(
                    out,
                    breaker.name(),
                    &[("from", from.label()), ("to", to.label())],
                );
                let _ = writeln!(out, " {count}");
            }
        }
    }
    let name = "circuit_breaker_slow_calls_total";
    header(
        out,
        name,
        "counter",
        "Calls through each circuit breaker at least as long as its slow-call threshold.",
    );
    for breaker in &breakers {
        out.push_str(name);
        labels(out, breaker.name(), &[]);
        let _ = writeln!(out, " {}", breaker.stats().slow);
    }
    let retrying: Vec<_> = crate::breaker::site::sites()
        .filter(|site| site.retry_policy().is_some())
        .collect();
    if !retrying.is_empty() {
        let name = "retry_attempts_total";
        header(
            out,
            name,
            "counter",
            "Retries (attempts after the first) of functions with retry(...).",
        );
        let mut series: Vec<(&SiteInfo, &str, u64)> = Vec::new();
        for site in retrying {
            let key = (site.info.function, site.info.module, site.breaker_name());
            match series
                .iter_mut()
                .find(|(info, breaker, _)| (info.function, info.module, *breaker) == key)
            {
                Some((_, _, total)) => *total += site.retries(),
                None => series.push((&site.info, site.breaker_name(), site.retries())),
            }
        }
        for (info, breaker, retries) in series {
            out.push_str(name);
            write_labels(out, info, service, &[("breaker", breaker)]);
            let _ = writeln!(out, " {retries}");
        }
    }
}

pub(crate) fn render_build_info(out: &mut String, service: &str, build: &BuildInfo) {
    header(
        out,
        "build_info",
        "gauge",
        "Build of the running service (always 1).",
    );
    out.push_str("build_info{");
    let labels = [
        ("version", build.version.as_str()),
        ("commit", build.commit.as_str()),
        ("branch", build.branch.as_str()),
        ("service_name", service),
        ("autometrics_version", "1.0.0"),
    ];
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    out.push_str("} 1\n");
}

pub(crate) fn render_span_counters(out: &mut String) {
    use crate::trace::pipeline::{SPANS_DROPPED, SPANS_EXPORTED};
    use std::sync::atomic::Ordering::Relaxed;
    header(
        out,
        "telemark_spans_exported_total",
        "counter",
        "Spans handed to the span exporter.",
    );
    let _ = writeln!(
        out,
        "telemark_spans_exported_total {}",
        SPANS_EXPORTED.load(Relaxed)
    );
    header(
        out,
        "telemark_spans_dropped_total",
        "counter",
        "Spans lost because the queue was full or the export failed.",
    );
    let _ = writeln!(
        out,
        "telemark_spans_dropped_total {}",
        SPANS_DROPPED.load(Relaxed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value("a\"b\\c\nd", &mut out);
        assert_eq!(out, r#"a\"b\\c\nd"#);
    }
}
