//! A tower layer for HTTP servers (feature `tower`; axum's routes with the
//! feature `axum`): a server span and the OpenTelemetry HTTP server metrics
//! per request.
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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll};

use http::{Request, Response};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{Status, TraceContextExt};

use crate::clock::clock;
use crate::metrics::exposition::{format_seconds, header, sample};
use crate::propagation::extract_context;
use crate::site::SiteInfo;
use crate::trace::span::{AsyncSpan, FillOnce, Kind, PollScope, SpanRecord, TraceSite};

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

/// Bounds of `http.server.request.duration` in nanoseconds: the
/// OpenTelemetry semantic conventions' advice, 5 ms to 10 s, which is also
/// the Autometrics default set.
const BOUND_NANOS: [u64; 14] = telemark_limits::DEFAULT_BUCKET_NANOS;

/// Most `(method, route, status)` series of the request duration; requests
/// beyond them are counted in one series labelled
/// `otel_metric_overflow="true"`, as the OpenTelemetry SDK does.
pub const MAX_ROUTE_SERIES: usize = 1_000;

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

/// The standard methods, as recorded; anything else is `_OTHER`.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

impl<S, B, ResponseBody> tower_service::Service<Request<B>> for HttpServerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResponseBody>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = HttpServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = clock().raw();
        let method = method_label(request.method());
        let route = self
            .route_of(&request)
            .map(|route| bounded(route, MAX_ROUTE_BYTES));
        let scheme = request.uri().scheme_str().map_or("http", |scheme| {
            if scheme == "https" {
                "https"
            } else {
                "http"
            }
        });
        let parent = extract_context(request.headers());
        let mut span = {
            let _parent = parent.clone().attach();
            let mut fill = FillOnce::new(|record: &mut SpanRecord| {
                fill_request(record, &request, method, route.as_deref(), scheme)
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
        };
        let future = {
            let _current = state.enter();
            self.inner.call(request)
        };
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

/// Longest route kept (labels and span names), in bytes.
pub const MAX_ROUTE_BYTES: usize = 256;
/// Longest text kept from a request in a span attribute, in bytes.
const MAX_ATTRIBUTE_BYTES: usize = 1_024;

/// `text`, cut at a character boundary to at most `limit` bytes.
fn bounded(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The request's attributes and the span's name, on a sampled span.
fn fill_request<B>(
    record: &mut SpanRecord,
    request: &Request<B>,
    method: &'static str,
    route: Option<&str>,
    scheme: &'static str,
) {
    // An unknown method is named `HTTP`, with the original kept aside.
    let name_method = if method == "_OTHER" { "HTTP" } else { method };
    record.rename(match route {
        Some(route) => format!("{name_method} {route}"),
        None => name_method.to_owned(),
    });
    record.attribute("http.request.method", method);
    if method == "_OTHER" {
        let original = bounded(request.method().as_str().to_owned(), MAX_ATTRIBUTE_BYTES);
        record.attribute("http.request.method_original", original);
    }
    if let Some(route) = route {
        record.attribute("http.route", route.to_owned());
    }
    let path = bounded(request.uri().path().to_owned(), MAX_ATTRIBUTE_BYTES);
    record.attribute("url.path", path);
    record.attribute("url.scheme", scheme);
    let host = request.uri().host().map(str::to_owned).or_else(|| {
        let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = host.parse().ok()?;
        let host = authority.host();
        Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
    });
    if let Some(host) = host {
        record.attribute("server.address", bounded(host, MAX_ATTRIBUTE_BYTES));
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
        let agent = bounded(agent.to_owned(), MAX_ATTRIBUTE_BYTES);
        record.attribute("user_agent.original", agent);
    }
}

/// How a request ended, for `error_type` (with the status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    /// Answered: `error_type` is the status code of a 5xx.
    Answered,
    /// The inner service returned an error: `service_error`.
    ServiceError,
    /// Dropped before it was answered (client gone, timeout): `cancelled`.
    Cancelled,
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
}

/// What the inner service runs inside, for one poll (or its call).
enum Current {
    Span(#[allow(dead_code)] PollScope),
    Remote(#[allow(dead_code)] opentelemetry::ContextGuard),
}

impl RequestState {
    /// Makes the request's span (or, not sampled, the caller's context)
    /// current until the returned value drops.
    fn enter(&mut self) -> Current {
        match &self.remote {
            Some(remote) => Current::Remote(remote.clone().attach()),
            // SAFETY: a local of the poll or call, dropped before the state
            // moves.
            None => Current::Span(unsafe { self.span.enter_poll() }),
        }
    }

    /// Records the request's duration as it ended.
    fn measure(&self, status: u16, ending: Ending) {
        let clock = clock();
        let nanos = clock.delta_as_nanos(self.start, clock.raw());
        let key = SeriesKey {
            method: self.method,
            scheme: self.scheme,
            status,
            ending,
        };
        request_durations(key, self.route.as_deref()).record(nanos);
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
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            panic!("a request future was polled after it completed");
        };
        let poll = {
            let _current = state.enter();
            this.inner.poll(cx)
        };
        let Poll::Ready(result) = poll else {
            return Poll::Pending;
        };
        if let Some(mut state) = this.state.take() {
            let status = result.as_ref().ok().map(|response| response.status());
            if let Some(record) = state.span.record() {
                match (&result, status) {
                    (Ok(_), Some(status)) => {
                        record.attribute("http.response.status_code", i64::from(status.as_u16()));
                        if status.is_server_error() {
                            record.attribute("error.type", status.as_u16().to_string());
                            record.set_status(Status::error(""));
                        }
                    }
                    (Err(error), _) => {
                        record.attribute("error.type", "service_error");
                        record.set_status(Status::error(error.to_string()));
                    }
                    _ => {}
                }
            }
            match status {
                Some(status) => state.measure(status.as_u16(), Ending::Answered),
                None => state.measure(0, Ending::ServiceError),
            }
            state.completed = true;
            state.span.complete();
        }
        Poll::Ready(result)
    }
}

/// One series of the request duration: cumulative only at render.
struct Durations {
    /// Per bound, then above the last.
    buckets: [AtomicU64; 15],
    sum_nanos: AtomicU64,
}

impl Durations {
    fn new() -> Self {
        Durations {
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, nanos: u64) {
        let slot = BOUND_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BOUND_NANOS.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }
}

/// What tells apart the series of one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    method: &'static str,
    scheme: &'static str,
    /// 0: no response.
    status: u16,
    ending: Ending,
}

impl SeriesKey {
    /// `error_type`: the status code of a 5xx, `service_error` or
    /// `cancelled`; `None` for a request that did not fail.
    fn error_type(&self) -> Option<String> {
        match self.ending {
            Ending::Answered if self.status >= 500 => Some(self.status.to_string()),
            Ending::Answered => None,
            Ending::ServiceError => Some("service_error".to_owned()),
            Ending::Cancelled => Some("cancelled".to_owned()),
        }
    }
}

/// One series of a route.
struct RouteSeries {
    key: SeriesKey,
    durations: &'static Durations,
}

/// The request duration series by route (`""`: unknown), each created on
/// first use and never freed (at most [`MAX_ROUTE_SERIES`], then the
/// overflow series).
#[derive(Default)]
struct Routes {
    by_route: HashMap<String, Vec<RouteSeries>>,
    series: usize,
    overflow: Option<&'static Durations>,
}

static DURATIONS: LazyLock<RwLock<Routes>> = LazyLock::new(Default::default);
static ACTIVE: LazyLock<RwLock<HashMap<(&'static str, &'static str), &'static AtomicI64>>> =
    LazyLock::new(Default::default);

fn find(routes: &Routes, key: SeriesKey, route: &str) -> Option<&'static Durations> {
    routes
        .by_route
        .get(route)?
        .iter()
        .find(|series| series.key == key)
        .map(|series| series.durations)
}

/// The series of `key` on `route`: a read lock and a lookup by the route's
/// text, without allocating once it exists.
fn request_durations(key: SeriesKey, route: Option<&str>) -> &'static Durations {
    let route = route.unwrap_or("");
    if let Some(found) = find(
        &DURATIONS.read().unwrap_or_else(|e| e.into_inner()),
        key,
        route,
    ) {
        return found;
    }
    let mut routes = DURATIONS.write().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(&routes, key, route) {
        return found;
    }
    if routes.series >= MAX_ROUTE_SERIES {
        if let Some(overflow) = routes.overflow {
            return overflow;
        }
        let overflow: &'static Durations = Box::leak(Box::new(Durations::new()));
        routes.overflow = Some(overflow);
        return overflow;
    }
    let durations: &'static Durations = Box::leak(Box::new(Durations::new()));
    routes.series += 1;
    routes
        .by_route
        .entry(route.to_owned())
        .or_default()
        .push(RouteSeries { key, durations });
    durations
}

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

/// Renders one request duration series with `labels`.
fn render_durations(out: &mut String, labels: &[(&str, &str)], series: &Durations) {
    let name = "http_server_request_duration_seconds";
    let mut cumulative = 0;
    for (slot, count) in series.buckets.iter().enumerate() {
        cumulative += count.load(Relaxed);
        let le = BOUND_NANOS
            .get(slot)
            .map_or_else(|| "+Inf".to_owned(), |bound| format_seconds(*bound));
        let with_le = labels.iter().copied().chain([("le", le.as_str())]);
        sample(out, &format!("{name}_bucket"), with_le, cumulative);
    }
    let sum = series.sum_nanos.load(Relaxed) as f64 / 1e9;
    sample(out, &format!("{name}_sum"), labels.iter().copied(), sum);
    sample(
        out,
        &format!("{name}_count"),
        labels.iter().copied(),
        cumulative,
    );
}

/// Renders the HTTP server families, if any request was served.
pub(crate) fn render_http_server_metrics(out: &mut String, service: &str) {
    let routes = DURATIONS.read().unwrap_or_else(|e| e.into_inner());
    if routes.series > 0 || routes.overflow.is_some() {
        header(
            out,
            "http_server_request_duration_seconds",
            "histogram",
            "Duration of HTTP server requests.",
        );
        let mut names: Vec<&String> = routes.by_route.keys().collect();
        names.sort();
        for route in names {
            let mut series: Vec<&RouteSeries> = routes.by_route[route].iter().collect();
            series.sort_by_key(|series| series.key);
            for series in series {
                let key = series.key;
                let status = key.status.to_string();
                let error_type = key.error_type();
                let mut labels = vec![
                    ("service_name", service),
                    ("http_request_method", key.method),
                    ("url_scheme", key.scheme),
                ];
                if !route.is_empty() {
                    labels.push(("http_route", route));
                }
                if key.status != 0 {
                    labels.push(("http_response_status_code", &status));
                }
                if let Some(error_type) = &error_type {
                    labels.push(("error_type", error_type));
                }
                render_durations(out, &labels, series.durations);
            }
        }
        if let Some(overflow) = routes.overflow {
            let labels = [("service_name", service), ("otel_metric_overflow", "true")];
            render_durations(out, &labels, overflow);
        }
    }
    drop(routes);
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
