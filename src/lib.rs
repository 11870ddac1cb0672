//! # telemark
//!
//! Attribute macros that generate production instrumentation at compile time.
//!
//! - [`#[counted]`](counted): `function_calls_total{function, module, service_name, result}`.
//! - [`#[timed]`](timed): the `function_calls_duration_seconds` histogram and the
//!   `function_calls_concurrent` gauge.
//! - [`#[traced]`](traced): one OpenTelemetry span per call, exported by
//!   [`Traces`] (console or any SDK span exporter).
//!
//! Metric names follow the Autometrics v1.0.0 specification, so dashboards
//! and alert rules written for it work unchanged. Start the endpoints
//! (`/metrics`, `/health`, `/ready`, `/status`) with [`builder!`]:
//!
//! ```no_run
//! #[telemark::counted]
//! #[telemark::timed]
//! fn charge(cents: u64) -> Result<u64, String> {
//!     if cents == 0 { Err("nothing to charge".into()) } else { Ok(cents) }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = telemark::builder!().listen("127.0.0.1:9464").start()?;
//! charge(250)?;
//! print!("{}", telemetry.render_metrics());
//! # Ok(()) }
//! ```
//!
//! ## How calls are recorded
//!
//! Each annotated function gets `static` call-site data (names, labels and
//! per-thread atomic cells) and a guard created when the call starts. The
//! guard records when it is dropped, so early `return`s, `?`, panics and
//! cancelled futures are all recorded:
//!
//! - a panic is counted as `result="error"`, then keeps unwinding;
//! - an `async fn` (or a returned future) is measured from its first poll to
//!   its completion; if it is dropped before completing (cancelled), it
//!   leaves the in-flight gauge, is timed up to the drop and is counted as
//!   `result="error"`. A future dropped before its first poll never started
//!   and records nothing.
//!
//! Every annotated function is also entered in a link-time catalog, so its
//! series are exported at zero before its first call and `/status` lists it.
//!
//! ## Switching instrumentation off
//!
//! [`set_enabled(false)`](set_enabled) reduces every attribute to one relaxed
//! atomic load. The cargo feature `disable-instrumentation` compiles the
//! attributes out entirely: annotated functions expand to themselves.

pub use telemark_macros::{counted, timed, traced};
pub use telemark_runtime::{
    builder, extract_context, http, inject_context, inject_context_from, instrumented_functions,
    is_enabled, opentelemetry, opentelemetry_sdk, set_default_buckets, set_enabled,
    validate_buckets, BatchLimits, BucketError, ConsoleExporter, FunctionStats, OtlpProtocol, Root,
    Sampler, SamplerError, Telemetry, TelemetryBuilder, TelemetryError, Traces, CONCURRENT_METRIC,
    DEFAULT_BUCKETS, DEFAULT_LISTEN_ADDRESS, MAX_BUCKETS,
};

#[doc(hidden)]
pub mod __private {
    pub use telemark_runtime::__private::*;
}
