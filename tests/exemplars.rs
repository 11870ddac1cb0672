//! Exemplars: when a scraper asks for OpenMetrics, counters and histogram
//! buckets carry the trace and span ids of their last sampled call; the
//! Prometheus text format stays as it was.
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use telemark::metrics::ExpositionFormat;
use telemark::opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use telemark::opentelemetry::Context;
use telemark::opentelemetry_sdk::trace::SpanData;
use telemark::{counted, timed, traced};

use common::SpanFixture;

/// Telemetry serving `/metrics`, exporting spans to memory with the
/// default sampler (parent-based, every root sampled).
fn fixture() -> &'static SpanFixture {
    static FIXTURE: OnceLock<SpanFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| common::memory_traces(telemark::builder!().listen("127.0.0.1:0")))
}

fn span(name: &str) -> SpanData {
    common::exported_span(fixture(), name)
}

/// An exemplar read off a sample line.
#[derive(Debug, PartialEq)]
struct Exemplar {
    trace_id: String,
    span_id: String,
    value: f64,
    timestamp: f64,
}

/// The line of the sample named `name` whose labels include `labels`, and
/// its exemplar if it has one.
fn sample(text: &str, name: &str, labels: &[&str]) -> (String, Option<Exemplar>) {
    let line = text
        .lines()
        .find(|line| {
            line.starts_with(&format!("{name}{{"))
                && labels.iter().all(|label| {
                    line.contains(&format!("{label},")) || line.contains(&format!("{label}}}"))
                })
        })
        .unwrap_or_else(|| panic!("{name} {labels:?} in\n{text}"));
    let exemplar = line.split_once(" # ").map(|(_, exemplar)| {
        let (labels, rest) = exemplar
            .strip_prefix("{trace_id=\"")
            .and_then(|rest| rest.split_once("\"} "))
            .expect("trace_id first");
        let (trace_id, span_id) = labels.split_once("\",span_id=\"").expect("then span_id");
        let (value, timestamp) = rest.split_once(' ').expect("value and timestamp");
        Exemplar {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            value: value.parse().unwrap(),
            timestamp: timestamp.parse().unwrap(),
        }
    });
    (line.to_owned(), exemplar)
}

