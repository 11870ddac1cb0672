//! Prometheus text exposition of the function metrics and `build_info`.

use std::collections::{BTreeMap, HashMap};

use super::exposition::{format_seconds, header, sample, write_label_set};
use super::site::{CountedSite, HistogramSnapshot, SiteInfo, TimedSite};

/// `build_info` labels.
#[derive(Debug, Clone)]
pub(crate) struct BuildInfo {
    pub version: String,
    pub commit: String,
    pub branch: String,
}

/// Name of the in-flight gauge family.
pub const CONCURRENT_METRIC: &str = "function_calls_concurrent";

/// `function`, `module`, `service_name`, the site's own labels, then `tail`.
fn labels<'a>(
    info: &'a SiteInfo,
    service: &'a str,
    tail: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    [
        ("function", info.function),
        ("module", info.module),
        ("service_name", service),
    ]
    .into_iter()
    .chain(info.labels.iter().copied())
    .chain(tail.iter().copied())
}

/// The identity of a series: two call sites with the same one (a method-level
/// attribute and a free function of one name in one module, two trait impls
/// of one method, …) are rendered as one series with their counts added.
type Identity = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn identity(info: &SiteInfo) -> Identity {
    (info.metric, info.function, info.module, info.labels)
}

/// Series of one family, in catalog order, merged by identity.
struct Family<'a, T> {
    series: Vec<(&'a SiteInfo, T)>,
    index: HashMap<Identity, usize>,
}

impl<'a, T> Default for Family<'a, T> {
    fn default() -> Self {
        Family {
            series: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<'a, T> Family<'a, T> {
    fn add(&mut self, info: &'a SiteInfo, value: T, merge: impl FnOnce(&mut T, T)) {
        match self.index.get(&identity(info)) {
            Some(&position) => merge(&mut self.series[position].1, value),
            None => {
                self.index.insert(identity(info), self.series.len());
                self.series.push((info, value));
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

/// Renders the series of every given call site, zero-valued ones included.
pub(crate) fn render_function_metrics(
    out: &mut String,
    service: &str,
    counted: impl Iterator<Item = &'static CountedSite>,
    timed: impl Iterator<Item = &'static TimedSite>,
) {
    let mut counters: BTreeMap<&str, Family<(u64, u64)>> = BTreeMap::new();
    for site in counted {
        let family = counters.entry(site.info.metric).or_default();
        family.add(&site.info, site.counts(), |total, (ok, error)| {
            total.0 += ok;
            total.1 += error;
        });
    }
    for (name, family) in &counters {
        header(
            out,
            name,
            "counter",
            "Calls of instrumented functions by result.",
        );
        for (info, (ok, error)) in &family.series {
            for (result, value) in [("ok", ok), ("error", error)] {
                sample(
                    out,
                    name,
                    labels(info, service, &[("result", result)]),
                    value,
                );
            }
        }
    }

    let mut histograms: BTreeMap<&str, Family<(HistogramSnapshot, i64)>> = BTreeMap::new();
    for site in timed {
        let family = histograms.entry(site.info.metric).or_default();
        let value = (site.snapshot(), site.in_flight());
        family.add(&site.info, value, |total, (snapshot, in_flight)| {
            merge_histograms(&mut total.0, snapshot);
            total.1 += in_flight;
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
        for (info, (snapshot, _)) in &family.series {
            for (bound, cumulative) in snapshot.bounds_nanos.iter().zip(&snapshot.cumulative) {
                let le = format_seconds(*bound);
                sample(
                    out,
                    &bucket,
                    labels(info, service, &[("le", &le)]),
                    cumulative,
                );
            }
            let count = snapshot.count();
            sample(
                out,
                &bucket,
                labels(info, service, &[("le", "+Inf")]),
                count,
            );
            let seconds = snapshot.sum_nanos as f64 / 1e9;
            sample(
                out,
                &format!("{name}_sum"),
                labels(info, service, &[]),
                seconds,
            );
            sample(
                out,
                &format!("{name}_count"),
                labels(info, service, &[]),
                count,
            );
        }
    }

    // One gauge per function, whatever its histogram is named.
    let mut gauges: Vec<(&SiteInfo, i64)> = Vec::new();
    let mut seen: HashMap<_, usize> = HashMap::new();
    for (info, (_, in_flight)) in histograms.values().flat_map(|family| &family.series) {
        match seen.get(&(info.function, info.module, info.labels)) {
            Some(&position) => gauges[position].1 += in_flight,
            None => {
                seen.insert((info.function, info.module, info.labels), gauges.len());
                gauges.push((info, *in_flight));
            }
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
            sample(
                out,
                CONCURRENT_METRIC,
                labels(info, service, &[]),
                in_flight,
            );
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
        ],
    );
    out.push_str(" 1\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::site::TimedCells;

    const fn info(function: &'static str) -> SiteInfo {
        SiteInfo {
            function,
            module: "shop",
            file: "shop.rs",
            line: 1,
            metric: "function_calls_duration_seconds",
            labels: &[],
        }
    }

    static FINE_CELLS: TimedCells = TimedCells::new();
    static FINE_BOUNDS: [u64; 3] = [1_000, 1_000_000, 1_000_000_000];
    static FINE: TimedSite = TimedSite::new(info("pay"), &FINE_CELLS, Some(&FINE_BOUNDS));
    static COARSE_CELLS: TimedCells = TimedCells::new();
    static COARSE_BOUNDS: [u64; 2] = [1_000_000, 5_000_000_000];
    static COARSE: TimedSite = TimedSite::new(info("pay"), &COARSE_CELLS, Some(&COARSE_BOUNDS));

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
            std::iter::empty(),
            [&FINE, &COARSE].into_iter(),
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
}
