//! W3C Trace Context (`traceparent`, `tracestate`) and Baggage propagation
//! over HTTP headers, so one trace spans several services.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

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

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the current span (`traceparent`, `tracestate`) and baggage into
/// outgoing request headers. Call it inside the `#[traced(kind = client)]`
/// function that makes the request.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// telemark_runtime::propagation::inject_context(&mut headers);
/// assert!(headers.get("traceparent").is_none(), "no span is current here");
/// ```
pub fn inject_context(headers: &mut HeaderMap) {
    inject_context_from(&Context::current(), headers);
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
    propagator().extract(&HeaderExtractor(headers))
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

    #[test]
    fn malformed_headers_give_an_empty_context() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-nonsense"));
        assert!(!extract_context(&headers).span().span_context().is_valid());
    }
}