fn openmetrics() -> String {
    fixture()
        .telemetry
        .render_metrics_as(ExpositionFormat::OpenMetrics)
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[traced]
#[timed(buckets = [0.001, 1.0])]
#[counted]
fn checkout(fail: bool) -> Result<u32, String> {
    std::thread::sleep(Duration::from_millis(2));
    if fail {
        Err("declined".into())
    } else {
        Ok(7)
    }
}

#[test]
fn a_sampled_call_is_the_exemplar_of_its_counter_and_of_its_duration_bucket() {
    fixture();
    let before = now_seconds();
    assert_eq!(checkout(false), Ok(7), "the result is unchanged");
    let span = span("checkout");
    let trace_id = format!("{:032x}", span.span_context.trace_id());
    let span_id = format!("{:016x}", span.span_context.span_id());
    let text = openmetrics();

    let function = r#"function="checkout""#;
    let (_, exemplar) = sample(&text, "function_calls_total", &[function, r#"result="ok""#]);
    let exemplar = exemplar.expect("the ok counter has an exemplar");
    assert_eq!(
        (&exemplar.trace_id, &exemplar.span_id),
        (&trace_id, &span_id)
    );
    assert_eq!(exemplar.value, 1.0);
    assert!(
        exemplar.timestamp >= before - 0.01 && exemplar.timestamp <= now_seconds() + 0.01,
        "the exemplar's time is the call's: {exemplar:?}"
    );
    let (line, none) = sample(
        &text,
        "function_calls_total",
        &[function, r#"result="error""#],
    );
    assert_eq!(none, None, "no failed call, no exemplar: {line}");

    // 2 ms lies in (0.001, 1]: that bucket links to the call, the others not.
    let bucket = "function_calls_duration_seconds_bucket";
    let (_, exemplar) = sample(&text, bucket, &[function, r#"le="1""#]);
    let exemplar = exemplar.expect("the bucket holding the call has an exemplar");
    assert_eq!(
        (&exemplar.trace_id, &exemplar.span_id),
        (&trace_id, &span_id)
    );
    assert!(
        exemplar.value > 0.001 && exemplar.value <= 1.0,
        "its value is the call's duration in seconds: {exemplar:?}"
    );
    for le in [r#"le="0.001""#, r#"le="+Inf""#] {
        let (line, none) = sample(&text, bucket, &[function, le]);
        assert_eq!(none, None, "{line}");
    }

    assert_eq!(checkout(true), Err("declined".into()));
    let (_, exemplar) = sample(
        &openmetrics(),
        "function_calls_total",
        &[function, r#"result="error""#],
    );
    assert_ne!(
        exemplar
            .expect("the failed call is the error counter's exemplar")
            .trace_id,
        trace_id,
        "a new root, a new trace"
    );
}

#[timed(buckets = [1.0])]
#[counted]
fn load_row() -> u8 {
    1
}

#[traced]
fn handle_request() -> u8 {
    load_row()
}

#[test]
fn an_untraced_function_called_inside_a_sampled_span_links_to_that_span() {
    fixture();
    load_row();
    let text = openmetrics();
    let (line, none) = sample(
        &text,
        "function_calls_total",
        &[r#"function="load_row""#, r#"result="ok""#],
    );
    assert_eq!(none, None, "called outside any span, no exemplar: {line}");

    handle_request();
    let parent = span("handle_request");
    let text = openmetrics();
    for (name, labels) in [
        (
            "function_calls_total",
            [r#"function="load_row""#, r#"result="ok""#],
        ),
        (
            "function_calls_duration_seconds_bucket",
            [r#"function="load_row""#, r#"le="1""#],
        ),
    ] {
        let (_, exemplar) = sample(&text, name, &labels);
        let exemplar = exemplar.expect("linked to the enclosing span");
        assert_eq!(
            exemplar.trace_id,
            format!("{:032x}", parent.span_context.trace_id())
        );
        assert_eq!(
            exemplar.span_id,
            format!("{:016x}", parent.span_context.span_id())
        );
    }
}

#[traced]
#[counted]
fn unsampled_job() {}

#[test]
fn an_unsampled_span_leaves_no_exemplar() {
    fixture();
    let parent = SpanContext::new(
        TraceId::from(0x5a5a_u128),
        SpanId::from(0x77_u64),
        TraceFlags::default(), // not sampled: the default sampler follows
        true,
        TraceState::NONE,
    );
    {
        let _remote = Context::current().with_remote_span_context(parent).attach();
        unsampled_job();
    }
    let (line, none) = sample(
        &openmetrics(),
        "function_calls_total",
        &[r#"function="unsampled_job""#, r#"result="ok""#],
    );
    assert!(line.contains("} 1"), "the call is counted: {line}");
    assert_eq!(none, None, "but is no exemplar: {line}");
}

#[traced]
#[timed(buckets = [1.0])]
#[counted]
async fn fetch_quote() -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_call_awaited_in_a_runtime_is_its_own_exemplar() {
    fixture();
    assert_eq!(fetch_quote().await, 3);
    let span = span("fetch_quote");
    let text = openmetrics();
    for (name, labels) in [
        (
            "function_calls_total",
            [r#"function="fetch_quote""#, r#"result="ok""#],
        ),
        (
            "function_calls_duration_seconds_bucket",
            [r#"function="fetch_quote""#, r#"le="1""#],
        ),
    ] {
        let (_, exemplar) = sample(&text, name, &labels);
        let exemplar = exemplar.unwrap_or_else(|| panic!("{name} has an exemplar"));
        assert_eq!(
            exemplar.span_id,
            format!("{:016x}", span.span_context.span_id())
        );
    }
}

#[test]
fn the_prometheus_text_format_carries_no_exemplar_and_no_eof() {
    fixture();
    checkout(false).unwrap();
    let text = fixture().telemetry.render_metrics();
    assert!(text.contains("# TYPE function_calls_total counter"));
    assert!(!text.contains(" # {"), "{text}");
    assert!(!text.contains("# EOF"));
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
}

#[test]
fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
    fixture();
    metrics::counter!("jobs_done_total").increment(2);
    metrics::counter!("retries").increment(1);
    metrics::gauge!("queue_depth").set(4.0);
    let text = openmetrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in [
        "# TYPE function_calls counter",
        "# TYPE function_calls_duration_seconds histogram",
        "# TYPE function_calls_concurrent gauge",
        "# TYPE build_info gauge",
        "# TYPE jobs_done counter",
        "jobs_done_total 2",
        // A facade counter without `_total` keeps its series name.
        "# TYPE retries unknown",
        "retries 1",
        "# TYPE queue_depth gauge",
        "queue_depth 4",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(
        !text.lines().any(str::is_empty),
        "no blank line in OpenMetrics"
    );
}

/// `GET /metrics` with `accept`: (content type, vary, body).
fn get_metrics(address: SocketAddr, accept: Option<&str>) -> (String, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    (header("content-type"), header("vary"), body.to_owned())
}

#[test]
fn the_endpoint_serves_the_format_the_scraper_asks_for() {
    let address = fixture().telemetry.local_addr().unwrap();
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, vary, body) = get_metrics(address, Some(prometheus));
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(vary, "Accept");
    assert!(body.ends_with("# EOF\n"));
    for accept in [None, Some("*/*"), Some("text/plain;version=0.0.4")] {
        let (content_type, _, body) = get_metrics(address, accept);
        assert_eq!(
            content_type, "text/plain; version=0.0.4; charset=utf-8",
            "{accept:?}"
        );
        assert!(!body.contains("# EOF"));
    }
}
