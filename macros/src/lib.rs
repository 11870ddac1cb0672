//! Procedural macros of [telemark](https://docs.rs/telemark): `#[counted]`,
//! `#[timed]`, `#[traced]` and `#[circuit_breaker]`. Use them through the
//! `telemark` crate, which provides the runtime the generated code calls.
//!
//! Each attribute goes through three phases:
//! - `attr`: its arguments are parsed into a small typed model, the
//!   arguments all attributes share (`crate`, `name`, `labels`) once, every
//!   mistake collected rather than the first returned;
//! - `plan`: every telemark attribute on the function (and on its impl
//!   block) is gathered and checked against the signature;
//! - `expand`: the function gets one wrapper whatever the number of
//!   attributes: one guard, one state machine, one catalog entry.

mod attr;
mod derive;
mod errors;
mod expand;
mod plan;

use proc_macro::TokenStream;

use attr::Kind;

/// Counts finished calls in `function_calls_total{function, module,
/// service_name, result}`.
///
/// Put it on a function, or on an `impl` block to count every method in it
/// (named `Type::method`; `const fn`s are skipped).
///
/// ```
/// #[telemark::counted]
/// fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
///     text.parse()
/// }
///
/// assert!(parse("12").is_ok());
/// assert!(parse("twelve").is_err()); // counted with result="error"
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `name = "jobs_total"` | the metric's name instead of `function_calls_total`; must end in `_total` and follow Prometheus syntax |
/// | `labels(key = "value", ...)` | constant labels on every series; `function`, `module`, `service_name`, `result`, `le`, `caller_*`, `objective_*`, `otel_metric_overflow` and `__*` are reserved |
/// | `labels(key = expression)` | a label computed when each call starts, from the arguments or `self` (`mode = mode`, `tier = self.tier`) |
/// | `labels(key = \|returned\| ...)` | a label computed from a reference to the returned value (`reason = \|result\| result.as_ref().err()`) |
/// | `cardinality_limit = 100` | the most series the computed labels make (1 to 10,000; 100 when not given) |
/// | `ok_if = path` | the call is `ok` when `path(&returned)` is true, else `error` |
/// | `error_if = path` | the call is `error` when `path(&returned)` is true (not with `ok_if`) |
/// | `crate = path` | where telemark is, if not at `::telemark` |
///
/// Without `ok_if` / `error_if`, `result` follows the return type: an `Err`
/// of a `Result` (under any alias) is `error`, anything else `ok`. A panic
/// counts as `error` and keeps unwinding; a future dropped before it
/// completes counts as `error`; one dropped before its first poll counts
/// nothing.
///
/// # Labels computed on each call
///
/// A computed label's value is a `&'static str`, a `bool`, an integer, an
/// `Option` of one (`None` is an empty value, which Prometheus reads as no
/// label), or a field-less enum deriving [`LabelValue`](derive@LabelValue):
/// values that are few and known. Anything else (a `String`, a borrowed
/// `&str`) is a compile error at the expression. A call does not format or
/// allocate: it finds its series in a fixed table of the call site's cells
/// (an enum's variant is a fixed index into them).
///
/// The series are bounded per function by `cardinality_limit`. Calls
/// whose values would make a series beyond it are counted in one overflow
/// series, labelled `otel_metric_overflow="true"` without the computed
/// labels; `/status` shows each function's series, limit and overflowed
/// calls. A panic or a cancelled future counts as an error with the labels
/// from the returned value empty. Computed labels are not combined with
/// caller labels, and their series carry no exemplars.
///
/// ```
/// #[derive(Clone, Copy, telemark::LabelValue)]
/// enum Mode {
///     Real,
///     Fallback,
/// }
///
/// // embeddings_generated_total{mode="real"|"fallback", cached="true"|"false", …}
/// #[telemark::counted(name = "embeddings_generated_total", labels(mode = mode, cached = |hit: &Option<u32>| hit.is_some()))]
/// fn embed(text: &str, mode: Mode) -> Option<u32> {
///     (text.len() < 3).then_some(7)
/// }
/// # assert_eq!(embed("hi", Mode::Real), Some(7));
/// # let _ = Mode::Fallback;
/// ```
///
/// ```
/// #[telemark::counted(name = "lookups_total", labels(table = "users"), ok_if = Option::is_some)]
/// fn lookup(id: u32) -> Option<&'static str> {
///     (id == 1).then_some("ada")
/// }
/// # assert_eq!(lookup(1), Some("ada"));
/// ```
///
/// # Stacking
///
/// `#[counted]`, `#[timed]`, `#[traced]` and `#[circuit_breaker]` on one
/// function expand together into one wrapper, nested in one order whatever
/// the order they are written in: the span outermost, then the duration and
/// in-flight gauge, then the counter, then the circuit breaker around the
/// body. Each is given at most once per function; one on a method overrides
/// the same attribute on its `impl` block.
///
/// Misuse (unknown, duplicate or ill-typed arguments, a `const fn`, a
/// non-function item, `#[track_caller]` on a synchronous function whose
/// value must be seen) is a compile error at the offending token; every
/// mistake of one function is reported at once.
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Counted, args.into(), item.into()).into()
}

