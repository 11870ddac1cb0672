//! Every instrumented function in the program, gathered from the link-time
//! catalogs: one entry per instrumented function (its `Site`), one per
//! circuit-breaker function.

use std::collections::HashMap;

use crate::breaker::site::breaker_sites;
use crate::call::FUNCTION_SITES;
use crate::metrics::site::{Counter, Histogram};
use crate::metrics::value::{Gauge, ValueHistogram};
use crate::metrics::Objective;
use crate::site::SiteInfo;

/// Every function's counter, with where the function is.
pub(crate) fn counted_sites() -> impl Iterator<Item = (&'static SiteInfo, &'static Counter)> {
    FUNCTION_SITES
        .iter()
        .filter_map(|site| Some((&site.metrics.info, site.metrics.counter.as_ref()?)))
}

/// Every function's histogram, with where the function is.
pub(crate) fn timed_sites() -> impl Iterator<Item = (&'static SiteInfo, &'static Histogram)> {
    FUNCTION_SITES
        .iter()
        .filter_map(|site| Some((&site.metrics.info, site.metrics.histogram.as_ref()?)))
}

/// Every `#[histogram]` function's histogram, with where the function is.
pub(crate) fn value_histogram_sites(
) -> impl Iterator<Item = (&'static SiteInfo, &'static ValueHistogram)> {
    FUNCTION_SITES
        .iter()
        .filter_map(|site| Some((&site.metrics.info, site.metrics.value_histogram?)))
}

/// Every `#[gauge]` function's gauge, with where the function is.
pub(crate) fn gauge_sites() -> impl Iterator<Item = (&'static SiteInfo, &'static Gauge)> {
    FUNCTION_SITES
        .iter()
        .filter_map(|site| Some((&site.metrics.info, site.metrics.gauge?)))
}

/// Two attributes of different kinds naming one metric family (a
/// `#[histogram]` and a `#[gauge]` both `queue_depth`, say): `/metrics`
/// cannot show one name as two families. `(name, first, second)`, each
/// side as `#[attribute] on function (module)`.
pub(crate) fn family_clash() -> Option<(&'static str, String, String)> {
    let mut seen: HashMap<&'static str, (&'static str, &'static SiteInfo)> = HashMap::new();
    let named = counted_sites()
        .map(|(info, counter)| (counter.metric, "counted", info))
        .chain(timed_sites().map(|(info, histogram)| (histogram.metric, "timed", info)))
        .chain(timed_sites().map(|(info, _)| (crate::metrics::CONCURRENT_METRIC, "timed", info)))
        .chain(
            value_histogram_sites().map(|(info, histogram)| (histogram.metric, "histogram", info)),
        )
        .chain(gauge_sites().map(|(info, gauge)| (gauge.metric, "gauge", info)));
    let describe = |attribute: &str, info: &SiteInfo| {
        format!("#[{attribute}] on `{}` ({})", info.function, info.module)
    };
    for (name, attribute, info) in named {
        match seen.get(name) {
            Some((other, first)) if *other != attribute => {
                return Some((name, describe(other, first), describe(attribute, info)));
            }
            Some(_) => {}
            None => {
                seen.insert(name, (attribute, info));
            }
        }
    }
    None
}

/// The first `#[timed]` function on the default buckets whose objective's
/// latency threshold is not among `default_bounds` (nanoseconds): those
/// bounds cannot become the defaults.
pub(crate) fn objective_outside_bounds(
    default_bounds: &[u64],
) -> Option<(&'static SiteInfo, &'static Objective)> {
    timed_sites().find_map(|(info, histogram)| {
        let objective = histogram.objective?;
        let threshold = objective.latency_target()?.threshold_nanos;
        (histogram.uses_default_bounds() && !default_bounds.contains(&threshold))
            .then_some((info, objective))
    })
}

