//! The Prometheus text exposition `/metrics` serves, as OTLP metrics: the
//! same families, series and values, so what a collector receives matches
//! what a scrape at the same moment sees (as the OpenTelemetry Collector's
//! Prometheus receiver reads a scrape).
//!
//! Counters become monotonic sums, gauges (and untyped series) gauges,
//! histograms explicit-bucket histograms (the cumulative `le` buckets made
//! per-bucket counts), summaries summaries. Every label is an attribute.
//! With delta temporality, sums and histograms carry what changed since
//! the last export (a value lower than the last one is a reset: it is the
//! delta, from the last export).

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point, AggregationTemporality, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, Sum, Summary, SummaryDataPoint,
};

/// How sums and histograms are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Temporality {
    /// Totals since the process started (the default, as on `/metrics`).
    Cumulative,
    /// What changed since the previous export.
    Delta,
}

/// One sample line: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    /// Written without a fraction or exponent (then sent as an integer).
    integral: bool,
}

/// One family: its `# TYPE`, `# HELP` and samples, in order.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

/// Unescapes a label value (`\\`, `\"`, `\n`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `name{key="value",...} value [timestamp]`, or `None` if malformed.
fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            inside = inside.trim_start_matches([',', ' ']);
            if let Some(after) = inside.strip_prefix('}') {
                break after;
            }
            let (key, after) = inside.split_once("=\"")?;
            // The value ends at the first `"` not escaped.
            let bytes = after.as_bytes();
            let mut end = 0;
            while end < bytes.len() {
                match bytes[end] {
                    b'\\' => end += 2,
                    b'"' => break,
                    _ => end += 1,
                }
            }
            if end >= bytes.len() {
                return None;
            }
            labels.push((key.trim().to_owned(), unescape(&after[..end])));
            inside = &after[end + 1..];
        }
    } else {
        rest
    };
    let text = rest.split_whitespace().next()?;
    let value = match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    let integral = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
        integral,
    })
}

/// The families of an exposition, in order.
fn families(text: &str) -> Vec<(String, Family)> {
    let mut order: Vec<(String, Family)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut position = |name: &str, order: &mut Vec<(String, Family)>| -> usize {
        *index.entry(name.to_owned()).or_insert_with(|| {
            order.push((name.to_owned(), Family::default()));
            order.len() - 1
        })
    };
    let mut current: Option<usize> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                let at = position(name, &mut order);
                order[at].1.kind = kind.trim().to_owned();
                current = Some(at);
            }
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let at = position(name, &mut order);
            order[at].1.help = unescape(help);
            current = Some(at);
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(sample) = parse_sample(line) {
            // A sample belongs to the family it follows when its name is
            // the family's (plus a histogram's or summary's suffix).
            let belongs = current.filter(|&at| {
                let family = &order[at].0;
                sample.name == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| sample.name.strip_suffix(suffix) == Some(family))
            });
            let at = belongs.unwrap_or_else(|| position(&sample.name.clone(), &mut order));
            order[at].1.samples.push(sample);
        }
    }
    order
}

/// The OTLP unit of a family, from its name's Prometheus unit suffix.
fn unit_of(name: &str) -> &'static str {
    let base = name.strip_suffix("_total").unwrap_or(name);
    [
        ("_seconds", "s"),
        ("_bytes", "By"),
        ("_milliseconds", "ms"),
        ("_ratio", "1"),
    ]
    .into_iter()
    .find_map(|(suffix, unit)| base.ends_with(suffix).then_some(unit))
    .unwrap_or("")
}

fn attributes(labels: &[(String, String)]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            key_strindex: 0,
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.clone())),
            }),
        })
        .collect()
}

/// A series' identity in its family: its labels, without `le` in a
/// histogram or `quantile` in a summary (the label of its samples).
fn series_key(labels: &[(String, String)], without: &str) -> Vec<(String, String)> {
    labels
        .iter()
        .filter(|(key, _)| key != without)
        .cloned()
        .collect()
}

/// What each series held, by family and labels.
pub(crate) type Totals = HashMap<(String, Vec<(String, String)>), Last>;

/// What a series held at the last export (for deltas).
#[derive(Debug, Clone)]
pub(crate) enum Last {
    Sum(f64),
    Histogram { buckets: Vec<u64>, sum: f64 },
}

