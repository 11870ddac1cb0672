//! Prometheus text exposition of the function metrics and `build_info`.

use std::collections::{BTreeMap, HashMap};

use super::exemplar::{latest, Exemplar, WallClock};
use super::exposition::{
    format_seconds, header, sample, sample_with_exemplar, write_label_set, ExemplarText,
};
use super::objective::Objective;
use super::site::{Counter, Histogram, HistogramSnapshot};
use super::value::{Gauge, ValueHistogram, ValueSnapshot};
use crate::site::SiteInfo;

/// `build_info` labels.
#[derive(Debug, Clone)]
pub(crate) struct BuildInfo {
    pub version: String,
    pub commit: String,
    pub branch: String,
    /// `repository_url` (omitted when empty).
    pub repository_url: String,
    /// `repository_provider` (omitted when empty).
    pub repository_provider: String,
}

/// The label marking the series that counts the calls whose computed
/// labels were beyond the call site's cardinality limit (the OpenTelemetry
/// SDK's `otel.metric.overflow`, in Prometheus's syntax).
pub const OVERFLOW_LABEL: &str = "otel_metric_overflow";

/// Name of the in-flight gauge family.
pub const CONCURRENT_METRIC: &str = "function_calls_concurrent";

/// `function`, `module`, `service_name`, the site's own labels, the
/// objective's labels (`threshold`: its latency threshold, formatted as the
/// `le` label is), then `tail`.
fn labels<'a>(
    series: &'a Series,
    service: &'a str,
    threshold: &'a str,
    tail: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    let objective = series.objective.as_ref();
    [
        ("function", series.function),
        ("module", series.module),
        ("service_name", service),
    ]
    .into_iter()
    .chain(series.labels.iter().copied())
    .chain(
        series
            .computed
            .iter()
            .map(|(key, value)| (*key, value.as_str())),
    )
    .chain(
        series.caller.into_iter().flat_map(|(function, module)| {
            [("caller_function", function), ("caller_module", module)]
        }),
    )
    .chain(objective.into_iter().flat_map(|objective| {
        [
            ("objective_name", objective.name),
            ("objective_percentile", objective.percentile),
        ]
    }))
    .chain(
        objective
            .and_then(|objective| objective.threshold_nanos)
            .map(|_| ("objective_latency_threshold", threshold)),
    )
    .chain(tail.iter().copied())
}

/// The objective labels of a series: the counter's success-rate target or
/// the histogram's latency target.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ObjectiveLabels {
    name: &'static str,
    percentile: &'static str,
    threshold_nanos: Option<u64>,
}

impl ObjectiveLabels {
    fn success_rate(objective: Option<&'static Objective>) -> Option<ObjectiveLabels> {
        let objective = objective?;
        Some(ObjectiveLabels {
            name: objective.name(),
            percentile: objective.success_rate_target()?.label(),
            threshold_nanos: None,
        })
    }

    fn latency(objective: Option<&'static Objective>) -> Option<ObjectiveLabels> {
        let objective = objective?;
        let target = objective.latency_target()?;
        Some(ObjectiveLabels {
            name: objective.name(),
            percentile: target.percentile.label(),
            threshold_nanos: Some(target.threshold_nanos),
        })
    }
}

