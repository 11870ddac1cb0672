//! W3C Trace Context (`traceparent`, `tracestate`) and Baggage propagation
//! over HTTP headers, so one trace spans several services.
//!
//! Headers come from other services, so they are read strictly and with
//! bounded work whatever their size: `traceparent` exactly as W3C Trace
//! Context level 1 defines it (anything else starts a new trace),
//! `tracestate` up to 32 members and 512 bytes, `baggage` up to 64 members
//! and 8,192 bytes (what lies beyond is ignored).

use std::str::FromStr;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

/// Most `tracestate` list members kept (W3C Trace Context).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Most `tracestate` bytes read.
pub const MAX_TRACESTATE_BYTES: usize = 512;
/// Most `baggage` list members kept (W3C Baggage).
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// Most `baggage` bytes read (W3C Baggage).
pub const MAX_BAGGAGE_BYTES: usize = 8192;

fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Hands the baggage propagator at most [`MAX_BAGGAGE_BYTES`] and
/// [`MAX_BAGGAGE_MEMBERS`] of the `baggage` header, cut at a member's end.
struct BaggageExtractor<'a>(Option<&'a str>);

impl Extractor for BaggageExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "baggage").then_some(self.0).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.map(|_| "baggage").into_iter().collect()
    }
}

/// The first `max_members` comma-separated members of `value` that fit in
/// `max_bytes`, without allocating.
fn bounded_list(value: &str, max_members: usize, max_bytes: usize) -> &str {
    let mut end = 0;
    for (members, (position, _)) in value
        .match_indices(',')
        .chain(std::iter::once((value.len(), "")))
        .enumerate()
    {
        if members >= max_members || position > max_bytes {
            break;
        }
        end = position;
    }
    &value[..end]
}

/// The one header named `name`, as text; `None` if absent, repeated or not
/// visible ASCII.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Lowercase hex digits as a number (at most 32 of them).
fn lower_hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &digit| {
        Some((value << 4) | u128::from(hex_value(digit)?))
    })
}

/// `traceparent` per W3C Trace Context level 1: `version-traceid-parentid-flags`,
/// lowercase hex, non-zero ids; version `00` exactly 55 characters, a later
/// version read by its first 55 (then a `-` or the end), `ff` invalid.
fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let bytes = value.as_bytes();
    if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let version = lower_hex(&bytes[0..2])?;
    match version {
        0 if bytes.len() != 55 => return None,
        0xff => return None,
        _ if bytes.len() > 55 && bytes[55] != b'-' => return None,
        _ => {}
    }
    let trace_id = lower_hex(&bytes[3..35])?;
    let span_id = lower_hex(&bytes[36..52])?;
    let flags = lower_hex(&bytes[53..55])?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id as u64),
        TraceFlags::new(flags as u8 & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::NONE,
    ))
}

/// `tracestate`, every header of it joined, bounded; an invalid list is
/// dropped (the trace still continues).
fn parse_tracestate(headers: &HeaderMap) -> TraceState {
    let mut kept = String::new();
    let mut members = 0;
    for value in headers.get_all("tracestate") {
        let Ok(value) = value.to_str() else {
            return TraceState::NONE;
        };
        for member in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if members == MAX_TRACESTATE_MEMBERS
                || kept.len() + member.len() + 1 > MAX_TRACESTATE_BYTES
            {
                break;
            }
            if !kept.is_empty() {
                kept.push(',');
            }
            kept.push_str(member);
            members += 1;
        }
    }
    TraceState::from_str(&kept).unwrap_or(TraceState::NONE)
}

/// Writes the current span (`traceparent`, `tracestate`) and baggage into
/// outgoing request headers. Call it inside the `#[traced(kind = client)]`
/// function that makes the request.
///
/// Inside a `#[traced]` call that was not sampled (its root was not), it
/// writes a `traceparent` with the sampled flag off and a new trace id, so
/// that the next service follows the decision rather than sampling a
/// fragment of the trace on its own.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// telemark_runtime::propagation::inject_context(&mut headers);
/// assert!(headers.get("traceparent").is_none(), "no span is current here");
/// ```
pub fn inject_context(headers: &mut HeaderMap) {
    match crate::trace::span::unsampled_context() {
        Some(unsampled) => inject_context_from(&unsampled, headers),
        None => inject_context_from(&Context::current(), headers),
    }
}

/// Writes `context`'s span and baggage into `headers`.
pub fn inject_context_from(context: &Context, headers: &mut HeaderMap) {
    propagator().inject_context(context, &mut HeaderInjector(headers));
}

