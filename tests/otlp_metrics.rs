//! The OTLP metrics push: what a collector receives over gRPC and over
//! HTTP (gzip, a header, delta temporality) is what `/metrics` shows at the
//! same moment; an unreachable collector is counted, never waited on.
#![cfg(all(feature = "otlp", not(feature = "disable-instrumentation")))]

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use fake_opentelemetry_collector::FakeCollectorServer;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use serde_json::{json, Value};
use telemark::push::{MetricsPush, Temporality};
use telemark::trace::{Otlp, OtlpCompression};

#[telemark::counted]
#[telemark::timed(buckets = [0.001, 1])]
fn work(n: u64) -> Result<u64, String> {
    if n % 4 == 0 {
        Err("every fourth fails".into())
    } else {
        Ok(n)
    }
}

#[telemark::counted]
fn other_work() {}

/// Called only by the HTTP test, whose deltas must add up to its calls.
#[telemark::counted]
fn sent_over_http(n: u64) -> Result<u64, String> {
    if n % 4 == 0 {
        Err("every fourth fails".into())
    } else {
        Ok(n)
    }
}

/// Called only by the unreachable-collector test.
#[telemark::counted]
fn never_delivered() {}

fn start(push: MetricsPush) -> telemark::Telemetry {
    telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .metrics_push(push)
        .start()
        .expect("telemetry starts")
}

/// A sample's value in `text`, found by its name and labels.
fn value_in(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}");
    match &found[0].value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_collector_receives_the_totals_metrics_shows() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let telemetry = start(
        MetricsPush::otlp_with(Otlp::grpc(collector.endpoint()))
            .interval(Duration::from_secs(3600)),
    );
    for n in 0..10 {
        let _ = work(n);
    }
    let text = telemetry.render_metrics();
    // The last push, at shutdown: nothing was called since the render.
    tokio::task::spawn_blocking(move || telemetry.shutdown_within(Duration::from_secs(5)))
        .await
        .unwrap();
    let exported = collector.exported_metrics(1, Duration::from_secs(5)).await;
    // The collector's record of each metric, as JSON.
    let exported = serde_json::to_value(&exported).unwrap();
    let metrics: Vec<&Value> = exported
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["metrics"].as_array().unwrap())
        .collect();
    let named = |name: &str| {
        *metrics
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} pushed"))
    };
    let point_of = |points: &'_ Value, function: &str, result: Option<&str>| -> Value {
        points
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                text_attribute(&p["attributes"]["function"]) == function
                    && result
                        .is_none_or(|result| text_attribute(&p["attributes"]["result"]) == result)
            })
            .cloned()
            .unwrap_or_else(|| panic!("a point of {function} {result:?}"))
    };

    let sum = &named("function_calls_total")["data"]["Sum"];
    assert_eq!(sum["is_monotonic"], true);
    assert_eq!(sum["aggregation_temporality"], 2, "cumulative");
    for result in ["ok", "error"] {
        let point = point_of(&sum["data_points"], "work", Some(result));
        let expected = value_in(
            &text,
            "function_calls_total",
            &[("function", "work"), ("result", result)],
        );
        assert_eq!(
            point["value"],
            json!({ "AsInt": expected as i64 }),
            "{result}"
        );
    }
    assert_eq!(
        value_in(
            &text,
            "function_calls_total",
            &[("function", "work"), ("result", "error")]
        ),
        3.0
    );
    // Families at zero are pushed too, as /metrics shows them.
    point_of(&sum["data_points"], "other_work", Some("ok"));

    let durations = named("function_calls_duration_seconds");
    assert_eq!(durations["unit"], "s");
    let point = point_of(&durations["data"]["Histogram"]["data_points"], "work", None);
    assert_eq!(point["explicit_bounds"], json!([0.001, 1.0]));
    assert_eq!(point["count"], 10);
    let buckets: Vec<u64> = serde_json::from_value(point["bucket_counts"].clone()).unwrap();
    assert_eq!(buckets.iter().sum::<u64>(), 10);
    let below_one_ms = text
        .lines()
        .find(|l| {
            l.starts_with("function_calls_duration_seconds_bucket{")
                && l.contains("function=\"work\"")
                && l.contains("le=\"0.001\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert_eq!(buckets[0], below_one_ms);
}

/// A string attribute as the fake collector records it (its value's
/// `Debug`: `Some(AnyValue { value: Some(StringValue("work")) })`).
fn text_attribute(recorded: &Value) -> String {
    let recorded = recorded.as_str().unwrap_or_default();
    recorded
        .split_once("StringValue(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(text, _)| text.to_owned())
        .unwrap_or_default()
}

/// One request a collector received over HTTP, and its headers.
struct Received {
    headers: http::HeaderMap,
    request: ExportMetricsServiceRequest,
}

/// A minimal OTLP/HTTP collector: every request decoded, on a channel.
async fn http_collector() -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<Received>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, received) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let sender = sender.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let sender = sender.clone();
                        async move {
                            let headers = request.headers().clone();
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let mut bytes = body.to_vec();
                            if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                                let mut decoded = Vec::new();
                                flate2::read::GzDecoder::new(&body[..])
                                    .read_to_end(&mut decoded)
                                    .unwrap();
                                bytes = decoded;
                            }
                            let request = ExportMetricsServiceRequest::decode(&bytes[..]).unwrap();
                            let _ = sender.send(Received { headers, request }).await;
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::new()),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, received)
}