/// The identity of a series: two call sites with the same one (a method-level
/// attribute and a free function of one name in one module, two trait impls
/// of one method, …) are rendered as one series with their counts added.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Series {
    function: &'static str,
    module: &'static str,
    labels: &'static [(&'static str, &'static str)],
    /// The values of the labels computed on each call (or the overflow
    /// series' mark).
    computed: Box<[(&'static str, String)]>,
    /// `caller_function` and `caller_module`, when callers are tracked.
    caller: Option<(&'static str, &'static str)>,
    objective: Option<ObjectiveLabels>,
}

/// The caller labels of one entry of [`Counter::counts_by_caller`].
fn caller_labels(caller: Option<Option<&'static SiteInfo>>) -> (&'static str, &'static str) {
    match caller {
        None => ("", ""),
        Some(Some(info)) => (info.function, info.module),
        Some(None) => ("(other)", ""),
    }
}

/// Series of one family, in catalog order, merged by identity.
struct Family<T> {
    series: Vec<(Series, T)>,
    index: HashMap<Series, usize>,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Family {
            series: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Family<T> {
    fn add(&mut self, series: Series, value: T, merge: impl FnOnce(&mut T, T)) {
        match self.index.get(&series) {
            Some(&position) => merge(&mut self.series[position].1, value),
            None => {
                self.index.insert(series.clone(), self.series.len());
                self.series.push((series, value));
            }
        }
    }
}

/// Adds `other` into `total`. Histograms of one series with different
/// bounds keep the bounds both have: a cumulative count at a shared bound
/// is exact for each, so nothing is lost or mislabelled, only coarser.
fn merge_histograms(total: &mut HistogramSnapshot, other: HistogramSnapshot) {
    let mut bounds = Vec::new();
    let mut cumulative = Vec::new();
    for (i, bound) in total.bounds_nanos.iter().enumerate() {
        if let Ok(j) = other.bounds_nanos.binary_search(bound) {
            bounds.push(*bound);
            cumulative.push(total.cumulative[i] + other.cumulative[j]);
        }
    }
    cumulative.push(total.count() + other.count());
    total.bounds_nanos = bounds;
    total.cumulative = cumulative;
    total.sum_nanos = total.sum_nanos.wrapping_add(other.sum_nanos);
}

/// One counter series: calls by result, and the last sampled call of each.
#[derive(Default)]
struct Calls {
    ok: u64,
    error: u64,
    /// `[ok, error]`.
    exemplars: [Option<Exemplar>; 2],
}

impl Calls {
    fn merge(&mut self, other: Calls) {
        self.ok += other.ok;
        self.error += other.error;
        for (kept, other) in self.exemplars.iter_mut().zip(other.exemplars) {
            *kept = latest(*kept, other);
        }
    }
}

/// One histogram series: durations, calls in flight, and the last sampled
/// calls kept (at most one per bucket of each call site merged into it).
struct Durations {
    snapshot: HistogramSnapshot,
    in_flight: i64,
    exemplars: Vec<Exemplar>,
}

/// The caller labels of the series an exemplar belongs to, among a
/// counter's `entries` (a caller without a slot is under `(other)`).
fn exemplar_caller(
    exemplar: &Exemplar,
    entries: &super::site::CallerCountsSnapshot,
) -> (&'static str, &'static str) {
    if exemplar.caller.is_null() {
        return caller_labels(None);
    }
    let tracked = entries.iter().find_map(|(caller, _)| match caller {
        Some(Some(info)) if std::ptr::eq(*info, exemplar.caller) => Some(*caller),
        _ => None,
    });
    caller_labels(tracked.unwrap_or(Some(None)))
}

/// The exemplar an OpenMetrics sample carries: its value written as `value`.
fn exemplar_text<'a>(
    exemplar: Option<&Exemplar>,
    value: &'a str,
    clock: Option<&WallClock>,
) -> Option<ExemplarText<'a>> {
    let (exemplar, clock) = (exemplar?, clock?);
    Some(ExemplarText {
        trace_id: exemplar.ids.trace_id,
        span_id: exemplar.ids.span_id,
        value,
        unix_nanos: clock.unix_nanos(exemplar),
    })
}

/// Renders the series of every given call site, zero-valued ones included;
/// with `callers`, the counters' series by `caller_function` and
/// `caller_module` (`""` for calls with no instrumented caller). With
/// `exemplars` (OpenMetrics only), each counter sample and histogram bucket
/// carries the last sampled call it counted, if any.
pub(crate) fn render_function_metrics(
    out: &mut String,
    service: &str,
    callers: bool,
    exemplars: Option<&WallClock>,
    counted: impl Iterator<Item = (&'static SiteInfo, &'static Counter)>,
    timed: impl Iterator<Item = (&'static SiteInfo, &'static Histogram)>,
) {
    let series = |info: &'static SiteInfo, labels, objective| Series {
        function: info.function,
        module: info.module,
        labels,
        computed: Box::default(),
        caller: None,
        objective,
    };
    let mut counters: BTreeMap<&str, Family<Calls>> = BTreeMap::new();
    for (info, counter) in counted {
        let family = counters.entry(counter.metric).or_default();
        let key = series(
            info,
            counter.labels,
            ObjectiveLabels::success_rate(counter.objective),
        );
        let kept = match exemplars {
            Some(_) => [counter.exemplar(false), counter.exemplar(true)],
            None => [None, None],
        };
        if let Some(computed) = &counter.computed {
            // Callers and exemplars are not kept for these series.
            let mut add = |labels: Vec<(&'static str, String)>, (ok, error)| {
                let key = Series {
                    computed: labels.into_boxed_slice(),
                    ..key.clone()
                };
                let calls = Calls {
                    ok,
                    error,
                    exemplars: [None, None],
                };
                family.add(key, calls, Calls::merge);
            };
            computed.cells.for_each_series(&mut |keys, counts| {
                let values = keys.iter().map(ToString::to_string);
                add(computed.names.iter().copied().zip(values).collect(), counts);
            });
            let overflow = computed.cells.overflow();
            if overflow != (0, 0) {
                add(vec![(OVERFLOW_LABEL, "true".to_owned())], overflow);
            }
        } else if callers {
            let entries = counter.counts_by_caller();
            for (caller, (ok, error)) in &entries {
                let caller = caller_labels(*caller);
                let mut calls = Calls {
                    ok: *ok,
                    error: *error,
                    exemplars: [None, None],
                };
                for (slot, exemplar) in calls.exemplars.iter_mut().zip(kept) {
                    *slot =
                        exemplar.filter(|exemplar| exemplar_caller(exemplar, &entries) == caller);
                }
                let key = Series {
                    caller: Some(caller),
                    ..key.clone()
                };
                family.add(key, calls, Calls::merge);
            }
        } else {
            let (ok, error) = counter.counts();
            let calls = Calls {
                ok,
                error,
                exemplars: kept,
            };
            family.add(key, calls, Calls::merge);
        }
    }
    for (name, family) in &counters {
        header(
            out,
            name,
            "counter",
            "Calls of instrumented functions by result.",
        );
        for (info, calls) in &family.series {
            let results = [("ok", calls.ok), ("error", calls.error)];
            for ((result, value), exemplar) in results.into_iter().zip(&calls.exemplars) {
                sample_with_exemplar(
                    out,
                    name,
                    labels(info, service, "", &[("result", result)]),
                    value,
                    exemplar_text(exemplar.as_ref(), "1", exemplars),
                );
            }
        }
    }

    let mut histograms: BTreeMap<&str, Family<Durations>> = BTreeMap::new();
    for (info, histogram) in timed {
        let family = histograms.entry(histogram.metric).or_default();
        let kept = match exemplars {
            Some(_) => histogram.exemplars().collect(),
            None => Vec::new(),
        };
        let value = Durations {
            snapshot: histogram.snapshot(),
            in_flight: histogram.in_flight(),
            exemplars: kept,
        };
        let objective = ObjectiveLabels::latency(histogram.objective);
        let key = series(info, histogram.labels, objective);
        family.add(key, value, |total, more| {
            merge_histograms(&mut total.snapshot, more.snapshot);
            total.in_flight += more.in_flight;
            total.exemplars.extend(more.exemplars);
        });
    }
    for (name, family) in &histograms {
        header(
            out,
            name,
            "histogram",
            "Duration of instrumented function calls in seconds.",
        );
        let bucket = format!("{name}_bucket");
        for (info, durations) in &family.series {
            let (snapshot, kept) = (&durations.snapshot, &durations.exemplars);
            let threshold = info
                .objective
                .and_then(|objective| objective.threshold_nanos)
                .map(format_seconds)
                .unwrap_or_default();
            // Each bucket's exemplar: the last call kept whose duration is
            // in it (in (previous bound, bound]; above the last for +Inf).
            let in_bucket = |low: Option<u64>, high: Option<u64>| {
                kept.iter()
                    .filter(|exemplar| {
                        low.is_none_or(|low| exemplar.value > low)
                            && high.is_none_or(|high| exemplar.value <= high)
                    })
                    .copied()
                    .fold(None, |found, exemplar| latest(found, Some(exemplar)))
            };
            let mut low = None;
            for (bound, cumulative) in snapshot.bounds_nanos.iter().zip(&snapshot.cumulative) {
                let le = format_seconds(*bound);
                let exemplar = in_bucket(low, Some(*bound));
                let value = exemplar.map(|exemplar| format_seconds(exemplar.value));
                sample_with_exemplar(
                    out,
                    &bucket,
                    labels(info, service, &threshold, &[("le", &le)]),
                    cumulative,
                    exemplar_text(exemplar.as_ref(), value.as_deref().unwrap_or(""), exemplars),
                );
                low = Some(*bound);
            }
            let count = snapshot.count();
            let exemplar = in_bucket(low, None);
            let value = exemplar.map(|exemplar| format_seconds(exemplar.value));
            sample_with_exemplar(
                out,
                &bucket,
                labels(info, service, &threshold, &[("le", "+Inf")]),
                count,
                exemplar_text(exemplar.as_ref(), value.as_deref().unwrap_or(""), exemplars),
            );
            let seconds = snapshot.sum_nanos as f64 / 1e9;
            sample(
                out,
                &format!("{name}_sum"),
                labels(info, service, &threshold, &[]),
                seconds,
            );
            sample(
                out,
                &format!("{name}_count"),
                labels(info, service, &threshold, &[]),
                count,
            );
        }
    }

    // One gauge per function, whatever its histogram is named, without
    // objective labels (in-flight calls meet or miss no target yet).
    let mut gauges: Family<i64> = Family::default();
    for (key, durations) in histograms.values().flat_map(|family| &family.series) {
        let in_flight = &durations.in_flight;
        let key = Series {
            objective: None,
            ..key.clone()
        };
        gauges.add(key, *in_flight, |total, more| *total += more);
    }
    let gauges = gauges.series;
    if !gauges.is_empty() {
        header(
            out,
            CONCURRENT_METRIC,
            "gauge",
            "Calls of instrumented functions running now.",
        );
        for (key, in_flight) in gauges {
            sample(
                out,
                CONCURRENT_METRIC,
                labels(&key, service, "", &[]),
                in_flight,
            );
        }
    }
}