/// Reads the caller's span and baggage from incoming request headers. Attach
/// the result around the `#[traced(kind = server)]` handler so its span
/// continues the caller's trace:
///
/// ```
/// # use telemark_runtime::opentelemetry::trace::TraceContextExt;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
/// let parent = telemark_runtime::propagation::extract_context(&headers);
/// assert!(parent.span().span_context().is_remote());
/// let _attached = parent.attach(); // #[traced] calls made now are its children
/// ```
pub fn extract_context(headers: &HeaderMap) -> Context {
    let mut context = Context::new();
    if let Some(parent) = single_header(headers, "traceparent").and_then(parse_traceparent) {
        let parent = SpanContext::new(
            parent.trace_id(),
            parent.span_id(),
            parent.trace_flags(),
            true,
            parse_tracestate(headers),
        );
        context = context.with_remote_span_context(parent);
    }
    // The first `baggage` header, bounded.
    let baggage = headers
        .get("baggage")
        .and_then(|value| value.to_str().ok())
        .map(|value| bounded_list(value, MAX_BAGGAGE_MEMBERS, MAX_BAGGAGE_BYTES));
    BaggagePropagator::new().extract_with_context(&context, &BaggageExtractor(baggage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::KeyValue;

    #[test]
    fn inject_then_extract_round_trips_span_and_baggage() {
        let span = SpanContext::new(
            TraceId::from(0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128),
            SpanId::from(0xb7ad_6b71_6920_3331_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("vendor", "value")]).unwrap(),
        );
        let context = Context::new()
            .with_remote_span_context(span.clone())
            .with_baggage([KeyValue::new("tenant", "acme")]);
        let mut headers = HeaderMap::new();
        inject_context_from(&context, &mut headers);
        assert_eq!(
            headers["traceparent"],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(headers["tracestate"], "vendor=value");
        assert_eq!(headers["baggage"], "tenant=acme");

        let extracted = extract_context(&headers);
        let remote = extracted.span().span_context().clone();
        assert_eq!(remote.trace_id(), span.trace_id());
        assert_eq!(remote.span_id(), span.span_id());
        assert!(remote.is_remote() && remote.is_sampled());
        assert_eq!(remote.trace_state().header(), "vendor=value");
        assert_eq!(
            extracted.baggage().get("tenant").map(|v| v.to_string()),
            Some("acme".into())
        );
    }

    fn parent(traceparent: &str) -> SpanContext {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_str(traceparent).unwrap());
        extract_context(&headers).span().span_context().clone()
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn malformed_headers_give_an_empty_context() {
        assert!(!parent("00-nonsense").is_valid());
    }

    #[test]
    fn traceparent_is_read_exactly_as_w3c_trace_context_defines_it() {
        let valid = parent(VALID);
        assert!(valid.is_valid() && valid.is_remote() && valid.is_sampled());
        assert!(!parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").is_sampled());
        // A later version: read by its first 55 characters.
        assert!(
            parent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-follows")
                .is_valid()
        );
        assert!(parent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_valid());
        let rejected = [
            "00-1-00f067aa0ba902b7-01",                 // one-digit trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-7-01", // one-digit parent id
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // a sign
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // one-digit version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", // three-digit flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // trailing dash
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // later version, no dash
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // leading space
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", // other separators
        ];
        for traceparent in rejected {
            assert!(
                !parent(traceparent).is_valid(),
                "{traceparent:?} was accepted"
            );
        }
        let mut twice = HeaderMap::new();
        twice.append("traceparent", HeaderValue::from_static(VALID));
        twice.append("traceparent", HeaderValue::from_static(VALID));
        assert!(!extract_context(&twice).span().span_context().is_valid());
    }

    #[test]
    fn tracestate_and_baggage_are_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static(VALID));
        let members: Vec<String> = (0..100).map(|i| format!("k{i}=v{i}")).collect();
        headers.insert(
            "tracestate",
            HeaderValue::from_str(&members.join(",")).unwrap(),
        );
        let baggage: Vec<String> = (0..100).map(|i| format!("b{i}=x")).collect();
        headers.insert(
            "baggage",
            HeaderValue::from_str(&baggage.join(",")).unwrap(),
        );
        let context = extract_context(&headers);
        let state = context.span().span_context().trace_state().header();
        assert_eq!(state.split(',').count(), MAX_TRACESTATE_MEMBERS);
        assert!(state.len() <= MAX_TRACESTATE_BYTES);
        assert_eq!(context.baggage().len(), MAX_BAGGAGE_MEMBERS);
        // An invalid tracestate is dropped; the trace still continues.
        headers.insert("tracestate", HeaderValue::from_static("Not A Key=1"));
        let context = extract_context(&headers);
        assert!(context.span().span_context().is_valid());
        assert_eq!(context.span().span_context().trace_state().header(), "");
    }

    #[test]
    fn lists_are_cut_at_a_member_boundary_without_allocating() {
        assert_eq!(bounded_list("a=1,b=2,c=3", 2, 100), "a=1,b=2");
        assert_eq!(bounded_list("a=1,b=2,c=3", 10, 5), "a=1");
        assert_eq!(bounded_list("a=1", 10, 100), "a=1");
        assert_eq!(bounded_list("abcdef", 10, 3), "");
    }
}
