//! A tower layer for HTTP servers (feature `tower`; axum's routes with the
//! feature `axum`; tonic's gRPC calls): a server span and the OpenTelemetry
//! HTTP server metrics per request.
//!
//! ```
//! use telemark_runtime::integrations::http_server::HttpServerLayer;
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/users/{id}", axum::routing::get(|| async { "ok" }))
//!     .layer(HttpServerLayer::new());
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};

use http::{Request, Response};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;

use super::http_common::{
    bounded, host_name, method_label, name_by_method, protocol_version, record_failure,
    record_status, scheme_of, DurationFamily, Ending, SeriesKey, MAX_SERIES, MAX_TEXT_BYTES,
};
use crate::clock::clock;
use crate::metrics::exposition::{header, sample};
use crate::propagation::extract_context;
use crate::site::SiteInfo;
use crate::trace::span::{AsyncSpan, FillOnce, Kind, SpanRecord, TraceSite};

/// The call site of every request span: a server span with no source
/// location (its name is set per request).
static REQUEST_INFO: SiteInfo = SiteInfo {
    function: "http.server.request",
    module: "",
    file: "",
    line: 0,
};
static REQUEST_SITE: TraceSite = TraceSite {
    name: "HTTP request",
    kind: Kind::Server,
    info: &REQUEST_INFO,
};

/// Adds a server span and the HTTP server metrics to every request of the
/// service it wraps (a tower `Layer`; with axum, `Router::layer`).
///
/// Each request gets:
/// - a span of kind server named `{method} {route}` (`{method}` alone when
///   the route is unknown), the remote parent and baggage from
///   `traceparent` / `tracestate` / `baggage` (checked as
///   `propagation::extract_context` does), current while the inner service
///   runs, so `#[traced]` calls inside are its children;
/// - the semantic conventions' attributes: `http.request.method`,
///   `http.route`, `url.path`, `url.scheme`, `server.address`,
///   `network.protocol.version`, `user_agent.original`,
///   `http.response.status_code`; a 5xx status or an error of the inner
///   service sets the span's status to Error and `error.type`;
/// - `http_server_request_duration_seconds{http_request_method, http_route,
///   http_response_status_code}` (a histogram with the conventions'
///   buckets) and `http_server_active_requests{http_request_method,
///   url_scheme}` on `/metrics`.
///
/// The route is axum's `MatchedPath` (feature `axum`), else what
/// [`HttpServerLayer::route`] returns. Methods outside the standard ones
/// are recorded as `_OTHER`.
///
/// A gRPC call (content type `application/grpc…`, as tonic serves it with
/// `Server::builder().layer(HttpServerLayer::new())`) is named
/// `{service}/{method}` and gets `rpc.system`, `rpc.service`, `rpc.method`
/// and `rpc.grpc.status_code`. Its status comes from `grpc-status`: in the
/// headers of a trailers-only answer, else in the trailers, so its span and
/// its measurement end with the response body (the span is current while
/// the body is polled). Only the server's own failures (`UNKNOWN`,
/// `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`,
/// `DATA_LOSS`) and an answer with no status at all set status Error and
/// `error.type` (the code's name, or `missing_grpc_status`; also the
/// metric's `error_type`). Its route, when no router names one, is its
/// path, unless the server has no such method. gRPC-Web is plain HTTP here.
#[derive(Clone, Default)]
pub struct HttpServerLayer {
    route: Option<Arc<RouteFn>>,
}

type RouteFn = dyn Fn(&http::Method, &http::Uri) -> Option<String> + Send + Sync;

