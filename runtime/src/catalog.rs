//! Every instrumented function in the program, gathered from the
//! subsystems' link-time catalogs (metrics and breakers).

use std::collections::HashMap;

use crate::breaker::site::breaker_sites;
use crate::metrics::catalog::{counted_sites, timed_sites};
use crate::metrics::site::SiteInfo;

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
    /// Which catalogued attributes it has (`"counted"`, `"timed"`,
    /// `"circuit_breaker"`).
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
                });
                by_function.len() - 1
            });
        let attributes = &mut by_function[position].attributes;
        if !attributes.contains(&attribute) {
            attributes.push(attribute);
        }
        position
    };
    let counted: Vec<_> = counted_sites()
        .map(|site| (entry(&site.info, "counted"), site.counts()))
        .collect();
    let timed: Vec<_> = timed_sites()
        .map(|site| {
            let position = entry(&site.info, "timed");
            (position, site.snapshot().count(), site.in_flight())
        })
        .collect();
    for site in breaker_sites() {
        entry(&site.info, "circuit_breaker");
    }
    for (position, (ok, error)) in counted {
        by_function[position].calls += ok + error;
        by_function[position].errors += error;
    }
    for (position, calls, in_flight) in timed {
        let stats = &mut by_function[position];
        if !stats.attributes.contains(&"counted") {
            stats.calls += calls;
        }
        stats.in_flight += in_flight;
    }
    by_function.sort_by(|a, b| (a.module, a.function).cmp(&(b.module, b.function)));
    by_function
}
