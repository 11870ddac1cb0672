//! Function metrics: what `#[counted]` and `#[timed]` record and how
//! `/metrics` shows it.
//!
//! This folder owns:
//! - `site`: the per-call-site statics (names, labels, cells) and the guards
//!   generated code creates on each call;
//! - `shard`: per-thread cell selection, so threads calling one function do
//!   not share a cache line;
//! - `buckets`: histogram bounds (the spec's defaults, per-function and
//!   process-wide bounds);
//! - `render` and `exposition`: the Prometheus text format, also used by the
//!   other subsystems for their own series (rendering takes the sites to
//!   render, so this folder knows nothing of the function catalog);
//! - `labels`: labels computed on each call, their per-site series cells and
//!   cardinality limit;
//! - `value`: `#[histogram]`'s and `#[gauge]`'s cells (values a function
//!   sees, not durations);
//! - `exemplar`: the last sampled call kept per counter and bucket, linking
//!   series to traces in OpenMetrics;
//! - `openmetrics`: the OpenMetrics text format, negotiated per scrape;
//! - `objective`: service-level objectives and the labels they add;
//! - `process`: the `process_*` families read from `/proc`;
//! - `recorder`: the `metrics` facade recorder, served beside them.

pub(crate) mod buckets;
pub(crate) mod exemplar;
pub(crate) mod exposition;
pub(crate) mod labels;
pub(crate) mod objective;
pub(crate) mod openmetrics;
pub(crate) mod process;
#[cfg(feature = "metrics-recorder")]
pub(crate) mod recorder;
pub(crate) mod render;
pub(crate) mod shard;
pub(crate) mod site;
pub(crate) mod value;

pub use buckets::{set_default_buckets, validate_buckets, BucketError, DEFAULT_BUCKETS};
pub use labels::{LabelKey, LabelValue, DEFAULT_CARDINALITY_LIMIT};
pub use objective::{LatencyTarget, Objective, ObjectivePercentile};
pub use openmetrics::ExpositionFormat;
pub use render::CONCURRENT_METRIC;
pub use site::{HistogramSnapshot, MAX_CALLERS};
pub use value::{MetricValue, ValueSnapshot};
