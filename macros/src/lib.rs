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
mod errors;
mod expand;
mod plan;

use proc_macro::TokenStream;

use attr::Kind;

/// Counts calls in `function_calls_total{function, module, service_name, result}`.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Counted, args.into(), item.into()).into()
}

/// Times calls in the `function_calls_duration_seconds` histogram and tracks
/// them in the `function_calls_concurrent` gauge.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Timed, args.into(), item.into()).into()
}

/// Records one OpenTelemetry span per call.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::Traced, args.into(), item.into()).into()
}

/// Calls the function through a circuit breaker, with optional timeout,
/// retry with backoff, error classification and fallback.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Kind::CircuitBreaker, args.into(), item.into()).into()
}