/// Converts expositions into OTLP metrics, remembering what the last one
/// held when deltas are wanted.
#[derive(Debug)]
pub(crate) struct Converter {
    temporality: Temporality,
    /// When the process started (cumulative series' start).
    started_nanos: u64,
    /// The last export the collector took: its time (delta series'
    /// start) and what each series held then.
    last_nanos: u64,
    last: Totals,
}

impl Converter {
    pub(crate) fn new(temporality: Temporality, started_nanos: u64) -> Self {
        Converter {
            temporality,
            started_nanos,
            last_nanos: started_nanos,
            last: HashMap::new(),
        }
    }

    fn temporality(&self) -> i32 {
        match self.temporality {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }

    /// `text` (a Prometheus text exposition) as OTLP metrics at
    /// `now_nanos`, with what each series holds now: the base of the next
    /// deltas once [`Converter::commit`]ted (when the collector took it).
    pub(crate) fn convert(&self, text: &str, now_nanos: u64) -> (Vec<Metric>, Totals) {
        let delta = self.temporality == Temporality::Delta;
        let mut totals = Totals::new();
        let start = if delta {
            self.last_nanos
        } else {
            self.started_nanos
        };
        let mut metrics = Vec::new();
        for (name, family) in families(text) {
            if family.samples.is_empty() {
                continue;
            }
            let data = match family.kind.as_str() {
                "counter" => {
                    let points = family
                        .samples
                        .iter()
                        .map(|sample| {
                            let mut value = sample.value;
                            if delta {
                                let key = (name.clone(), series_key(&sample.labels, ""));
                                let before = self.last.get(&key);
                                totals.insert(key, Last::Sum(value));
                                if let Some(Last::Sum(before)) = before {
                                    if value >= *before {
                                        value -= before;
                                    }
                                }
                            }
                            number_point(&sample.labels, value, sample.integral, start, now_nanos)
                        })
                        .collect();
                    metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: self.temporality(),
                        is_monotonic: true,
                    })
                }
                "histogram" => metric::Data::Histogram(Histogram {
                    data_points: self.histogram_points(
                        &name,
                        &family,
                        start,
                        now_nanos,
                        &mut totals,
                    ),
                    aggregation_temporality: self.temporality(),
                }),
                "summary" => metric::Data::Summary(Summary {
                    data_points: summary_points(&name, &family, self.started_nanos, now_nanos),
                }),
                _ => metric::Data::Gauge(Gauge {
                    data_points: family
                        .samples
                        .iter()
                        .map(|sample| {
                            number_point(
                                &sample.labels,
                                sample.value,
                                sample.integral,
                                0,
                                now_nanos,
                            )
                        })
                        .collect(),
                }),
            };
            metrics.push(Metric {
                unit: unit_of(&name).to_owned(),
                name,
                description: family.help,
                metadata: Vec::new(),
                data: Some(data),
            });
        }
        (metrics, totals)
    }

    /// The collector took the export converted at `now_nanos`, with
    /// `totals`: the next deltas count from it.
    pub(crate) fn commit(&mut self, totals: Totals, now_nanos: u64) {
        self.last = totals;
        self.last_nanos = now_nanos;
    }

    fn histogram_points(
        &self,
        name: &str,
        family: &Family,
        start: u64,
        now_nanos: u64,
        totals: &mut Totals,
    ) -> Vec<HistogramDataPoint> {
        // Per series: (bound, cumulative count) by `le`, then sum and count.
        struct Series {
            labels: Vec<(String, String)>,
            buckets: Vec<(f64, f64)>,
            sum: f64,
            count: Option<f64>,
        }
        let mut series: Vec<Series> = Vec::new();
        let mut index: HashMap<Vec<(String, String)>, usize> = HashMap::new();
        for sample in &family.samples {
            let key = series_key(&sample.labels, "le");
            let at = *index.entry(key.clone()).or_insert_with(|| {
                series.push(Series {
                    labels: key,
                    buckets: Vec::new(),
                    sum: 0.0,
                    count: None,
                });
                series.len() - 1
            });
            let entry = &mut series[at];
            let suffix = &sample.name[name.len().min(sample.name.len())..];
            match suffix {
                "_bucket" => {
                    let le = sample.labels.iter().find(|(key, _)| key == "le");
                    let bound = match le.map(|(_, value)| value.as_str()) {
                        Some("+Inf") => f64::INFINITY,
                        Some(text) => match text.parse() {
                            Ok(bound) => bound,
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    entry.buckets.push((bound, sample.value));
                }
                "_sum" => entry.sum = sample.value,
                "_count" => entry.count = Some(sample.value),
                _ => {}
            }
        }
        let mut points = Vec::new();
        for mut series in series {
            series
                .buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            let total = series
                .count
                .or_else(|| series.buckets.last().map(|(_, count)| *count))
                .unwrap_or(0.0) as u64;
            let mut bounds = Vec::new();
            let mut counts = Vec::new();
            let mut below = 0u64;
            for (bound, cumulative) in &series.buckets {
                if bound.is_infinite() {
                    continue;
                }
                let cumulative = *cumulative as u64;
                bounds.push(*bound);
                counts.push(cumulative.saturating_sub(below));
                below = cumulative;
            }
            counts.push(total.saturating_sub(below));
            let mut sum = series.sum;
            if self.temporality == Temporality::Delta {
                let key = (name.to_owned(), series.labels.clone());
                let now = Last::Histogram {
                    buckets: counts.clone(),
                    sum,
                };
                if let Some(Last::Histogram {
                    buckets: before,
                    sum: sum_before,
                }) = self.last.get(&key)
                {
                    let reset = before.len() != counts.len()
                        || before.iter().zip(&counts).any(|(b, c)| c < b);
                    if !reset {
                        for (count, before) in counts.iter_mut().zip(before) {
                            *count -= before;
                        }
                        sum -= sum_before;
                    }
                }
                totals.insert(key, now);
            }
            let count = counts.iter().sum();
            points.push(HistogramDataPoint {
                attributes: attributes(&series.labels),
                start_time_unix_nano: start,
                time_unix_nano: now_nanos,
                count,
                sum: Some(sum),
                bucket_counts: counts,
                explicit_bounds: bounds,
                exemplars: Vec::new(),
                flags: 0,
                min: None,
                max: None,
            });
        }
        points
    }
}

fn number_point(
    labels: &[(String, String)],
    value: f64,
    integral: bool,
    start: u64,
    now_nanos: u64,
) -> NumberDataPoint {
    let value = if integral && value.abs() < 9.0e15 {
        number_data_point::Value::AsInt(value as i64)
    } else {
        number_data_point::Value::AsDouble(value)
    };
    NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start,
        time_unix_nano: now_nanos,
        exemplars: Vec::new(),
        flags: 0,
        value: Some(value),
    }
}

