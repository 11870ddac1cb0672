//! # telemark
//!
//! Attribute macros that generate production instrumentation at compile time.
//!
//! - [`#[counted]`](counted): `function_calls_total{function, module, service_name, result}`.
//! - [`#[timed]`](timed): the `function_calls_duration_seconds` histogram and the
//!   `function_calls_concurrent` gauge.
//! - [`#[traced]`](traced): one OpenTelemetry span per call, exported by
//!   [`Traces`] (console or any SDK span exporter).
//! - [`#[circuit_breaker]`](circuit_breaker): calls through a named
//!   [`CircuitBreaker`], with timeout, retry with backoff and fallback.
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
//! // With the `server` feature (on by default), serves on 127.0.0.1:9464.
//! let telemetry = telemark::builder!().start()?;
//! charge(250)?;
//! print!("{}", telemetry.render_metrics());
//! # Ok(()) }
//! ```
//!
//! ## Where things are
//!
//! The everyday items are at the root: the four attributes, [`builder!`],
//! [`Telemetry`], [`Traces`], [`set_enabled`], [`CircuitBreaker`] and
//! [`BreakerError`]. The rest is in modules:
//!
//! - [`telemetry`]: the builder, start-up errors, [`ConfigError`](telemetry::ConfigError);
//! - [`metrics`]: histogram buckets, the in-flight gauge's name;
//! - [`trace`]: samplers, batch limits, exporters;
//! - [`propagation`]: W3C trace context in HTTP headers;
//! - [`breaker`]: breaker configuration, state, statistics, retry policies;
//! - [`catalog`]: every instrumented function and its counts;
//! - [`limits`]: the limits the attributes and the runtime share.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `server` | on | the HTTP endpoints (hyper): `/metrics`, `/health`, `/ready`, `/status` |
//! | `otlp` | on | span export over OTLP/gRPC and OTLP/HTTP (`Traces::otlp*`), headers, gzip |
//! | `tls` | on | OTLP over `https://`: rustls, Mozilla's roots, a private CA, mutual TLS |
//! | `metrics-recorder` | on | a `metrics` facade recorder: `metrics::counter!` and friends on `/metrics` |
//! | `process-metrics` | on | `process_*` families (CPU, memory, file descriptors, threads, start time) on Linux |
//! | `caller-labels` | off | counters split by the calling instrumented function (`caller_function`, `caller_module`) |
//! | `disable-instrumentation` | off | compiles `#[counted]`, `#[timed]` and `#[traced]` out |
//!
//! With `default-features = false`, the attributes, the span pipeline (with
//! the console or any SDK exporter), circuit breakers and
//! [`Telemetry::render_metrics`] all work; serve the text yourself.
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
//! ## Service-level objectives
//!
//! An [`Objective`] is declared once, as a `const`, and attached to the
//! functions it covers; their series carry the Autometrics labels that SLO
//! rules select on (`assets/prometheus/alerts.yml` ships burn-rate alerts).
//!
//! ```
//! use std::time::Duration;
//! use telemark::metrics::ObjectivePercentile;
//! use telemark::{counted, timed, Objective};
//!
//! const CHECKOUT: Objective = Objective::new("checkout")
//!     .success_rate(ObjectivePercentile::P99_9)
//!     .latency(Duration::from_millis(250), ObjectivePercentile::P99);
//!
//! #[counted(objective = CHECKOUT)]
//! #[timed(objective = CHECKOUT)]
//! fn checkout(cart: &[u32]) -> Result<u32, String> {
//!     Ok(cart.iter().sum())
//! }
//!
//! assert_eq!(checkout(&[1, 2]), Ok(3));
//! let metrics = telemark::builder!().without_server().start()?.render_metrics();
//! assert!(metrics.lines().any(|line| line.starts_with("function_calls_total{")
//!     && line.contains(r#"objective_name="checkout",objective_percentile="99.9",result="ok"} 1"#)));
//! assert!(metrics.contains(r#"objective_latency_threshold="0.25",le="0.25"} 1"#));
//! # Ok::<(), telemark::telemetry::TelemetryError>(())
//! ```
//!
//! ## Switching instrumentation off
//!
//! [`set_enabled(false)`](set_enabled) reduces every attribute to one relaxed
//! atomic load (with the `caller-labels` feature, plus keeping the thread's
//! current function). The cargo feature `disable-instrumentation` compiles the
//! attributes out entirely: annotated functions expand to themselves.
//! `#[circuit_breaker]` is not instrumentation but protection: it keeps
//! working under both (switched off, it only stops counting calls).
//!
//! ## Circuit breakers
//!
//! ```
//! use telemark::{circuit_breaker, BreakerError};
//!
//! #[derive(Debug)]
//! enum FetchError { Refused(BreakerError), NotFound, Io }
//!
//! impl From<BreakerError> for FetchError {
//!     fn from(error: BreakerError) -> Self { FetchError::Refused(error) }
//! }
//!
//! fn is_not_found(error: &FetchError) -> bool { matches!(error, FetchError::NotFound) }
//!
//! #[circuit_breaker(name = "inventory", consecutive_failures = 3, open_for = "10s",
//!                   ignore_if = is_not_found)]
//! fn stock(item: u32) -> Result<u32, FetchError> {
//!     match item { 0 => Err(FetchError::NotFound), 13 => Err(FetchError::Io), n => Ok(n * 2) }
//! }
//!
//! assert_eq!(stock(4).unwrap(), 8);
//! for _ in 0..3 { assert!(matches!(stock(13), Err(FetchError::Io))); }
//! // Three failures in a row: the breaker is open and refuses calls.
//! assert!(matches!(stock(4), Err(FetchError::Refused(e)) if e.is_rejected()));
//! let breaker = telemark::CircuitBreaker::named("inventory").unwrap();
//! assert_eq!(breaker.state(), telemark::breaker::BreakerState::Open);
//! breaker.reset();
//! assert_eq!(stock(4).unwrap(), 8);
//! ```

pub use telemark_macros::{circuit_breaker, counted, gauge, histogram, timed, traced, LabelValue};
pub use telemark_runtime::metrics::LabelValue;
/// The OTLP metrics push (with the `otlp` feature).
#[cfg(feature = "otlp")]
pub use telemark_runtime::push;
pub use telemark_runtime::{
    breaker, builder, catalog, integrations, limits, metrics, propagation, telemetry, trace,
};
pub use telemark_runtime::{
    is_enabled, set_enabled, BreakerError, CircuitBreaker, Objective, Telemetry, Traces,
};

/// The `http` crate whose `HeaderMap` the [`propagation`] helpers use.
pub use telemark_runtime::http;
/// The OpenTelemetry API crate telemark builds on (for `Context`, propagation, …).
pub use telemark_runtime::opentelemetry;
/// The OpenTelemetry SDK crate telemark builds on (for custom span exporters).
pub use telemark_runtime::opentelemetry_sdk;

#[doc(hidden)]
pub mod __private {
    pub use telemark_runtime::__private::*;
}
