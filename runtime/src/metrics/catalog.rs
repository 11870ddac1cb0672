//! The link-time catalog of `#[counted]` and `#[timed]` call sites.
//!
//! Each instrumented function puts one entry into [`METRIC_SITES`], so the
//! runtime knows every such function before any of them runs: its series
//! are exported at zero from the start and `/status` lists it.

use linkme::distributed_slice;

use super::site::{CountedSite, TimedSite};

/// One catalog entry, created by an attribute.
#[doc(hidden)]
pub enum MetricSite {
    Counted(&'static CountedSite),
    Timed(&'static TimedSite),
}

/// Every `#[counted]` and `#[timed]` call site linked into the program.
#[doc(hidden)]
#[distributed_slice]
pub static METRIC_SITES: [MetricSite];

pub(crate) fn counted_sites() -> impl Iterator<Item = &'static CountedSite> {
    METRIC_SITES.iter().filter_map(|site| match site {
        MetricSite::Counted(counted) => Some(*counted),
        MetricSite::Timed(_) => None,
    })
}

pub(crate) fn timed_sites() -> impl Iterator<Item = &'static TimedSite> {
    METRIC_SITES.iter().filter_map(|site| match site {
        MetricSite::Timed(timed) => Some(*timed),
        MetricSite::Counted(_) => None,
    })
}