/// Times calls in the `function_calls_duration_seconds` histogram and tracks
/// them in the `function_calls_concurrent` gauge.
///
/// The clock is the CPU's TSC through `quanta` (the OS monotonic clock
/// where there is none). An `async fn` or a returned future is timed from
/// its first poll to its completion or drop.
///
/// ```
/// #[telemark::timed(buckets = [0.001, 0.01, 0.1, 1])]
/// async fn fetch(key: u32) -> u32 {
///     key * 2
/// }
/// # let _ = fetch(1);
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `name = "job_duration_seconds"` | the histogram's name instead of `function_calls_duration_seconds`; must not end in `_total`, `_bucket`, `_sum` or `_count` |
/// | `buckets = [0.01, 0.1, 1]` | this function's bucket upper bounds in seconds: number literals, increasing, from 1e-9 to 1e9, at most 29 ([`MAX_BUCKETS`](https://docs.rs/telemark-limits)) |
/// | `labels(key = "value", ...)` | constant labels, as for [`macro@counted`] |
/// | `crate = path` | where telemark is, if not at `::telemark` |
///
/// Without `buckets`, the process-wide defaults apply: the Autometrics
/// specification's `0.005 … 10` seconds, or what the telemetry builder's
/// `duration_buckets` set before the first recorded call.
///
/// See [`macro@counted`] for stacking and where it applies.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Timed, args.into(), item.into()).into()
}

/// Records one OpenTelemetry span per call, exported as configured with
/// `.traces(..)` on the telemetry builder (until then, nothing is recorded
/// and a call costs one check).
///
/// Every span carries `code.function.name`, `code.file.path` and
/// `code.line.number`. It is the current OpenTelemetry `Context` while the
/// function runs (during every poll, for an `async fn`), so nested
/// `#[traced]` calls become its children. A panic ends it with status
/// Error; a future dropped before completing ends it with
/// `telemark.cancelled = true`.
///
/// ```
/// #[derive(Debug)]
/// struct Query { table: &'static str }
///
/// #[telemark::traced(kind = client, args(query = debug), fields(db.system = "sqlite"), err)]
/// fn run(query: &Query) -> Result<usize, std::io::Error> {
///     Ok(query.table.len())
/// }
/// # assert_eq!(run(&Query { table: "users" }).unwrap(), 5);
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `name = "load user"` | the span's name (default: the function's, `Type::method` for methods of an annotated `impl` block) |
/// | `kind = client` | `client`, `server`, `producer`, `consumer` or `internal` (the default) |
/// | `fields(key = expr, db.system = "postgres", ...)` | attributes evaluated only when the span is sampled: numbers, booleans or strings |
/// | `args(id = display, query = debug)` | records these arguments with `Display` or `Debug`; nothing is captured unless listed |
/// | `err` / `err = debug` | on `Err`: status Error with the error's text, an `exception` event and `error.type` (functions returning `Result`) |
/// | `ret` / `ret = display` | records the returned value as `return.value` (`Debug` unless told) |
/// | `crate = path` | where telemark is, if not at `::telemark` |
///
/// See [`macro@counted`] for stacking and where it applies.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Traced, args.into(), item.into()).into()
}