impl std::fmt::Debug for HttpServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerLayer")
            .field("route", &self.route.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl HttpServerLayer {
    /// The layer, with the route taken from axum when there is one.
    pub fn new() -> Self {
        HttpServerLayer::default()
    }

    /// Names the route of a request (low cardinality: a template such as
    /// `/users/{id}`, never the raw path) where axum's is not available.
    ///
    /// ```
    /// use telemark_runtime::integrations::http_server::HttpServerLayer;
    ///
    /// let layer = HttpServerLayer::new().route(|_method, uri| {
    ///     uri.path().starts_with("/users/").then(|| "/users/{id}".to_owned())
    /// });
    /// # drop(layer);
    /// ```
    pub fn route(
        mut self,
        route: impl Fn(&http::Method, &http::Uri) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.route = Some(Arc::new(route));
        self
    }
}

impl<S> tower_layer::Layer<S> for HttpServerLayer {
    type Service = HttpServerService<S>;

    fn layer(&self, inner: S) -> HttpServerService<S> {
        HttpServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`HttpServerLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct HttpServerService<S> {
    inner: S,
    layer: HttpServerLayer,
}

impl<S, B, ResponseBody> tower_service::Service<Request<B>> for HttpServerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResponseBody>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<HttpServerBody<ResponseBody>>;
    type Error = S::Error;
    type Future = HttpServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = clock().raw();
        let method = method_label(request.method());
        let grpc = grpc_call(&request);
        // A gRPC call's route is its path, `/{service}/{method}`, when no
        // router named one.
        let named = self.route_of(&request);
        let route_is_path = named.is_none() && grpc.is_some();
        let route = named
            .or_else(|| route_is_path.then(|| request.uri().path().to_owned()))
            .map(|route| bounded(route, MAX_ROUTE_BYTES));
        let scheme = scheme_of(request.uri());
        let parent = extract_context(request.headers());
        let mut span = {
            let _parent = parent.clone().attach();
            let mut fill = FillOnce::new(|record: &mut SpanRecord| {
                fill_request(record, &request, method, route.as_deref(), scheme);
                if let Some((service, rpc_method)) = grpc {
                    fill_grpc(record, service, rpc_method);
                }
            });
            AsyncSpan::start(Some(&REQUEST_SITE), Some(&mut fill))
        };
        // Not sampled, the span is not current: the caller's context (its
        // trace, its decision, its baggage) is, for the handler to follow.
        let remote = (span.record().is_none()
            && (parent.has_active_span() || !parent.baggage().is_empty()))
        .then_some(parent);
        let active = active_requests(method, scheme);
        active.fetch_add(1, Relaxed);
        // From here the state owns the request: it ends the span and counts
        // the request however it ends (even if `call` panics).
        let mut state = RequestState {
            span,
            remote,
            method,
            scheme,
            route,
            active,
            start: started,
            completed: false,
            grpc: grpc.is_some(),
            route_is_path,
        };
        let future = state.within(|| self.inner.call(request));
        HttpServerFuture {
            inner: future,
            state: Some(state),
        }
    }
}

impl<S> HttpServerService<S> {
    fn route_of<B>(&self, request: &Request<B>) -> Option<String> {
        #[cfg(feature = "axum")]
        if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
            return Some(matched.as_str().to_owned());
        }
        let route = self.layer.route.as_ref()?;
        route(request.method(), request.uri())
    }
}

/// Most `(method, scheme, route, status, error)` series of the request
/// duration; requests beyond them are counted in one series labelled
/// `otel_metric_overflow="true"`, as the OpenTelemetry SDK does.
pub const MAX_ROUTE_SERIES: usize = MAX_SERIES;

/// The request duration, by route.
static SERVER_DURATIONS: DurationFamily = DurationFamily::new(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    "http_route",
    false,
);

/// Longest route kept (labels and span names), in bytes.
pub const MAX_ROUTE_BYTES: usize = 256;

/// The request's attributes and the span's name, on a sampled span.
fn fill_request<B>(
    record: &mut SpanRecord,
    request: &Request<B>,
    method: &'static str,
    route: Option<&str>,
    scheme: &'static str,
) {
    name_by_method(record, method, request.method(), route);
    if let Some(route) = route {
        record.attribute("http.route", route.to_owned());
    }
    let path = bounded(request.uri().path().to_owned(), MAX_TEXT_BYTES);
    record.attribute("url.path", path);
    record.attribute("url.scheme", scheme);
    let host = request.uri().host().map(host_name).or_else(|| {
        let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = host.parse().ok()?;
        Some(host_name(authority.host()))
    });
    if let Some(host) = host {
        record.attribute("server.address", host);
    }
    record.attribute(
        "network.protocol.version",
        protocol_version(request.version()),
    );
    if let Some(agent) = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
    {
        let agent = bounded(agent.to_owned(), MAX_TEXT_BYTES);
        record.attribute("user_agent.original", agent);
    }
}

/// A gRPC call's service and method, from its path `/{service}/{method}`,
/// if the request is one (its content type `application/grpc…`).
fn grpc_call<B>(request: &Request<B>) -> Option<(&str, &str)> {
    // `application/grpc`, `application/grpc+proto`..., not gRPC-Web (whose
    // status is in the body).
    let content_type = request.headers().get(http::header::CONTENT_TYPE)?;
    let rest = content_type.as_bytes().strip_prefix(b"application/grpc")?;
    if !(rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";")) {
        return None;
    }
    let (service, method) = request.uri().path().strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// A gRPC call's name and `rpc.*` attributes, on a sampled span.
fn fill_grpc(record: &mut SpanRecord, service: &str, method: &str) {
    let service = bounded(service.to_owned(), MAX_ROUTE_BYTES);
    let method = bounded(method.to_owned(), MAX_ROUTE_BYTES);
    record.rename(format!("{service}/{method}"));
    record.attribute("rpc.system", "grpc");
    record.attribute("rpc.service", service);
    record.attribute("rpc.method", method);
}

/// The status of a gRPC call, from the `grpc-status` of a response's
/// headers (a trailers-only answer) or of its trailers.
fn grpc_status(headers: &http::HeaderMap) -> Option<u8> {
    let code: u8 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    (code <= 16).then_some(code)
}

/// gRPC status codes by number, as `error_type` names them.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Whether a gRPC status is the server's failure (the semantic
/// conventions' list for server spans); the others are the caller's.
fn grpc_server_error(code: u8) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

struct RequestState {
    span: AsyncSpan,
    /// The caller's context, current during polls when the span is not.
    remote: Option<opentelemetry::Context>,
    method: &'static str,
    scheme: &'static str,
    route: Option<String>,
    active: &'static AtomicI64,
    start: u64,
    completed: bool,
    /// A gRPC call: its status is in `grpc-status`, in the response's
    /// headers or else in its trailers.
    grpc: bool,
    /// The route is the gRPC call's path (no router named one): dropped
    /// from the metric if the server has no such method.
    route_is_path: bool,
}

impl RequestState {
    /// Runs `f` (one poll of the inner service, or its call) with the
    /// request's span (or, not sampled, the caller's context) current.
    fn within<R>(&mut self, f: impl FnOnce() -> R) -> R {
        // The span is entered inside the caller's context, if any: for an
        // unsampled root (a caller that sent only baggage) it marks the
        // thread, so that the calls made inside are not sampled either and
        // say so downstream.
        let _remote = self.remote.as_ref().map(|remote| remote.clone().attach());
        self.span.in_poll(f)
    }

    /// Records the request's duration as it ended.
    fn measure(&self, status: u16, ending: Ending) {
        let key = SeriesKey {
            method: self.method,
            scheme: self.scheme,
            port: 0,
            status,
            ending,
        };
        SERVER_DURATIONS.record_since(self.start, key, self.route.as_deref());
    }
}

impl Drop for RequestState {
    /// The request ended (answered, failed or dropped): it is no longer
    /// active, and if it was not answered it is measured as cancelled; the
    /// span ends with it (as cancelled, or as failed while a panic unwinds).
    fn drop(&mut self) {
        self.active.fetch_sub(1, Relaxed);
        if !self.completed {
            self.measure(0, Ending::Cancelled);
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, inside the request's span.
    pub struct HttpServerFuture<F> {
        #[pin]
        inner: F,
        state: Option<RequestState>,
    }
}

impl<F, ResponseBody, E> Future for HttpServerFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: std::fmt::Display,
{
    type Output = Result<Response<HttpServerBody<ResponseBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            panic!("a request future was polled after it completed");
        };
        let poll = state.within(|| this.inner.poll(cx));
        let Poll::Ready(result) = poll else {
            return Poll::Pending;
        };
        let Some(mut state) = this.state.take() else {
            unreachable!("the state was there above");
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                state.failed(None, "service_error", error.to_string());
                return Poll::Ready(Err(error));
            }
        };
        let status = response.status();
        let (parts, body) = response.into_parts();
        // A gRPC answer's status comes in its trailers unless the headers
        // hold it: the call ends there, with the body.
        let state = match (state.grpc, grpc_status(&parts.headers)) {
            (true, None) if status.is_success() => Some(AwaitingTrailers { state, status }),
            (true, code) => {
                state.grpc_ended(status, code);
                None
            }
            (false, _) => {
                if let Some(record) = state.span.record() {
                    record_status(record, status, false);
                }
                state.measure(status.as_u16(), Ending::Answered);
                state.finish();
                None
            }
        };
        Poll::Ready(Ok(Response::from_parts(
            parts,
            HttpServerBody { inner: body, state },
        )))
    }
}

impl RequestState {
    /// The request ended as measured: its span ends.
    fn finish(mut self) {
        self.completed = true;
        self.span.complete();
    }

    /// The request failed (`why`), after an answer with `status` if any.
    fn failed(mut self, status: Option<http::StatusCode>, why: &'static str, message: String) {
        if let Some(record) = self.span.record() {
            if let Some(status) = status {
                record.attribute("http.response.status_code", i64::from(status.as_u16()));
            }
            record_failure(record, why, message);
        }
        self.measure(
            status.map_or(0, |status| status.as_u16()),
            Ending::Failed(why),
        );
        self.finish();
    }

    /// A gRPC call answered with the HTTP `status` ended with `code`
    /// (`None`: no `grpc-status` was sent).
    fn grpc_ended(mut self, status: http::StatusCode, code: Option<u8>) {
        let failed = match code {
            Some(code) if grpc_server_error(code) => Some(GRPC_CODES[usize::from(code)]),
            Some(_) => None,
            // gRPC clients take a success without a status for a failure.
            None if status.is_success() => Some("missing_grpc_status"),
            // The HTTP status says how it went (a 5xx is an error).
            None => None,
        };
        if let Some(record) = self.span.record() {
            match (code, failed) {
                (None, None) => record_status(record, status, false),
                _ => record.attribute("http.response.status_code", i64::from(status.as_u16())),
            }
            if let Some(code) = code {
                record.attribute("rpc.grpc.status_code", i64::from(code));
            }
            if let Some(why) = failed {
                record_failure(record, why, String::new());
            }
        }
        // A method the server does not have is no route: a client cannot
        // fill the label set with made-up paths.
        if self.route_is_path && (code == Some(12) || status == http::StatusCode::NOT_FOUND) {
            self.route = None;
        }
        let ending = match failed {
            Some(why) => Ending::Failed(why),
            None => Ending::Answered,
        };
        self.measure(status.as_u16(), ending);
        self.finish();
    }
}

/// A gRPC call whose status is still to come, in the body's trailers.
struct AwaitingTrailers {
    state: RequestState,
    /// The HTTP status it was answered with.
    status: http::StatusCode,
}

pin_project_lite::pin_project! {
    /// The response body of a request through [`HttpServerLayer`]: the
    /// inner service's body, unchanged. For a gRPC call whose status comes
    /// in trailers it keeps the call's span and measurement until they
    /// arrive (or the body is dropped: the call is then cancelled).
    pub struct HttpServerBody<B> {
        #[pin]
        inner: B,
        state: Option<AwaitingTrailers>,
    }
}

impl<B> HttpServerBody<B> {
    /// The inner service's body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: http_body::Body> http_body::Body for HttpServerBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let Some(awaiting) = this.state.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        // The call's span is current while its body is made (a streaming
        // handler's work is done here).
        let frame = awaiting.state.within(|| this.inner.as_mut().poll_frame(cx));
        let ended = match &frame {
            Poll::Ready(Some(Ok(frame))) => match frame.trailers_ref() {
                Some(trailers) => Some(Ok(grpc_status(trailers))),
                // The last frame, without trailers: nothing more is polled.
                None if this.inner.is_end_stream() => Some(Ok(None)),
                None => None,
            },
            Poll::Ready(Some(Err(_))) => Some(Err(())),
            Poll::Ready(None) => Some(Ok(None)),
            Poll::Pending => None,
        };
        if let Some(ended) = ended {
            if let Some(AwaitingTrailers { state, status }) = this.state.take() {
                match ended {
                    Ok(code) => state.grpc_ended(status, code),
                    Err(()) => state.failed(Some(status), "body_error", String::new()),
                }
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> std::fmt::Debug for HttpServerBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServerBody")
            .field("awaiting_trailers", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

/// The in-flight gauges by `(method, scheme)`.
static ACTIVE: LazyLock<RwLock<HashMap<(&'static str, &'static str), &'static AtomicI64>>> =
    LazyLock::new(Default::default);

/// The in-flight gauge of `(method, scheme)`: at most 10 × 2 of them, never
/// freed.
fn active_requests(method: &'static str, scheme: &'static str) -> &'static AtomicI64 {
    if let Some(found) = ACTIVE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(method, scheme))
    {
        return found;
    }
    ACTIVE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry((method, scheme))
        .or_insert_with(|| Box::leak(Box::new(AtomicI64::new(0))))
}

/// Renders the HTTP server families, if any request was served.
pub(crate) fn render_http_server_metrics(out: &mut String, service: &str) {
    SERVER_DURATIONS.render(out, service);
    let active = ACTIVE.read().unwrap_or_else(|e| e.into_inner());
    if !active.is_empty() {
        let name = "http_server_active_requests";
        header(out, name, "gauge", "HTTP server requests being served.");
        let mut keys: Vec<_> = active.keys().collect();
        keys.sort();
        for key in keys {
            let (method, scheme) = key;
            let labels = [
                ("service_name", service),
                ("http_request_method", *method),
                ("url_scheme", *scheme),
            ];
            sample(out, name, labels, active[key].load(Relaxed));
        }
    }
}
