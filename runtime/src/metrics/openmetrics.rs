//! The two text formats `/metrics` speaks: Prometheus text 0.0.4 (the
//! default) and OpenMetrics 1.0.0 (when the scraper asks for it), the only
//! one that carries exemplars.
//!
//! Everything is rendered in the Prometheus format first (exemplars written
//! in place when wanted); [`to_openmetrics`] then rewrites the family
//! headers, which is all that differs for the series telemark and the
//! `metrics` facade produce, and ends the text with `# EOF`.

use std::collections::HashMap;

/// A text format for `/metrics`.
///
/// ```
/// use telemark_runtime::metrics::ExpositionFormat;
///
/// // What Prometheus sends: it prefers OpenMetrics.
/// let accept = "application/openmetrics-text;version=1.0.0,\
///               application/openmetrics-text;version=0.0.1;q=0.75,\
///               text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(ExpositionFormat::negotiate(Some(accept)), ExpositionFormat::OpenMetrics);
/// // curl, a browser, or no header at all: the Prometheus text format.
/// assert_eq!(ExpositionFormat::negotiate(Some("*/*")), ExpositionFormat::PrometheusText);
/// assert_eq!(ExpositionFormat::negotiate(None), ExpositionFormat::PrometheusText);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// The Prometheus text format 0.0.4, without exemplars.
    PrometheusText,
    /// OpenMetrics 1.0.0: counters and histogram buckets carry the trace
    /// and span ids of their last sampled call as exemplars.
    OpenMetrics,
}

impl ExpositionFormat {
    /// The format a scraper's `Accept` header asks for: OpenMetrics
    /// (version 1.0.0, or unversioned) when it weighs it at least as much
    /// as the Prometheus text format, otherwise the Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return ExpositionFormat::PrometheusText;
        };
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for entry in accept.split(',') {
            let mut parts = entry.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or("").to_ascii_lowercase();
            let (mut weight, mut version) = (1.0f32, None);
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => {
                        weight = value
                            .parse()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0)
                    }
                    "version" => version = Some(value.to_owned()),
                    _ => {}
                }
            }
            let version = version.as_deref();
            match media_type.as_str() {
                "application/openmetrics-text" if matches!(version, None | Some("1.0.0")) => {
                    openmetrics = openmetrics.max(weight);
                }
                "text/plain" if matches!(version, None | Some("0.0.4")) => text = text.max(weight),
                "text/*" | "*/*" => text = text.max(weight),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            ExpositionFormat::OpenMetrics
        } else {
            ExpositionFormat::PrometheusText
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ExpositionFormat::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            ExpositionFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

/// Rewrites a Prometheus text exposition as OpenMetrics: a counter family
/// is named without its `_total` (its samples keep it); a counter whose
/// samples lack `_total` becomes `unknown`, as does `untyped`, so no series
/// changes its name between the formats; quotes in help texts are escaped;
/// blank lines and other comments go; `# EOF` ends it.
pub(crate) fn to_openmetrics(text: &str) -> String {
    let mut types: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                types.insert(name, kind.trim());
            }
        }
    }
    let family = |name: &str| -> (String, &'static str) {
        match types.get(name).copied() {
            Some("counter") => match name.strip_suffix("_total") {
                Some(base) => (base.to_owned(), "counter"),
                None => (name.to_owned(), "unknown"),
            },
            Some("gauge") => (name.to_owned(), "gauge"),
            Some("histogram") => (name.to_owned(), "histogram"),
            Some("summary") => (name.to_owned(), "summary"),
            _ => (name.to_owned(), "unknown"),
        }
    };
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 8);
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str("# HELP ");
            out.push_str(&family(name).0);
            out.push(' ');
            escape_help(help, &mut out);
            out.push('\n');
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
            let (name, kind) = family(name);
            out.push_str("# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if !line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

/// A 0.0.4 help text (with `\\` and `\n` escaped) as OpenMetrics writes it
/// (with `"` escaped too).
fn escape_help(help: &str, out: &mut String) {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                out.push(chars.next().unwrap_or('\\'));
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExpositionFormat::{OpenMetrics, PrometheusText};

    #[test]
    fn the_scraper_chooses_by_weight_and_the_default_is_the_prometheus_format() {
        for (accept, expected) in [
            // Prometheus 2.x's default scrape protocols.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OpenMetrics,
            ),
            // Prometheus 3's, with protobuf first.
            (
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                OpenMetrics,
            ),
            ("Application/OpenMetrics-Text; Version=\"1.0.0\"", OpenMetrics),
            ("application/openmetrics-text, text/plain", OpenMetrics),
            // Only a version this renderer does not write.
            ("application/openmetrics-text;version=0.0.1", PrometheusText),
            ("application/openmetrics-text;version=2.0.0,text/plain;q=0.1", PrometheusText),
            ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", PrometheusText),
            ("application/openmetrics-text;q=0", PrometheusText),
            ("application/openmetrics-text;q=bogus", PrometheusText),
            ("*/*", PrometheusText),
            ("application/json", PrometheusText),
            ("", PrometheusText),
            (";;,,==;q", PrometheusText),
        ] {
            assert_eq!(ExpositionFormat::negotiate(Some(accept)), expected, "{accept}");
        }
        assert_eq!(ExpositionFormat::negotiate(None), PrometheusText);
    }

    #[test]
    fn headers_are_rewritten_and_samples_kept_as_they_are() {
        let text = "\
# HELP function_calls_total Calls of instrumented functions by result.
# TYPE function_calls_total counter
function_calls_total{result=\"ok\"} 3 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\"} 1 1700000000.123

# TYPE requests counter
# HELP requests Requests \"served\", a \\\\ and\\nlines.
requests 5
# HELP queue_depth Depth.
# TYPE queue_depth gauge
queue_depth 2
# TYPE legacy untyped
legacy 1
# a comment
# HELP latency Latency.
# TYPE latency summary
latency{quantile=\"0.5\"} 0.1
latency_sum 1
latency_count 10
";
        assert_eq!(
            to_openmetrics(text),
            "\
# HELP function_calls Calls of instrumented functions by result.
# TYPE function_calls counter
function_calls_total{result=\"ok\"} 3 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\"} 1 1700000000.123
# TYPE requests unknown
# HELP requests Requests \\\"served\\\", a \\\\ and\\nlines.
requests 5
# HELP queue_depth Depth.
# TYPE queue_depth gauge
queue_depth 2
# TYPE legacy unknown
legacy 1
# HELP latency Latency.
# TYPE latency summary
latency{quantile=\"0.5\"} 0.1
latency_sum 1
latency_count 10
# EOF
"
        );
    }
}
