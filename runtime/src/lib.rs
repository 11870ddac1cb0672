//! Runtime of [telemark](https://docs.rs/telemark): what the code generated
//! by `#[counted]`, `#[timed]`, `#[traced]` and `#[circuit_breaker]` calls, the span pipeline,
//! circuit breakers and retry, the catalog of instrumented functions, Prometheus rendering and
//! the HTTP endpoints.
//!
//! Users depend on the `telemark` facade crate, which re-exports this crate.
//!
//! Hot path: every call site owns a `static` with its names and a `static`
//! block of per-thread cache-line-aligned atomic cells. A call reads the
//! kill switch, picks its thread's cell and adds to it; nothing is looked
//! up, hashed or allocated. `/metrics` adds the cells up when scraped.

#![warn(missing_docs)]

mod breaker;
mod buckets;
mod catalog;
mod propagation;
mod render;
mod shard;
mod site;
mod switch;
mod telemetry;
mod trace;

pub use breaker::retry::RetryPolicyError;
pub use breaker::{
    BreakerClock, BreakerConfig, BreakerConfigError, BreakerError, BreakerState, BreakerStats,
    CircuitBreaker, Jitter, ManualClock, Permit, RetryPolicy, Transition, Verdict,
    MAX_HALF_OPEN_CALLS, MAX_WINDOW,
};
pub use buckets::{
    set_default_buckets, validate_buckets, BucketError, DEFAULT_BUCKETS, MAX_BUCKETS,
};
pub use catalog::{instrumented_functions, FunctionStats};
pub use propagation::{extract_context, inject_context, inject_context_from};
pub use render::CONCURRENT_METRIC;
pub use switch::{is_enabled, set_enabled};
pub use telemetry::{Telemetry, TelemetryBuilder, TelemetryError, DEFAULT_LISTEN_ADDRESS};
pub use trace::{BatchLimits, ConsoleExporter, OtlpProtocol, Root, Sampler, SamplerError, Traces};

/// The `http` crate whose `HeaderMap` the propagation helpers use.
pub use http;
/// The OpenTelemetry API crate telemark builds on (for `Context`, propagation, …).
pub use opentelemetry;
/// The OpenTelemetry SDK crate telemark builds on (for custom span exporters).
pub use opentelemetry_sdk;

/// Items used by generated code. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::breaker::site::{
        attempt, every_error_fails, finish as breaker_finish, judge, refused, sleep,
        sleep_blocking, Attempt, Attempts, BreakerResult, BreakerSite,
    };
    pub use crate::breaker::{BreakerConfig, Jitter, RetryPolicy, Verdict};
    pub use crate::buckets::default_bounds;
    pub use crate::catalog::{Site, SITES};
    pub use crate::site::{
        clock, CallOnce, Classify, ClassifyOther, ClassifyResult, CountedGuard, CountedSite,
        CounterCells, HistogramSnapshot, SiteInfo, TimedCells, TimedGuard, TimedSite,
    };
    pub use crate::switch::is_enabled;
    pub use crate::trace::span::{
        capture_debug, capture_display, span_error_debug, span_error_display, AsyncSpan,
        IntoAttributeValue, Kind, SpanRecord, SpanSlot, SyncSpan, TraceSite,
    };
    pub use linkme;
}
