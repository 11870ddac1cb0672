//! Function metrics as Prometheus scrapes them: exact counts after known call
//! patterns, over HTTP, parsed by a real exposition-format parser.
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use common::{http_get, scrape, start};
use telemark::{counted, timed};

const MODULE: &str = "metrics";

fn calls(function: &str, result: &str) -> [(&'static str, String); 3] {
    [
        ("function", function.to_owned()),
        ("module", MODULE.to_owned()),
        ("result", result.to_owned()),
    ]
}

fn count(scrape: &common::Scrape, function: &str, result: &str) -> f64 {
    let labels = calls(function, result);
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    scrape.value("function_calls_total", &labels)
}

#[counted]
fn divide(a: u32, b: u32) -> Result<u32, String> {
    if b == 0 {
        return Err("division by zero".into());
    }
    Ok(a / b)
}

#[test]
fn ok_and_error_results_are_counted_exactly() {
    let telemetry = start();
    for b in [1, 2, 0, 3, 0] {
        let _ = divide(6, b);
    }
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "divide", "ok"), 3.0);
    assert_eq!(count(&scrape, "divide", "error"), 2.0);
    assert_eq!(
        scrape.value(
            "function_calls_total",
            &[("function", "divide"), ("result", "ok")]
        ),
        3.0
    );
}

#[counted]
fn parse_with_question_mark(input: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let value: u32 = input.parse()?;
    Ok(value)
}

#[test]
fn question_mark_errors_are_counted_and_returned_unchanged() {
    let telemetry = start();
    assert_eq!(parse_with_question_mark("7").unwrap(), 7);
    let err = parse_with_question_mark("x").unwrap_err();
    assert_eq!(err.to_string(), "invalid digit found in string");
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "parse_with_question_mark", "ok"), 1.0);
    assert_eq!(count(&scrape, "parse_with_question_mark", "error"), 1.0);
}

#[counted]
#[timed]
fn explode(should_panic: bool) -> u32 {
    if should_panic {
        panic!("boom");
    }
    1
}

#[test]
fn a_panic_is_counted_as_an_error_and_keeps_unwinding() {
    let telemetry = start();
    assert_eq!(explode(false), 1);
    let caught = std::panic::catch_unwind(|| explode(true));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "explode", "ok"), 1.0);
    assert_eq!(count(&scrape, "explode", "error"), 1.0);
    let (buckets, _) = scrape.histogram(
        "function_calls_duration_seconds",
        &[("function", "explode")],
    );
    assert_eq!(buckets["+Inf"], 2.0, "the panicking call is timed too");
    assert_eq!(
        scrape.value("function_calls_concurrent", &[("function", "explode")]),
        0.0
    );
}

#[counted]
#[timed]
async fn wait_forever() -> Result<(), String> {
    std::future::pending::<()>().await;
    Ok(())
}

#[test]
fn a_cancelled_future_leaves_in_flight_and_counts_as_an_error() {
    let telemetry = start();
    let address = telemetry.local_addr().unwrap();
    let mut context = Context::from_waker(Waker::noop());
    {
        let future = wait_forever();
        let before_poll = scrape(address);
        assert_eq!(
            before_poll.value("function_calls_concurrent", &[("function", "wait_forever")]),
            0.0,
            "an unpolled future has not started"
        );
        let mut future = pin!(future);
        assert!(future.as_mut().poll(&mut context).is_pending());
        let running = scrape(address);
        assert_eq!(
            running.value("function_calls_concurrent", &[("function", "wait_forever")]),
            1.0
        );
    } // dropped: cancelled
    let after = scrape(address);
    assert_eq!(
        after.value("function_calls_concurrent", &[("function", "wait_forever")]),
        0.0
    );
    assert_eq!(count(&after, "wait_forever", "error"), 1.0);
    assert_eq!(count(&after, "wait_forever", "ok"), 0.0);
    let (buckets, _) = after.histogram(
        "function_calls_duration_seconds",
        &[("function", "wait_forever")],
    );
    assert_eq!(buckets["+Inf"], 1.0);
}

#[counted]
fn hot(i: u64) -> u64 {
    i.wrapping_mul(3)
}

#[test]
fn eight_threads_times_ten_thousand_calls_are_counted_exactly() {
    let telemetry = start();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for i in 0..10_000 {
                    std::hint::black_box(hot(i));
                }
            });
        }
    });
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "hot", "ok"), 80_000.0);
    assert_eq!(count(&scrape, "hot", "error"), 0.0);
}

