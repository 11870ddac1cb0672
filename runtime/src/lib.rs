//! Runtime of [telemark](https://docs.rs/telemark): what the code generated
//! by `#[counted]` and `#[timed]` calls, the catalog of instrumented
//! functions, Prometheus rendering and the HTTP endpoints.
//!
//! Users depend on the `telemark` facade crate, which re-exports this crate.
//!
//! Hot path: every call site owns a `static` with its names and a `static`
//! block of per-thread cache-line-aligned atomic cells. A call reads the
//! kill switch, picks its thread's cell and adds to it; nothing is looked
//! up, hashed or allocated. `/metrics` adds the cells up when scraped.

#![warn(missing_docs)]

mod buckets;
mod catalog;
mod render;
mod shard;
mod site;
mod switch;
mod telemetry;

pub use buckets::{
    set_default_buckets, validate_buckets, BucketError, DEFAULT_BUCKETS, MAX_BUCKETS,
};
pub use catalog::{instrumented_functions, FunctionStats};
pub use render::CONCURRENT_METRIC;
pub use switch::{is_enabled, set_enabled};
pub use telemetry::{Telemetry, TelemetryBuilder, TelemetryError, DEFAULT_LISTEN_ADDRESS};

/// Items used by generated code. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::buckets::default_bounds;
    pub use crate::catalog::{Site, SITES};
    pub use crate::site::{
        clock, CallOnce, Classify, ClassifyOther, ClassifyResult, CountedGuard, CountedSite,
        CounterCells, HistogramSnapshot, SiteInfo, TimedCells, TimedGuard, TimedSite,
    };
    pub use linkme;
}