/// The `function_calls_total` points of `sent_over_http` in a request:
/// result → value.
fn calls_sent_over_http(request: &ExportMetricsServiceRequest) -> BTreeMap<String, i64> {
    let mut calls = BTreeMap::new();
    for metric in request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == "function_calls_total")
    {
        let Some(metric::Data::Sum(sum)) = &metric.data else {
            continue;
        };
        assert_eq!(sum.aggregation_temporality, 1, "delta");
        for point in &sum.data_points {
            let attribute = |key: &str| {
                point
                    .attributes
                    .iter()
                    .find(|kv| kv.key == key)
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(text) => Some(text.clone()),
                        _ => None,
                    })
            };
            if attribute("function").as_deref() != Some("sent_over_http") {
                continue;
            }
            let Some(number_data_point::Value::AsInt(value)) = point.value else {
                panic!("an integer count")
            };
            calls.insert(attribute("result").unwrap(), value);
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_collector_receives_gzip_deltas_with_the_header() {
    let (address, mut received) = http_collector().await;
    let telemetry = start(
        MetricsPush::otlp_with(
            Otlp::http(format!("http://{address}/v1/metrics"))
                .compression(OtlpCompression::Gzip)
                .header("x-api-key", "s3cret"),
        )
        .interval(Duration::from_millis(100))
        .temporality(Temporality::Delta),
    );
    // Calls between pushes: the deltas add up to them (4 and 8 fail).
    for n in 1..=8 {
        let _ = sent_over_http(n);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (mut pushed_ok, mut pushed_error) = (0, 0);
    let mut first: Option<Received> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (pushed_ok, pushed_error) != (6, 2) && Instant::now() < deadline {
        let Ok(Some(one)) = tokio::time::timeout(Duration::from_secs(5), received.recv()).await
        else {
            break;
        };
        let calls = calls_sent_over_http(&one.request);
        pushed_ok += calls.get("ok").copied().unwrap_or(0);
        pushed_error += calls.get("error").copied().unwrap_or(0);
        first.get_or_insert(one);
    }
    assert_eq!((pushed_ok, pushed_error), (6, 2));
    let first = first.expect("a request");
    assert_eq!(first.headers["x-api-key"], "s3cret");
    assert_eq!(first.headers["content-encoding"], "gzip");
    assert_eq!(first.headers["content-type"], "application/x-protobuf");
    let resource = first.request.resource_metrics[0].resource.as_ref().unwrap();
    assert!(resource
        .attributes
        .iter()
        .any(|kv| kv.key == "service.name"));
    tokio::task::spawn_blocking(move || telemetry.shutdown_within(Duration::from_secs(2)))
        .await
        .unwrap();
}

#[test]
fn an_unreachable_collector_is_counted_and_never_waited_on() {
    // A port nothing listens on.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let telemetry = start(
        MetricsPush::otlp_with(
            Otlp::grpc(format!("http://{address}")).timeout(Duration::from_millis(200)),
        )
        .interval(Duration::from_millis(50)),
    );
    let started = Instant::now();
    never_delivered();
    let failed = |text: &str| value_in(text, "telemark_metric_exports_failed_total", &[]);
    while failed(&telemetry.render_metrics()) < 2.0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = telemetry.render_metrics();
    assert!(failed(&text) >= 2.0, "{text}");
    assert!(value_in(&text, "telemark_metric_points_dropped_total", &[]) > 0.0);
    assert!(value_in(&text, "telemark_metric_exports_total", &[]) >= failed(&text));
    let shutdown = Instant::now();
    telemetry.shutdown_within(Duration::from_millis(500));
    assert!(shutdown.elapsed() < Duration::from_secs(2));
}

/// Called only by the drop test.
#[telemark::counted]
fn counted_before_drop() {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_guard_pushes_a_last_time() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let telemetry = start(
        MetricsPush::otlp_with(Otlp::grpc(collector.endpoint()))
            .interval(Duration::from_secs(3600)),
    );
    counted_before_drop();
    // No push in an hour: the one the collector gets is the drop's.
    tokio::task::spawn_blocking(move || drop(telemetry))
        .await
        .unwrap();
    let exported = collector.exported_metrics(1, Duration::from_secs(5)).await;
    let text = serde_json::to_string(&exported).unwrap();
    assert!(text.contains("counted_before_drop"), "{text}");
}

#[test]
fn a_collector_that_never_answers_does_not_hold_up_shutdown() {
    // Accepts connections and reads nothing: every export waits out its
    // timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            connections.push(stream);
            if connections.len() > 8 {
                break;
            }
        }
    });
    let telemetry = start(
        MetricsPush::otlp_with(
            Otlp::http(format!("http://{address}/v1/metrics")).timeout(Duration::from_secs(30)),
        )
        .interval(Duration::from_millis(20))
        .export_timeout(Duration::from_secs(30)),
    );
    // An export is under way (and hanging) by now.
    std::thread::sleep(Duration::from_millis(200));
    let shutdown = Instant::now();
    telemetry.shutdown_within(Duration::from_millis(300));
    assert!(
        shutdown.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        shutdown.elapsed()
    );
    drop(held);
}