#[timed(buckets = [0.005, 0.5, 5])]
fn sleepy(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

#[test]
fn histogram_buckets_count_each_call_once_in_the_right_bucket() {
    let telemetry = start();
    for millis in [0, 0, 0, 50, 50] {
        sleepy(millis);
    }
    let scrape = scrape(telemetry.local_addr().unwrap());
    let (buckets, sum) =
        scrape.histogram("function_calls_duration_seconds", &[("function", "sleepy")]);
    assert_eq!(buckets.len(), 4, "{buckets:?}");
    assert_eq!(buckets["0.005"], 3.0);
    assert_eq!(buckets["0.5"], 5.0);
    assert_eq!(buckets["5"], 5.0);
    assert_eq!(buckets["+Inf"], 5.0);
    assert!((0.1..2.5).contains(&sum), "sum of two 50 ms sleeps: {sum}");
    assert!(scrape
        .text
        .contains("function_calls_duration_seconds_count{function=\"sleepy\",module=\"metrics\","));
}

#[counted]
#[timed]
fn never_called() -> Result<(), ()> {
    Ok(())
}

#[test]
fn series_exist_at_zero_before_the_first_call() {
    let telemetry = start();
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "never_called", "ok"), 0.0);
    assert_eq!(count(&scrape, "never_called", "error"), 0.0);
    let (buckets, sum) = scrape.histogram(
        "function_calls_duration_seconds",
        &[("function", "never_called")],
    );
    assert_eq!(buckets.len(), telemark::metrics::DEFAULT_BUCKETS.len() + 1);
    assert!(buckets.values().all(|&count| count == 0.0));
    assert_eq!(sum, 0.0);
    assert_eq!(
        scrape.value("function_calls_concurrent", &[("function", "never_called")]),
        0.0
    );
    let service = telemetry.service_name().to_owned();
    assert_eq!(
        scrape.value(
            "build_info",
            &[
                ("service_name", service.as_str()),
                ("version", env!("CARGO_PKG_VERSION")),
                ("autometrics_version", "1.0.0"),
            ]
        ),
        1.0
    );
}

#[counted(ok_if = Option::is_some)]
fn lookup(key: u32) -> Option<u32> {
    (key < 10).then_some(key)
}

#[counted(error_if = is_negative)]
fn signed(value: i32) -> i32 {
    value
}

fn is_negative(value: &i32) -> bool {
    *value < 0
}

#[test]
fn ok_if_and_error_if_override_the_classification() {
    let telemetry = start();
    let _ = (lookup(1), lookup(50), lookup(60));
    let _ = (signed(1), signed(-1));
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "lookup", "ok"), 1.0);
    assert_eq!(count(&scrape, "lookup", "error"), 2.0);
    assert_eq!(count(&scrape, "signed", "ok"), 1.0);
    assert_eq!(count(&scrape, "signed", "error"), 1.0);
}

#[counted(name = "jobs_processed_total", labels(queue = "emails", tier = "1"))]
fn process_job() {}

#[test]
fn custom_names_and_constant_labels() {
    let telemetry = start();
    process_job();
    process_job();
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(
        scrape.value(
            "jobs_processed_total",
            &[
                ("function", "process_job"),
                ("queue", "emails"),
                ("tier", "1"),
                ("result", "ok"),
            ]
        ),
        2.0
    );
    assert!(scrape.text.contains("# TYPE jobs_processed_total counter"));
}

struct Account {
    balance: i64,
}

trait Ledger {
    fn post(&mut self, amount: i64) -> Result<i64, String>;
}

#[counted]
impl Ledger for Account {
    fn post(&mut self, amount: i64) -> Result<i64, String> {
        if self.balance + amount < 0 {
            return Err("insufficient funds".into());
        }
        self.balance += amount;
        Ok(self.balance)
    }
}

#[counted]
impl Account {
    async fn audit(&self) -> Result<i64, String> {
        Ok(self.balance)
    }
}

#[counted]
fn largest<T: PartialOrd + Copy>(items: &[T]) -> Option<T> {
    items.iter().copied().fold(None, |best, item| match best {
        Some(b) if b >= item => Some(b),
        _ => Some(item),
    })
}

#[tokio::test]
async fn methods_are_named_type_colon_colon_method() {
    let telemetry = start();
    let mut account = Account { balance: 0 };
    assert_eq!(account.post(10), Ok(10));
    assert!(account.post(-20).is_err());
    assert_eq!(account.audit().await, Ok(10));
    assert_eq!(largest(&[1, 5, 3]), Some(5));
    assert_eq!(largest(&[1.5, 0.5]), Some(1.5));
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(count(&scrape, "Account::post", "ok"), 1.0);
    assert_eq!(count(&scrape, "Account::post", "error"), 1.0);
    assert_eq!(count(&scrape, "Account::audit", "ok"), 1.0);
    assert_eq!(
        count(&scrape, "largest", "ok"),
        2.0,
        "generic instances share one series"
    );
}

