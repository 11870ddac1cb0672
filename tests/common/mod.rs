//! Test helpers: an HTTP GET, a parsed Prometheus scrape, and one process-
//! wide span pipeline exporting to memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// `GET path` over a fresh connection: (status code, body).
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, body.to_owned())
}

/// One scrape of `/metrics`, parsed by a Prometheus text-format parser.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<prometheus_parse::Sample>,
}

pub fn scrape(address: SocketAddr) -> Scrape {
    let (status, text) = http_get(address, "/metrics");
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    Scrape {
        text,
        samples: parsed.samples,
    }
}

impl Scrape {
    /// Every sample of `metric` whose labels include `labels`.
    pub fn matching(
        &self,
        metric: &str,
        labels: &[(&str, &str)],
    ) -> Vec<&prometheus_parse::Sample> {
        self.samples
            .iter()
            .filter(|sample| sample.metric == metric)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .collect()
    }

    /// The value of the one counter or gauge sample with these labels.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.matching(metric, labels);
        assert_eq!(found.len(), 1, "one {metric} {labels:?} in\n{}", self.text);
        match &found[0].value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric} is not a single value: {other:?}"),
        }
    }

    /// Cumulative bucket counts by upper bound, and the sum, of one histogram.
    pub fn histogram(&self, metric: &str, labels: &[(&str, &str)]) -> (HashMap<String, f64>, f64) {
        let found = self.matching(metric, labels);
        assert_eq!(found.len(), 1, "one {metric} {labels:?} in\n{}", self.text);
        let prometheus_parse::Value::Histogram(buckets) = &found[0].value else {
            panic!("{metric} is not a histogram");
        };
        let by_bound = buckets
            .iter()
            .map(|bucket| {
                let bound = if bucket.less_than.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    bucket.less_than.to_string()
                };
                (bound, bucket.count)
            })
            .collect();
        let sum_line = self
            .text
            .lines()
            .find(|line| {
                line.starts_with(&format!("{metric}_sum{{"))
                    && labels
                        .iter()
                        .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
            })
            .unwrap_or_else(|| panic!("a {metric}_sum line with {labels:?} in\n{}", self.text));
        let sum = sum_line.rsplit(' ').next().unwrap().parse().unwrap();
        (by_bound, sum)
    }
}

/// Polls `future` once, with a waker that does nothing.
pub fn poll_once<F: std::future::Future>(future: F) -> std::task::Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

/// An error with its chain of sources, as a user would read it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(" / ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The test binary's telemetry on a free loopback port, started once and
/// shared by its tests.
#[cfg(feature = "server")]
pub fn shared_telemetry() -> &'static telemark::Telemetry {
    static TELEMETRY: std::sync::OnceLock<telemark::Telemetry> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(start)
}

/// A scrape of the shared telemetry's `/metrics`.
#[cfg(feature = "server")]
pub fn scrape_shared() -> Scrape {
    scrape(shared_telemetry().local_addr().expect("served"))
}

/// Starts telemetry on a free loopback port.
#[cfg(feature = "server")]
pub fn start() -> telemark::Telemetry {
    telemark::builder!()
        .listen("127.0.0.1:0")
        .start()
        .expect("telemetry starts")
}

/// The test binary's telemetry, exporting every span (sampler always on) to
/// memory; started once, shared by its tests.
pub struct SpanFixture {
    pub telemetry: telemark::Telemetry,
    pub exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
}

pub fn span_fixture() -> &'static SpanFixture {
    static FIXTURE: std::sync::OnceLock<SpanFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let traces = telemark::Traces::exporter(exporter.clone())
            .sampler(telemark::trace::Sampler::AlwaysOn);
        let telemetry = telemark::builder!()
            .without_server()
            .metrics_recorder(false)
            .traces(traces)
            .start()
            .expect("telemetry starts");
        SpanFixture {
            telemetry,
            exporter,
        }
    })
}

/// Telemetry from `builder`, exporting every span to memory with the
/// default sampler (parent-based, roots sampled).
pub fn memory_traces(builder: telemark::telemetry::TelemetryBuilder) -> SpanFixture {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let telemetry = builder
        .traces(telemark::Traces::exporter(exporter.clone()))
        .start()
        .expect("telemetry starts");
    SpanFixture {
        telemetry,
        exporter,
    }
}

/// The one span named `name` that `fixture` exported, after a flush.
pub fn exported_span(fixture: &SpanFixture, name: &str) -> opentelemetry_sdk::trace::SpanData {
    assert!(fixture
        .telemetry
        .flush_traces(std::time::Duration::from_secs(5)));
    let spans = fixture.exporter.get_finished_spans().unwrap();
    let mut found: Vec<_> = spans.into_iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name}");
    found.remove(0)
}

/// A tower HTTP service that answers each request at once with
/// `answer(request)`: the inner service of layer tests.
#[cfg(feature = "tower")]
#[derive(Clone)]
pub struct AnswerAtOnce<F>(pub F);

#[cfg(feature = "tower")]
impl<F, B> tower_service::Service<http::Request<()>> for AnswerAtOnce<F>
where
    F: FnMut(http::Request<()>) -> http::Response<B>,
{
    type Response = http::Response<B>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        std::future::ready(Ok((self.0)(request)))
    }
}

/// An unlabeled counter's value as `telemetry` renders it, such as
/// `telemark_spans_dropped_total`.
pub fn rendered_counter(telemetry: &telemark::Telemetry, name: &str) -> u64 {
    let text = telemetry.render_metrics();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .parse()
        .unwrap()
}
