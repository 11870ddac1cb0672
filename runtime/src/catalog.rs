//! The compile-time catalog of every instrumented function.
//!
//! Each attribute puts one entry into a link-time distributed slice, so the
//! runtime knows every instrumented function before any of them runs: their
//! series are exported at zero from the start and `/status` lists them.

use linkme::distributed_slice;

use crate::breaker::site::BreakerSite;
use crate::site::{CountedSite, TimedSite};

/// One catalog entry, created by an attribute.
#[doc(hidden)]
pub enum Site {
    Counted(&'static CountedSite),
    Timed(&'static TimedSite),
    Breaker(&'static BreakerSite),
}

#[doc(hidden)]
#[distributed_slice]
pub static SITES: [Site];

pub(crate) fn counted_sites() -> impl Iterator<Item = &'static CountedSite> {
    SITES.iter().filter_map(|site| match site {
        Site::Counted(counted) => Some(*counted),
        _ => None,
    })
}

pub(crate) fn timed_sites() -> impl Iterator<Item = &'static TimedSite> {
    SITES.iter().filter_map(|site| match site {
        Site::Timed(timed) => Some(*timed),
        _ => None,
    })
}

pub(crate) fn default_bucket_sites_have_recorded() -> bool {
    timed_sites().any(|site| site.uses_default_bounds() && site.snapshot().count() > 0)
}

/// What the catalog knows about one instrumented function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionStats {
    /// `function` label (`Type::method` for methods of an annotated impl block).
    pub function: &'static str,
    /// `module` label.
    pub module: &'static str,
    /// Source file of the function.
    pub file: &'static str,
    /// Line of the function's name.
    pub line: u32,
    /// Which attributes instrument it (`"counted"`, `"timed"`).
    pub attributes: Vec<&'static str>,
    /// Finished calls: from `#[counted]` when present, else from `#[timed]`.
    pub calls: u64,
    /// Calls counted with `result="error"` (only known with `#[counted]`).
    pub errors: u64,
    /// Calls running now (only known with `#[timed]`).
    pub in_flight: i64,
}

/// Every instrumented function linked into this program, sorted by module
/// and name, with its counts so far.
///
/// ```
/// for f in telemark_runtime::instrumented_functions() {
///     println!("{}::{} called {} times", f.module, f.function, f.calls);
/// }
/// ```
pub fn instrumented_functions() -> Vec<FunctionStats> {
    let mut by_function: Vec<FunctionStats> = Vec::new();
    let mut entry = |info: &crate::site::SiteInfo| -> usize {
        if let Some(pos) = by_function
            .iter()
            .position(|f| f.function == info.function && f.module == info.module)
        {
            return pos;
        }
        by_function.push(FunctionStats {
            function: info.function,
            module: info.module,
            file: info.file,
            line: info.line,
            attributes: Vec::new(),
            calls: 0,
            errors: 0,
            in_flight: 0,
        });
        by_function.len() - 1
    };
    let mut counted_calls = Vec::new();
    for site in counted_sites() {
        let pos = entry(&site.info);
        let (ok, error) = site.counts();
        counted_calls.push((pos, ok + error, error));
    }
    let mut timed_calls = Vec::new();
    for site in timed_sites() {
        let pos = entry(&site.info);
        timed_calls.push((pos, site.snapshot().count(), site.in_flight()));
    }
    for (pos, calls, errors) in counted_calls {
        let f = &mut by_function[pos];
        f.attributes.push("counted");
        f.calls += calls;
        f.errors += errors;
    }
    for (pos, calls, in_flight) in timed_calls {
        let f = &mut by_function[pos];
        f.attributes.push("timed");
        if !f.attributes.contains(&"counted") {
            f.calls += calls;
        }
        f.in_flight += in_flight;
    }
    by_function.sort_by(|a, b| (a.module, a.function).cmp(&(b.module, b.function)));
    by_function
}