#[test]
fn metrics_recorded_through_the_metrics_facade_are_served_too() {
    let telemetry = start();
    metrics::counter!("orders_shipped_total", "carrier" => "ups").increment(4);
    let scrape = scrape(telemetry.local_addr().unwrap());
    assert_eq!(
        scrape.value("orders_shipped_total", &[("carrier", "ups")]),
        4.0
    );
}

#[counted]
#[timed]
fn status_probe(ok: bool) -> Result<(), ()> {
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

#[test]
fn health_ready_and_status_endpoints() {
    let healthy = telemark::builder!()
        .listen("127.0.0.1:0")
        .service_name("checkout")
        .readiness_check("database", || async { Ok(()) })
        .start()
        .unwrap();
    let address = healthy.local_addr().unwrap();
    let (status, body) = http_get(address, "/health");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = http_get(address, "/ready");
    assert_eq!(status, 200, "{body}");

    let _ = status_probe(true);
    let _ = status_probe(false);
    let (status, body) = http_get(address, "/status");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["service"], "checkout");
    assert!(json["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let functions = json["functions"].as_array().unwrap();
    let probe_entry = functions
        .iter()
        .find(|f| f["function"] == "status_probe" && f["module"] == MODULE)
        .expect("status_probe is catalogued");
    assert_eq!(probe_entry["calls"], 2);
    assert_eq!(probe_entry["errors"], 1);
    assert_eq!(
        probe_entry["attributes"],
        serde_json::json!(["counted", "timed"])
    );
    assert!(functions.iter().any(|f| f["function"] == "never_called"));

    let (status, _) = http_get(address, "/nope");
    assert_eq!(status, 404);

    let failing = telemark::builder!()
        .listen("127.0.0.1:0")
        .readiness_check("database", || async { Ok(()) })
        .readiness_check("cache", || async { Err("connection refused".to_owned()) })
        .readiness_check("slow", || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .readiness_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    let (status, body) = http_get(failing.local_addr().unwrap(), "/ready");
    assert_eq!(status, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "not_ready");
    assert_eq!(json["checks"][0]["ok"], true);
    assert_eq!(json["checks"][1]["reason"], "connection refused");
    assert_eq!(json["checks"][2]["reason"], "timed out after 100ms");
}

#[test]
fn bad_addresses_and_ports_in_use_are_errors() {
    let err = telemark::builder!()
        .listen("not an address")
        .start()
        .unwrap_err();
    assert!(
        matches!(err, telemark::telemetry::TelemetryError::InvalidAddress(_)),
        "{err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let err = telemark::builder!().listen(&address).start().unwrap_err();
    assert!(
        matches!(err, telemark::telemetry::TelemetryError::Bind { .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with(&format!("cannot listen on {address}")));

    let err = telemark::builder!()
        .without_server()
        .duration_buckets(&[1.0, 0.5])
        .start()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid duration buckets: histogram bucket 0.5 is not greater than the bucket before it"
    );
}

#[test]
fn a_blocking_readiness_check_stalls_neither_the_endpoints_nor_shutdown() {
    let telemetry = telemark::builder!()
        .listen("127.0.0.1:0")
        .metrics_recorder(false)
        .readiness_check("stuck", || async {
            // Blocks its thread, as a careless check might.
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        })
        .readiness_check("fine", || async { Ok(()) })
        .readiness_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    let address = telemetry.local_addr().unwrap();
    let started = Instant::now();
    let ready: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || http_get(address, "/ready")))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    for path in ["/metrics", "/health"] {
        let asked = Instant::now();
        assert_eq!(http_get(address, path).0, 200);
        assert!(asked.elapsed() < Duration::from_secs(1), "{path} waited");
    }
    for answer in ready {
        let (status, body) = answer.join().unwrap();
        assert_eq!(status, 503, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["checks"][0]["name"], "stuck");
        assert_eq!(json["checks"][0]["ok"], false);
        assert_eq!(json["checks"][1]["ok"], true);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline holds"
    );
    // The stuck check is not started again while its first run blocks: a
    // later request waits for that run, and times out.
    let (status, body) = http_get(address, "/ready");
    assert_eq!(status, 503);
    assert!(body.contains("timed out"), "{body}");
    let dropping = Instant::now();
    drop(telemetry);
    assert!(
        dropping.elapsed() < Duration::from_secs(1),
        "dropping waited"
    );
}
