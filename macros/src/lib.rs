//! Procedural macros of [telemark](https://docs.rs/telemark): `#[counted]`,
//! `#[timed]`, `#[traced]` and `#[circuit_breaker]`. Use them
//! through the `telemark` crate, which documents them and provides the
//! runtime the generated code calls.

mod args;
mod circuit_breaker;
mod counted;
mod expand;
mod shape;
mod timed;
mod traced;

use proc_macro::TokenStream;

/// Counts calls in `function_calls_total{function, module, service_name, result}`.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute::<counted::Counted>(args.into(), item.into()).into()
}

/// Times calls in the `function_calls_duration_seconds` histogram and tracks
/// them in the `function_calls_concurrent` gauge.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute::<timed::Timed>(args.into(), item.into()).into()
}

/// Records one OpenTelemetry span per call.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute::<traced::Traced>(args.into(), item.into()).into()
}

/// Calls the function through a circuit breaker, with optional timeout,
/// retry with backoff, error classification and fallback.
///
/// See the `telemark` crate for the arguments and the generated code.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute::<circuit_breaker::CircuitBreaker>(args.into(), item.into()).into()
}
