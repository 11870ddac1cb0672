//! Runtime of [telemark](https://docs.rs/telemark): what the code generated
//! by `#[counted]`, `#[timed]`, `#[traced]` and `#[circuit_breaker]` calls,
//! and the services behind it.
//!
//! Users depend on the `telemark` facade crate, which re-exports this crate.
//!
//! One folder per subsystem; data flows one way, from an annotated
//! function's call-site `static` through a guard to the subsystem's cells,
//! span record or breaker state, then out through exporters:
//!
//! - [`metrics`]: call-site cells and sharding, buckets, Prometheus
//!   rendering, the `metrics` facade recorder;
//! - [`trace`]: the span record, sampling, the export pipeline, exporters;
//! - [`breaker`]: the breaker state machine, registry, retry and call sites;
//! - `server`: the HTTP endpoints (`/metrics`, `/health`, `/ready`, `/status`);
//! - [`propagation`]: W3C trace context in HTTP headers;
//! - [`telemetry`]: start-up, where the subsystems are put together;
//! - [`catalog`]: every instrumented function, over the subsystems' catalogs;
//! - `call`: the one `static` (also its catalog entry) and the one guard
//!   generated code declares per instrumented function, driving the
//!   subsystems' parts in one order;
//! - small shared leaves that import nothing above them: `clock`, `rng`,
//!   `switch` (the kill switch), `site` (where a function is), `error`
//!   ([`ConfigError`](telemetry::ConfigError)) and [`limits`] (the
//!   `telemark-limits` crate, shared with the macros).
//!
//! Hot path: every call site owns a `static` with its names and a `static`
//! block of per-thread cache-line-aligned atomic cells. A call reads the
//! kill switch, picks its thread's cell and adds to it; nothing is looked
//! up, hashed or allocated. `/metrics` adds the cells up when scraped.

#![warn(missing_docs)]

mod active_span;
pub mod breaker;
mod call;
mod caller;
pub mod catalog;
mod clock;
mod error;
pub mod integrations;
pub mod metrics;
pub mod propagation;
#[cfg(feature = "otlp")]
pub mod push;
mod report;
mod rng;
#[cfg(feature = "server")]
mod server;
mod site;
mod switch;
pub mod telemetry;
pub mod trace;

/// The limits shared with the macros (the `telemark-limits` crate).
pub use telemark_limits as limits;

pub use breaker::{BreakerError, CircuitBreaker};
pub use metrics::Objective;
pub use switch::{is_enabled, set_enabled};
pub use telemetry::Telemetry;
pub use trace::Traces;

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
        attempt, attempt_untimed, every_error_fails, finish as breaker_finish, judge, sleep,
        sleep_blocking, Attempt, Attempts, BreakerResult, BreakerSite, CannotCarry, CarriesRefusal,
        Refusal, BREAKER_SITES,
    };
    pub use crate::breaker::{BreakerConfig, Jitter, RetryPolicy, Verdict};
    pub use crate::call::{
        call_once, span_error_debug, span_error_display, span_return_debug, span_return_display,
        sync_span, type_of_return, AsyncCall, Call, CallerScoped, Counting, HoldsSpan,
        Instrumented, Off, Site, Timing, FUNCTION_SITES,
    };
    pub use crate::metrics::labels::{
        label_from, label_key, series_cells, LabelKey, LabeledCall, LabeledCounterCells,
        LabeledCounts,
    };
    pub use crate::metrics::site::{
        check_counter_objective, check_histogram_objective, Classify, Counter, CounterCells,
        Histogram, TimedCells,
    };
    pub use crate::metrics::value::{
        metric_value, value_from, Gauge, GaugeCell, ValueCells, ValueHistogram,
    };
    pub use crate::site::SiteInfo;
    pub use crate::switch::is_enabled;
    pub use crate::trace::span::{
        capture_debug, capture_display, AsyncSpan, FillOnce, IntoAttributeValue, Kind, SpanRecord,
        SpanSlot, TraceSite,
    };
    pub use core::option::Option::{None, Some};
    pub use linkme;
}