/// Calls the function through a named circuit breaker, with optional
/// timeout, retry with backoff, error classification and fallback.
///
/// It goes on a function (not an `impl` block) returning `Result<T, E>`
/// with `E: From<telemark::BreakerError>`: a refused call does not run and
/// returns `Err(E::from(error))`; signatures do not change. Closed, the
/// breaker lets calls through and counts failures; when a trip rule fires
/// it opens and refuses calls for `open_for`; then half-open, it admits
/// `half_open_calls` trials: all succeed, it closes; one fails, it opens
/// again.
///
/// ```
/// use telemark::BreakerError;
///
/// #[derive(Debug)]
/// enum FetchError { Refused(BreakerError), Down }
///
/// impl From<BreakerError> for FetchError {
///     fn from(error: BreakerError) -> Self { FetchError::Refused(error) }
/// }
///
/// #[telemark::circuit_breaker(name = "stock", consecutive_failures = 2, open_for = "30s")]
/// fn stock(up: bool) -> Result<u32, FetchError> {
///     if up { Ok(7) } else { Err(FetchError::Down) }
/// }
///
/// assert!(stock(true).is_ok());
/// for _ in 0..2 { assert!(matches!(stock(false), Err(FetchError::Down))); }
/// assert!(matches!(stock(true), Err(FetchError::Refused(e)) if e.is_rejected()));
/// ```
///
/// # Arguments
///
/// | argument | meaning (default) |
/// |---|---|
/// | `name = "payments"` | the breaker's name and `breaker` label; functions with one name share one breaker (`module::function`; methods outside an annotated `impl` block must be named) |
/// | `consecutive_failures = 5` | opens after this many failures in a row; `0` turns the rule off (5) |
/// | `failure_rate = 50` | opens when at least this percentage of the last `window` calls failed (off) |
/// | `slow_call = "500ms"`, `slow_call_rate = 80` | calls this long are slow; opens when this percentage of the window was slow (off) |
/// | `window = 100`, `min_calls = 10` | the count-based window of the rate rules (at most 10,000), and the calls it needs first (100, 10) |
/// | `open_for = "30s"` | how long it stays open; also how long half-open trials may take (30 s) |
/// | `open_for_max = "5m"` | doubles the open duration after each failed half-open round, up to this (no growth) |
/// | `half_open_calls = 3` | trials admitted when half-open, at most 1,000 (1) |
/// | `failure_if = path` | `fn(&E) -> bool`: errors it returns `false` for count as successes |
/// | `ignore_if = path` | `fn(&E) -> bool`: errors it returns `true` for count as neither |
/// | `fallback = path` | `fn(BreakerError) -> Result<T, E>`, called instead of returning a refusal |
/// | `timeout = "2s"` | `async fn` only: the call is dropped after this long and counts as a failure |
/// | `retry(attempts = 3, backoff = "100ms..2s", jitter = "full")` | up to `attempts` calls in all (at most 100), waiting `min × 2ⁿ` capped at `max`, with `"full"`, `"equal"` or `"none"` jitter; refusals are never retried |
/// | `crate = path` | where telemark is, if not at `::telemark` |
///
/// Durations are strings such as `"250ms"`, `"1.5s"` or `"5m"`. Every
/// literal is checked at compile time, each mistake reported at its token.
/// With `#[counted]`, `#[timed]` or `#[traced]` on the same function, they
/// wrap the whole protected call (see [`macro@counted`]).
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::CircuitBreaker, args.into(), item.into()).into()
}