/// Adds `other` into `total`, keeping the bounds both have (as
/// [`merge_histograms`] does for durations).
fn merge_values(total: &mut ValueSnapshot, other: ValueSnapshot) {
    let mut bounds = Vec::new();
    let mut cumulative = Vec::new();
    for (i, bound) in total.bounds.iter().enumerate() {
        if let Some(j) = other.bounds.iter().position(|b| b == bound) {
            bounds.push(*bound);
            cumulative.push(total.cumulative[i] + other.cumulative[j]);
        }
    }
    cumulative.push(total.count() + other.count());
    total.bounds = bounds;
    total.cumulative = cumulative;
    total.sum += other.sum;
}

/// Renders every `#[histogram]`'s and `#[gauge]`'s series, zero-valued ones
/// included: `function`, `module`, `service_name` and the attribute's
/// constant labels.
pub(crate) fn render_value_metrics(
    out: &mut String,
    service: &str,
    histograms: impl Iterator<Item = (&'static SiteInfo, &'static ValueHistogram)>,
    gauges: impl Iterator<Item = (&'static SiteInfo, &'static Gauge)>,
) {
    let series = |info: &'static SiteInfo, labels| Series {
        function: info.function,
        module: info.module,
        labels,
        computed: Box::default(),
        caller: None,
        objective: None,
    };
    let mut families: BTreeMap<&str, Family<ValueSnapshot>> = BTreeMap::new();
    for (info, histogram) in histograms {
        let family = families.entry(histogram.metric).or_default();
        family.add(
            series(info, histogram.labels),
            histogram.snapshot(),
            merge_values,
        );
    }
    for (name, family) in &families {
        header(
            out,
            name,
            "histogram",
            "Values recorded by instrumented functions.",
        );
        let bucket = format!("{name}_bucket");
        for (key, snapshot) in &family.series {
            for (bound, cumulative) in snapshot.bounds.iter().zip(&snapshot.cumulative) {
                let le = bound.to_string();
                sample(
                    out,
                    &bucket,
                    labels(key, service, "", &[("le", &le)]),
                    cumulative,
                );
            }
            sample(
                out,
                &bucket,
                labels(key, service, "", &[("le", "+Inf")]),
                snapshot.count(),
            );
            sample(
                out,
                &format!("{name}_sum"),
                labels(key, service, "", &[]),
                snapshot.sum,
            );
            sample(
                out,
                &format!("{name}_count"),
                labels(key, service, "", &[]),
                snapshot.count(),
            );
        }
    }
    let mut families: BTreeMap<&str, Family<Option<f64>>> = BTreeMap::new();
    for (info, gauge) in gauges {
        let family = families.entry(gauge.metric).or_default();
        // One function's gauge at two call sites: the one set (the larger
        // if both were).
        family.add(series(info, gauge.labels), gauge.value(), |total, more| {
            *total = match (*total, more) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (set, None) | (None, set) => set,
            }
        });
    }
    for (name, family) in &families {
        header(
            out,
            name,
            "gauge",
            "Last value seen by instrumented functions.",
        );
        for (key, value) in &family.series {
            let value = value.unwrap_or(0.0);
            sample(out, name, labels(key, service, "", &[]), value);
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
    out.push_str("build_info");
    write_label_set(
        out,
        [
            ("version", build.version.as_str()),
            ("commit", build.commit.as_str()),
            ("branch", build.branch.as_str()),
            ("service_name", service),
            ("autometrics_version", "1.0.0"),
        ]
        .into_iter()
        .chain(
            [
                ("repository_url", build.repository_url.as_str()),
                ("repository_provider", build.repository_provider.as_str()),
            ]
            .into_iter()
            .filter(|(_, value)| !value.is_empty()),
        ),
    );
    out.push_str(" 1\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::site::TimedCells;

    static INFO: SiteInfo = SiteInfo {
        function: "pay",
        module: "shop",
        file: "shop.rs",
        line: 1,
    };
    const NAME: &str = "function_calls_duration_seconds";
    static FINE_CELLS: TimedCells = TimedCells::new();
    static FINE_BOUNDS: [u64; 3] = [1_000, 1_000_000, 1_000_000_000];
    static FINE: Histogram = Histogram::new(NAME, &[], Some(&FINE_BOUNDS), None, &FINE_CELLS);
    static COARSE_CELLS: TimedCells = TimedCells::new();
    static COARSE_BOUNDS: [u64; 2] = [1_000_000, 5_000_000_000];
    static COARSE: Histogram = Histogram::new(NAME, &[], Some(&COARSE_BOUNDS), None, &COARSE_CELLS);

    #[test]
    fn one_series_with_two_sets_of_bounds_keeps_every_call_on_the_shared_bounds() {
        FINE.record_for_test(500); // ≤ 1 µs
        FINE.record_for_test(2_000_000_000); // +Inf for the fine bounds
        COARSE.record_for_test(700_000); // ≤ 1 ms
        COARSE.record_for_test(3_000_000_000); // ≤ 5 s
        let mut out = String::new();
        render_function_metrics(
            &mut out,
            "svc",
            false,
            None,
            std::iter::empty(),
            [(&INFO, &FINE), (&INFO, &COARSE)].into_iter(),
        );
        let series: Vec<&str> = out
            .lines()
            .filter(|line| line.starts_with("function_calls_duration_seconds"))
            .collect();
        let labels = r#"function="pay",module="shop",service_name="svc""#;
        assert_eq!(
            series,
            [
                format!(r#"function_calls_duration_seconds_bucket{{{labels},le="0.001"}} 2"#),
                format!(r#"function_calls_duration_seconds_bucket{{{labels},le="+Inf"}} 4"#),
                format!(r#"function_calls_duration_seconds_sum{{{labels}}} 5.0007005"#),
                format!(r#"function_calls_duration_seconds_count{{{labels}}} 4"#),
            ]
        );
    }

    const API: Objective = Objective::new("api")
        .success_rate(crate::metrics::ObjectivePercentile::P99_9)
        .latency(
            std::time::Duration::from_millis(250),
            crate::metrics::ObjectivePercentile::P99,
        );
    static SLO_INFO: SiteInfo = SiteInfo {
        function: "handle",
        module: "api",
        file: "api.rs",
        line: 1,
    };
    static SLO_COUNTER_CELLS: crate::metrics::site::CounterCells =
        crate::metrics::site::CounterCells::new();
    static SLO_COUNTER: Counter = Counter::new(
        "function_calls_total",
        &[("team", "web")],
        Some(&API),
        &SLO_COUNTER_CELLS,
    );
    static SLO_CELLS: TimedCells = TimedCells::new();
    static SLO_HISTOGRAM: Histogram = Histogram::new(NAME, &[], None, Some(&API), &SLO_CELLS);

    /// The labels Autometrics' SLO rules select on: the success-rate target
    /// on the counter, the latency target (with the threshold written as the
    /// `le` label it must equal) on every histogram series; none on the gauge.
    #[test]
    fn objectives_label_their_series_as_the_autometrics_rules_expect() {
        let mut out = String::new();
        render_function_metrics(
            &mut out,
            "svc",
            false,
            None,
            [(&SLO_INFO, &SLO_COUNTER)].into_iter(),
            [(&SLO_INFO, &SLO_HISTOGRAM)].into_iter(),
        );
        let site = r#"function="handle",module="api",service_name="svc""#;
        for line in [
            format!(
                r#"function_calls_total{{{site},team="web",objective_name="api",objective_percentile="99.9",result="error"}} 0"#
            ),
            format!(
                r#"function_calls_duration_seconds_bucket{{{site},objective_name="api",objective_percentile="99",objective_latency_threshold="0.25",le="0.25"}} 0"#
            ),
            format!(
                r#"function_calls_duration_seconds_count{{{site},objective_name="api",objective_percentile="99",objective_latency_threshold="0.25"}} 0"#
            ),
            format!(r#"function_calls_concurrent{{{site}}} 0"#),
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
    }
}