/// What the catalog knows about one instrumented function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionStats {
    /// `function` label (`Type::method` for methods of an annotated impl block).
    pub function: &'static str,
    /// `module` label.
    pub module: &'static str,
    /// Source file of the function.
    pub file: &'static str,
    /// Line of the function's name.
    pub line: u32,
    /// Its attributes (`"counted"`, `"timed"`, `"traced"`, `"histogram"`,
    /// `"gauge"`, `"circuit_breaker"`).
    pub attributes: Vec<&'static str>,
    /// Finished calls: from `#[counted]` when present, else from `#[timed]`
    /// (0 when neither says).
    pub calls: u64,
    /// Calls counted with `result="error"` (only known with `#[counted]`).
    pub errors: u64,
    /// Calls running now (only known with `#[timed]`).
    pub in_flight: i64,
    /// The series of the labels `#[counted]` computes on each call, if it
    /// computes any.
    pub computed_labels: Option<ComputedLabelStats>,
}

/// How many series a `#[counted]` function's computed labels made, against
/// its cardinality limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComputedLabelStats {
    /// Series made so far (at most `cardinality_limit`).
    pub series: usize,
    /// The most series the function's counter makes.
    pub cardinality_limit: usize,
    /// Calls counted in the overflow series, whose label values would have
    /// made a series beyond the limit.
    pub overflow_calls: u64,
}

/// Every instrumented function linked into this program, sorted by module
/// and name, with its counts so far.
///
/// ```
/// for f in telemark_runtime::catalog::instrumented_functions() {
///     println!("{}::{} called {} times", f.module, f.function, f.calls);
/// }
/// ```
pub fn instrumented_functions() -> Vec<FunctionStats> {
    let mut by_function: Vec<FunctionStats> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut entry = |info: &SiteInfo, attribute: &'static str| -> usize {
        let position = *index
            .entry((info.function, info.module))
            .or_insert_with(|| {
                by_function.push(FunctionStats {
                    function: info.function,
                    module: info.module,
                    file: info.file,
                    line: info.line,
                    attributes: Vec::new(),
                    calls: 0,
                    errors: 0,
                    in_flight: 0,
                    computed_labels: None,
                });
                by_function.len() - 1
            });
        let attributes = &mut by_function[position].attributes;
        if !attributes.contains(&attribute) {
            attributes.push(attribute);
        }
        position
    };
    let mut recorded = Vec::new();
    for site in FUNCTION_SITES.iter() {
        let metrics = &site.metrics;
        let parts = [
            ("counted", metrics.counter.is_some()),
            ("timed", metrics.histogram.is_some()),
            ("traced", site.span.is_some()),
            ("histogram", metrics.value_histogram.is_some()),
            ("gauge", metrics.gauge.is_some()),
        ];
        let mut position = None;
        for (attribute, present) in parts {
            if present {
                position = Some(entry(&metrics.info, attribute));
            }
        }
        if let Some(position) = position {
            recorded.push((position, metrics));
        }
    }
    for site in breaker_sites() {
        entry(&site.info, "circuit_breaker");
    }
    for (position, metrics) in recorded {
        let stats = &mut by_function[position];
        if let Some(counter) = &metrics.counter {
            let (ok, error) = counter.counts();
            stats.calls += ok + error;
            stats.errors += error;
            if let Some(computed) = &counter.computed {
                let (ok, error) = computed.cells.overflow();
                let seen = stats.computed_labels.get_or_insert(ComputedLabelStats {
                    series: 0,
                    cardinality_limit: 0,
                    overflow_calls: 0,
                });
                seen.series += computed.cells.series();
                seen.cardinality_limit += computed.cells.limit();
                seen.overflow_calls += ok + error;
            }
        }
        if let Some(histogram) = &metrics.histogram {
            if metrics.counter.is_none() {
                stats.calls += histogram.snapshot().count();
            }
            stats.in_flight += histogram.in_flight();
        }
    }
    by_function.sort_by(|a, b| (a.module, a.function).cmp(&(b.module, b.function)));
    by_function
}
