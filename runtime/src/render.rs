//! Prometheus text exposition (format 0.0.4) of the function metrics.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::buckets::format_seconds;
use crate::catalog::{counted_sites, timed_sites};
use crate::site::SiteInfo;

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

/// Renders every catalogued function's series, zero-valued ones included.
pub(crate) fn render_function_metrics(out: &mut String, service: &str) {
    let mut counters: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for site in counted_sites() {
        counters.entry(site.info.metric).or_default().push(site);
    }
    for (name, sites) in counters {
        header(
            out,
            name,
            "counter",
            "Calls of instrumented functions by result.",
        );
        for site in sites {
            let (ok, error) = site.counts();
            for (result, value) in [("ok", ok), ("error", error)] {
                out.push_str(name);
                write_labels(out, &site.info, service, &[("result", result)]);
                let _ = writeln!(out, " {value}");
            }
        }
    }

    let mut histograms: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for site in timed_sites() {
        histograms.entry(site.info.metric).or_default().push(site);
    }
    for (name, sites) in &histograms {
        header(
            out,
            name,
            "histogram",
            "Duration of instrumented function calls in seconds.",
        );
        for site in sites {
            let snap = site.snapshot();
            for (bound, cumulative) in snap.bounds_nanos.iter().zip(&snap.cumulative) {
                let le = format_seconds(*bound);
                let _ = write!(out, "{name}_bucket");
                write_labels(out, &site.info, service, &[("le", &le)]);
                let _ = writeln!(out, " {cumulative}");
            }
            let _ = write!(out, "{name}_bucket");
            write_labels(out, &site.info, service, &[("le", "+Inf")]);
            let _ = writeln!(out, " {}", snap.count());
            let _ = write!(out, "{name}_sum");
            write_labels(out, &site.info, service, &[]);
            let _ = writeln!(out, " {}", snap.sum_nanos as f64 / 1e9);
            let _ = write!(out, "{name}_count");
            write_labels(out, &site.info, service, &[]);
            let _ = writeln!(out, " {}", snap.count());
        }
    }

    if !histograms.is_empty() {
        header(
            out,
            CONCURRENT_METRIC,
            "gauge",
            "Calls of instrumented functions running now.",
        );
        for site in histograms.values().flatten() {
            out.push_str(CONCURRENT_METRIC);
            write_labels(out, &site.info, service, &[]);
            let _ = writeln!(out, " {}", site.in_flight());
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
