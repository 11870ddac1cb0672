//! Outgoing HTTP calls (feature `tower`; reqwest with the feature
//! `reqwest`): a client span per request, the trace context and baggage
//! injected into its headers, and `http_client_request_duration_seconds`.
//!
//! ```
//! use telemark_runtime::integrations::http_client::HttpClientLayer;
//!
//! // Around any tower HTTP client service (hyper-util's, a tonic channel):
//! let layer = HttpClientLayer::new();
//! # drop(layer);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, StatusCode};

use super::http_common::{
    bounded, host_name, method_label, name_by_method, protocol_version, record_failure,
    record_status, scheme_of, DurationFamily, Ending, SeriesKey, MAX_TEXT_BYTES,
};
use crate::clock::clock;
use crate::propagation::inject_context;
use crate::site::SiteInfo;
use crate::trace::span::{AsyncSpan, FillOnce, Kind, SpanRecord, TraceSite};

/// The call site of every outgoing request's span.
static REQUEST_INFO: SiteInfo = SiteInfo {
    function: "http.client.request",
    module: "",
    file: "",
    line: 0,
};
static REQUEST_SITE: TraceSite = TraceSite {
    name: "HTTP",
    kind: Kind::Client,
    info: &REQUEST_INFO,
};

/// The request duration, by server address.
static CLIENT_DURATIONS: DurationFamily = DurationFamily::new(
    "http_client_request_duration_seconds",
    "Duration of outgoing HTTP requests.",
    "server_address",
    true,
);

/// One outgoing request: its span and its measurement, from its start to
/// its answer (or its drop: then it is measured as cancelled).
pub(crate) struct ClientRequest {
    span: AsyncSpan,
    method: &'static str,
    scheme: &'static str,
    address: Option<String>,
    port: u16,
    start: u64,
    completed: bool,
}

impl ClientRequest {
    /// A request to `uri` starts: its span is a child of the current one.
    pub(crate) fn start(method: &http::Method, uri: &http::Uri, version: http::Version) -> Self {
        let start = clock().raw();
        let method_name = method_label(method);
        let scheme = scheme_of(uri);
        let address = uri.host().map(host_name);
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let mut fill = FillOnce::new(|record: &mut SpanRecord| {
            name_by_method(record, method_name, method, None);
            if let Some(address) = &address {
                record.attribute("server.address", address.clone());
            }
            record.attribute("server.port", i64::from(port));
            // Without user info, query or fragment, which may hold secrets.
            let full = format!(
                "{scheme}://{}{}",
                uri.authority().map_or("", |authority| authority
                    .as_str()
                    .rsplit('@')
                    .next()
                    .unwrap_or("")),
                uri.path()
            );
            record.attribute("url.full", bounded(full, MAX_TEXT_BYTES));
            record.attribute("network.protocol.version", protocol_version(version));
        });
        ClientRequest {
            span: AsyncSpan::start(Some(&REQUEST_SITE), Some(&mut fill)),
            method: method_name,
            scheme,
            address,
            port,
            start,
            completed: false,
        }
    }

    /// Writes the request's trace context (its span, or the caller's when
    /// it is not sampled) and the current baggage into `headers`.
    pub(crate) fn inject(&mut self, headers: &mut HeaderMap) {
        self.span.in_poll(|| inject_context(headers));
    }