/// Records a value the function sees in a histogram: an argument's size,
/// a batch's length, the number of results it returned.
///
/// ```
/// // request_body_bytes_bucket{function="upload",le="1024",…}
/// #[telemark::histogram(name = "request_body_bytes", value = body.len(), buckets = [64, 1024, 65536], unit = "bytes")]
/// fn upload(body: &[u8]) -> usize {
///     body.len()
/// }
///
/// // search_results_bucket{function="search",le="10",…}: from the returned value
/// #[telemark::histogram(name = "search_results", value = |hits| hits.len(), buckets = [0, 1, 10, 100])]
/// fn search(query: &str) -> Vec<String> {
///     query.split(' ').map(str::to_owned).collect()
/// }
/// # assert_eq!(upload(&[0; 10]), 10);
/// # assert_eq!(search("a b").len(), 2);
/// ```
///
/// | argument | meaning |
/// |---|---|
/// | `name = "request_body_bytes"` | the family's name (required; not `_total`, `_bucket`, `_sum`, `_count`, nor `function_calls*`) |
/// | `value = expression` | the value, computed when the call starts (from the arguments or `self`) |
/// | `value = \|returned\| ...` | the value, computed from a reference to the returned value (not recorded if the call panics or is cancelled) |
/// | `buckets = [64, 1024, 65536]` | the buckets' upper bounds: number literals, strictly increasing, at most 29 (required) |
/// | `unit = "bytes"` | the value's unit, which the name must end with |
/// | `labels(key = "value", ...)` | constant labels, as for `#[counted]` |
/// | `self_type = Type`, `crate = path` | as for `#[counted]` |
///
/// The value is any integer or float (`MetricValue`); anything else is a
/// compile error at the expression. A NaN or an infinity is not recorded. Series carry
/// `function`, `module` and `service_name`, and are on `/metrics` at zero
/// before the first call. Put it on a function or an `impl` block; with
/// `#[counted]`, `#[timed]` and `#[traced]` it shares their one wrapper.
#[proc_macro_attribute]
pub fn histogram(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Histogram, args.into(), item.into()).into()
}

/// Sets a gauge to a value the function sees: the last one wins.
///
/// ```
/// // queue_depth{function="drain",…} is the number of jobs the last call left
/// #[telemark::gauge(name = "queue_depth", value = |left| *left)]
/// fn drain(queue: &mut Vec<u32>, batch: usize) -> usize {
///     let keep = queue.len().saturating_sub(batch);
///     queue.truncate(keep);
///     queue.len()
/// }
/// # assert_eq!(drain(&mut vec![1, 2, 3], 2), 1);
/// ```
///
/// Its arguments are `#[histogram]`'s but `buckets`: `name` (not ending
/// in `_total`), `value` (an expression when the call starts, or a closure
/// over the returned value), `unit`, `labels`, `self_type` and `crate`.
/// The gauge is 0 until the first call.
#[proc_macro_attribute]
pub fn gauge(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Gauge, args.into(), item.into()).into()
}

/// Makes a field-less enum the values of a label that `#[counted]`
/// computes on each call: each variant is a value, named in `snake_case`
/// (`HttpError` → `http_error`) unless renamed.
///
/// ```
/// #[derive(telemark::LabelValue)]
/// enum Reason {
///     Timeout,
///     #[label_value(rename = "5xx")]
///     ServerError,
/// }
///
/// // `reason="timeout"` or `reason="5xx"` on errors, no `reason` on success.
/// #[telemark::counted(labels(reason = |result| result.as_ref().err()))]
/// fn fetch(fail: bool) -> Result<u32, Reason> {
///     if fail { Err(Reason::Timeout) } else { Ok(1) }
/// }
/// # assert!(fetch(true).is_err());
/// # let _ = Reason::ServerError;
/// ```
///
/// `#[label_value(crate = path)]` on the enum names the telemark crate if
/// it is not at `::telemark`. A struct, a union, a variant with fields or
/// two variants of one name are compile errors.
#[proc_macro_derive(LabelValue, attributes(label_value))]
pub fn derive_label_value(item: TokenStream) -> TokenStream {
    derive::label_value(item.into()).into()
}