fn summary_points(
    name: &str,
    family: &Family,
    start: u64,
    now_nanos: u64,
) -> Vec<SummaryDataPoint> {
    let mut points: Vec<SummaryDataPoint> = Vec::new();
    let mut index: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    for sample in &family.samples {
        let key = series_key(&sample.labels, "quantile");
        let at = *index.entry(key.clone()).or_insert_with(|| {
            points.push(SummaryDataPoint {
                attributes: attributes(&key),
                start_time_unix_nano: start,
                time_unix_nano: now_nanos,
                ..Default::default()
            });
            points.len() - 1
        });
        let point = &mut points[at];
        match &sample.name[name.len().min(sample.name.len())..] {
            "_sum" => point.sum = sample.value,
            "_count" => point.count = sample.value as u64,
            _ => {
                let quantile = sample
                    .labels
                    .iter()
                    .find(|(key, _)| key == "quantile")
                    .and_then(|(_, value)| value.parse().ok());
                if let Some(quantile) = quantile {
                    point
                        .quantile_values
                        .push(summary_data_point::ValueAtQuantile {
                            quantile,
                            value: sample.value,
                        });
                }
            }
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP function_calls_total Calls of instrumented functions by result.
# TYPE function_calls_total counter
function_calls_total{function=\"a\",module=\"m\",result=\"ok\"} 5
function_calls_total{function=\"a\",module=\"m\",result=\"error\"} 1
# HELP function_calls_duration_seconds Duration.
# TYPE function_calls_duration_seconds histogram
function_calls_duration_seconds_bucket{function=\"a\",le=\"0.005\"} 2
function_calls_duration_seconds_bucket{function=\"a\",le=\"0.01\"} 5
function_calls_duration_seconds_bucket{function=\"a\",le=\"+Inf\"} 6
function_calls_duration_seconds_sum{function=\"a\"} 0.0425
function_calls_duration_seconds_count{function=\"a\"} 6
# HELP queue_depth Depth, with a \\\\ and a\\nline.
# TYPE queue_depth gauge
queue_depth{queue=\"a \\\"quoted\\\" \\\\ name\"} 2.5
# TYPE request_seconds summary
request_seconds{quantile=\"0.5\"} 0.1
request_seconds_sum 1.5
request_seconds_count 10
";

    fn number(point: &NumberDataPoint) -> f64 {
        match point.value {
            Some(number_data_point::Value::AsInt(value)) => value as f64,
            Some(number_data_point::Value::AsDouble(value)) => value,
            None => f64::NAN,
        }
    }

    fn attribute(point_attributes: &[KeyValue], key: &str) -> String {
        let found = point_attributes.iter().find(|kv| kv.key == key).unwrap();
        match &found.value.as_ref().unwrap().value {
            Some(any_value::Value::StringValue(text)) => text.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn families_become_otlp_metrics_with_the_same_values() {
        let converter = Converter::new(Temporality::Cumulative, 100);
        let (metrics, _) = converter.convert(TEXT, 200);
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "function_calls_total",
                "function_calls_duration_seconds",
                "queue_depth",
                "request_seconds"
            ]
        );
        let Some(metric::Data::Sum(calls)) = &metrics[0].data else {
            panic!()
        };
        assert!(calls.is_monotonic);
        assert_eq!(
            calls.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(calls.data_points.len(), 2);
        assert_eq!(number(&calls.data_points[0]), 5.0);
        assert_eq!(
            attribute(&calls.data_points[1].attributes, "result"),
            "error"
        );
        assert_eq!(calls.data_points[0].start_time_unix_nano, 100);

        let Some(metric::Data::Histogram(durations)) = &metrics[1].data else {
            panic!()
        };
        assert_eq!(metrics[1].unit, "s");
        let point = &durations.data_points[0];
        assert_eq!(point.explicit_bounds, [0.005, 0.01]);
        assert_eq!(point.bucket_counts, [2, 3, 1]);
        assert_eq!((point.count, point.sum), (6, Some(0.0425)));
        assert!(point.attributes.iter().all(|kv| kv.key != "le"));

        let Some(metric::Data::Gauge(depth)) = &metrics[2].data else {
            panic!()
        };
        assert_eq!(metrics[2].description, "Depth, with a \\ and a\nline.");
        assert_eq!(number(&depth.data_points[0]), 2.5);
        assert_eq!(
            attribute(&depth.data_points[0].attributes, "queue"),
            "a \"quoted\" \\ name"
        );

        let Some(metric::Data::Summary(summary)) = &metrics[3].data else {
            panic!()
        };
        assert_eq!(summary.data_points[0].count, 10);
        assert_eq!(summary.data_points[0].quantile_values[0].value, 0.1);
    }

    #[test]
    fn deltas_are_what_changed_since_the_last_export_the_collector_took() {
        let mut converter = Converter::new(Temporality::Delta, 100);
        let (_, totals) = converter.convert(TEXT, 200);
        converter.commit(totals, 200);
        let later = TEXT
            .replace("result=\"ok\"} 5", "result=\"ok\"} 8")
            .replace("le=\"+Inf\"} 6", "le=\"+Inf\"} 7")
            .replace("_count{function=\"a\"} 6", "_count{function=\"a\"} 7")
            .replace("_sum{function=\"a\"} 0.0425", "_sum{function=\"a\"} 1.0425");
        // An export the collector did not take is not a base: the next
        // carries its changes again.
        let (_, not_taken) = converter.convert(&later, 250);
        drop(not_taken);
        let (metrics, totals) = converter.convert(&later, 300);
        converter.commit(totals, 300);
        let Some(metric::Data::Sum(calls)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(number(&calls.data_points[0]), 3.0);
        assert_eq!(number(&calls.data_points[1]), 0.0);
        assert_eq!(calls.data_points[0].start_time_unix_nano, 200);
        let Some(metric::Data::Histogram(durations)) = &metrics[1].data else {
            panic!()
        };
        let point = &durations.data_points[0];
        assert_eq!(point.bucket_counts, [0, 0, 1]);
        assert_eq!((point.count, point.sum), (1, Some(1.0)));
        // A counter lower than before was reset: its value is the delta.
        let reset = later.replace("result=\"ok\"} 8", "result=\"ok\"} 2");
        let (metrics, _) = converter.convert(&reset, 400);
        let Some(metric::Data::Sum(calls)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(number(&calls.data_points[0]), 2.0);
    }
}