    /// The request was answered with `status`, or failed (`Err`: why, and
    /// the error's text).
    pub(crate) fn finish(mut self, outcome: Result<StatusCode, (&'static str, String)>) {
        if let Some(record) = self.span.record() {
            match &outcome {
                Ok(status) => record_status(record, *status, true),
                Err((why, message)) => record_failure(record, why, message.clone()),
            }
        }
        match outcome {
            Ok(status) => self.measure(status.as_u16(), Ending::Answered),
            Err((why, _)) => self.measure(0, Ending::Failed(why)),
        }
        self.completed = true;
        self.span.complete();
    }

    fn measure(&self, status: u16, ending: Ending) {
        let key = SeriesKey {
            method: self.method,
            scheme: self.scheme,
            port: self.port,
            status,
            ending,
        };
        CLIENT_DURATIONS.record_since(self.start, key, self.address.as_deref());
    }
}

impl Drop for ClientRequest {
    /// Dropped before its answer: measured as cancelled; the span ends as
    /// cancelled.
    fn drop(&mut self) {
        if !self.completed {
            self.measure(0, Ending::Cancelled);
        }
    }
}

/// Renders `http_client_request_duration_seconds`, if a request was made.
pub(crate) fn render_http_client_metrics(out: &mut String, service: &str) {
    CLIENT_DURATIONS.render(out, service);
}

/// Adds a client span, trace context propagation and the HTTP client
/// metrics to every request of the tower HTTP client service it wraps
/// (hyper-util's legacy client, a tonic channel, ...).
///
/// Each request gets:
/// - a span of kind client named by its method, a child of the span current
///   where the request is made, with `http.request.method`, `server.address`,
///   `server.port`, `url.full` (without user info or query),
///   `network.protocol.version` and `http.response.status_code`; a 4xx or
///   5xx answer or a failed request sets status Error and `error.type`;
/// - `traceparent` / `tracestate` (that span, or the caller's context when
///   it is not sampled) and `baggage` in its headers;
/// - `http_client_request_duration_seconds{http_request_method,
///   server_address, server_port, http_response_status_code, error_type}`
///   on `/metrics` (at most 1,000 series, then one overflow series).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClientLayer {
    _private: (),
}

impl HttpClientLayer {
    /// The layer.
    pub fn new() -> Self {
        HttpClientLayer::default()
    }
}

impl<S> tower_layer::Layer<S> for HttpClientLayer {
    type Service = HttpClientService<S>;

    fn layer(&self, inner: S) -> HttpClientService<S> {
        HttpClientService { inner }
    }
}

/// The service [`HttpClientLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct HttpClientService<S> {
    inner: S,
}

impl<S, B, ResponseBody> tower_service::Service<Request<B>> for HttpClientService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResponseBody>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = HttpClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut call = ClientRequest::start(request.method(), request.uri(), request.version());
        call.inject(request.headers_mut());
        HttpClientFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner client's future, measured and ended with its answer.
    pub struct HttpClientFuture<F> {
        #[pin]
        inner: F,
        call: Option<ClientRequest>,
    }
}

impl<F, ResponseBody, E> Future for HttpClientFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        if let Some(call) = this.call.take() {
            call.finish(match &result {
                Ok(response) => Ok(response.status()),
                Err(error) => Err(("request_failed", error.to_string())),
            });
        }
        Poll::Ready(result)
    }
}

/// A `reqwest-middleware` middleware (feature `reqwest`) doing for reqwest
/// what [`HttpClientLayer`] does for tower clients.
///
/// ```
/// use telemark_runtime::integrations::http_client::HttpClientMiddleware;
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(HttpClientMiddleware::new())
///     .build();
/// # drop(client);
/// ```
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClientMiddleware {
    _private: (),
}

#[cfg(feature = "reqwest")]
impl HttpClientMiddleware {
    /// The middleware.
    pub fn new() -> Self {
        HttpClientMiddleware::default()
    }
}

#[cfg(feature = "reqwest")]
#[async_trait::async_trait]
impl reqwest_middleware::Middleware for HttpClientMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let uri: http::Uri = request
            .url()
            .as_str()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/"));
        let mut call = ClientRequest::start(request.method(), &uri, request.version());
        call.inject(request.headers_mut());
        let result = next.run(request, extensions).await;
        call.finish(match &result {
            Ok(response) => Ok(response.status()),
            Err(error) => {
                let why = match error {
                    reqwest_middleware::Error::Reqwest(error) if error.is_timeout() => "timeout",
                    reqwest_middleware::Error::Reqwest(error) if error.is_connect() => "connect",
                    _ => "request_failed",
                };
                Err((why, error.to_string()))
            }
        });
        result
    }
}
