//! Labels computed on each call: from arguments, `self`'s fields and the
//! returned value, on sync and async functions, with the cardinality limit
//! folding values beyond it into one overflow series; as Prometheus
//! scrapes them and as `/status` reports them.
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::future::Future;
use std::task::Poll;

use common::{poll_once, scrape_shared as scraped, shared_telemetry as telemetry, Scrape};
use telemark::{counted, LabelValue};

/// Every sample of `metric` whose labels include `labels`, as
/// (labels, value) sorted.
fn series(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<(Vec<String>, f64)> {
    let mut found: Vec<(Vec<String>, f64)> = scrape
        .matching(metric, labels)
        .into_iter()
        .map(|sample| {
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .filter(|(key, _)| !["module", "service_name"].contains(&key.as_str()))
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            labels.sort();
            let prometheus_parse::Value::Counter(value) = sample.value else {
                panic!("{metric} is a counter");
            };
            (labels, value)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn labels(pairs: &[&str]) -> Vec<String> {
    let mut labels: Vec<String> = pairs.iter().map(|pair| pair.to_string()).collect();
    labels.sort();
    labels
}

#[derive(Clone, Copy, LabelValue)]
enum Mode {
    Real,
    #[label_value(rename = "fallback_model")]
    Fallback,
}

#[counted(name = "embeddings_generated_total", labels(mode = mode, team = "ml"))]
fn embed(text: &str, mode: Mode) -> usize {
    text.len()
}

#[test]
fn an_enum_argument_labels_each_call_with_its_variant() {
    embed("a", Mode::Real);
    embed("b", Mode::Fallback);
    embed("c", Mode::Fallback);
    let scrape = scraped();
    let function = [("function", "embed")];
    assert_eq!(
        series(&scrape, "embeddings_generated_total", &function),
        vec![
            (
                labels(&[
                    "function=embed",
                    "mode=fallback_model",
                    "result=error",
                    "team=ml"
                ]),
                0.0
            ),
            (
                labels(&[
                    "function=embed",
                    "mode=fallback_model",
                    "result=ok",
                    "team=ml"
                ]),
                2.0
            ),
            (
                labels(&["function=embed", "mode=real", "result=error", "team=ml"]),
                0.0
            ),
            (
                labels(&["function=embed", "mode=real", "result=ok", "team=ml"]),
                1.0
            ),
        ]
    );
}

#[derive(Clone, Copy, LabelValue)]
enum Tier {
    Free,
    Paid,
}

struct Shop {
    tier: Tier,
}

#[counted]
impl Shop {
    /// Counted with the impl block's attribute: no computed label.
    fn open(&self) -> bool {
        true
    }

    #[counted(labels(tier = self.tier))]
    fn checkout(&self, amount: u32) -> Result<u32, &'static str> {
        if amount == 0 {
            return Err("empty cart");
        }
        Ok(amount)
    }
}

#[test]
fn a_field_of_self_labels_a_method() {
    let free = Shop { tier: Tier::Free };
    let paid = Shop { tier: Tier::Paid };
    assert!(free.open());
    let _ = free.checkout(0);
    let _ = paid.checkout(3);
    let _ = paid.checkout(4);
    let scrape = scraped();
    let checkout = [("function", "Shop::checkout")];
    let found = series(&scrape, "function_calls_total", &checkout);
    let value = |tier: &str, result: &str| {
        let wanted = labels(&[
            "function=Shop::checkout",
            &format!("tier={tier}"),
            &format!("result={result}"),
        ]);
        found.iter().find(|(l, _)| *l == wanted).map(|(_, v)| *v)
    };
    assert_eq!(value("free", "error"), Some(1.0));
    assert_eq!(value("paid", "ok"), Some(2.0));
    assert_eq!(value("free", "ok"), Some(0.0));
    // The method without its own labels keeps the plain series.
    assert_eq!(
        series(
            &scrape,
            "function_calls_total",
            &[("function", "Shop::open")]
        )
        .len(),
        2
    );
}

#[derive(Debug, Clone, Copy, LabelValue)]
enum FetchError {
    Timeout,
    ServerError,
}

#[counted(name = "fetches_total", labels(reason = |result| result.as_ref().err()))]
fn fetch(outcome: Result<u32, FetchError>) -> Result<u32, FetchError> {
    outcome
}

#[counted(name = "panicking_fetches_total", labels(reason = |result: &Result<u32, FetchError>| result.as_ref().err()))]
fn fetch_or_panic(outcome: Option<Result<u32, FetchError>>) -> Result<u32, FetchError> {
    outcome.expect("told to panic")
}

#[test]
fn a_closure_labels_each_call_by_its_returned_value() {
    let _ = fetch(Ok(1));
    let _ = fetch(Err(FetchError::Timeout));
    let _ = fetch(Err(FetchError::Timeout));
    let _ = fetch(Err(FetchError::ServerError));
    let scrape = scraped();
    let value = |labels: &[(&str, &str)]| scrape.value("fetches_total", labels);
    assert_eq!(value(&[("reason", "timeout"), ("result", "error")]), 2.0);
    assert_eq!(
        value(&[("reason", "server_error"), ("result", "error")]),
        1.0
    );
    // No error, no reason: an empty value, which Prometheus reads as no label.
    assert_eq!(value(&[("reason", ""), ("result", "ok")]), 1.0);
    assert!(scrape.text.contains("reason=\"\",result=\"ok\""));
}

#[test]
fn a_panicking_call_counts_as_an_error_without_its_returned_labels() {
    let _ = fetch_or_panic(Some(Ok(1)));
    let unwound = std::panic::catch_unwind(|| fetch_or_panic(None));
    assert!(unwound.is_err());
    let scrape = scraped();
    let value = |labels: &[(&str, &str)]| scrape.value("panicking_fetches_total", labels);
    assert_eq!(value(&[("reason", ""), ("result", "error")]), 1.0);
    assert_eq!(value(&[("reason", ""), ("result", "ok")]), 1.0);
}

#[counted(name = "responses_total", labels(status = status, cached = cached, route = route))]
fn respond(route: &'static str, status: u16, cached: bool) -> u16 {
    status
}

#[test]
fn strings_integers_and_booleans_are_label_values() {
    respond("/cart", 200, true);
    respond("/cart", 200, true);
    respond("/cart", 404, false);
    // The same text from another address is the same series.
    let route: &'static str = Box::leak(String::from("/cart").into_boxed_str());
    respond(route, 200, true);
    let scrape = scraped();
    let value = |status: &str, cached: &str| {
        scrape.value(
            "responses_total",
            &[
                ("route", "/cart"),
                ("status", status),
                ("cached", cached),
                ("result", "ok"),
            ],
        )
    };
    assert_eq!(value("200", "true"), 3.0);
    assert_eq!(value("404", "false"), 1.0);
}

#[counted(name = "lookups_by_shard_total", labels(shard = shard), cardinality_limit = 3)]
fn lookup(shard: u32) -> Option<u32> {
    (shard % 2 == 0).then_some(shard)
}

#[test]
fn values_beyond_the_cardinality_limit_count_in_one_overflow_series() {
    for shard in [0, 1, 2, 0, 3, 4, 5, 6, 1] {
        lookup(shard);
    }
    let scrape = scraped();
    let found = series(&scrape, "lookups_by_shard_total", &[("result", "ok")]);
    let shards: Vec<String> = found
        .iter()
        .filter_map(|(labels, _)| labels.iter().find(|l| l.starts_with("shard=")).cloned())
        .collect();
    assert_eq!(shards, ["shard=0", "shard=1", "shard=2"]);
    let value = |labels: &[(&str, &str)]| scrape.value("lookups_by_shard_total", labels);
    assert_eq!(value(&[("shard", "0"), ("result", "ok")]), 2.0);
    assert_eq!(value(&[("shard", "1"), ("result", "ok")]), 2.0);
    // 3, 4, 5 and 6 are beyond the limit: one series, without `shard`.
    let overflow = [("otel_metric_overflow", "true"), ("result", "ok")];
    assert_eq!(value(&overflow), 4.0);
    let overflow_line = scrape
        .text
        .lines()
        .find(|line| line.contains("otel_metric_overflow"))
        .unwrap();
    assert!(!overflow_line.contains("shard="), "{overflow_line}");

    let status = telemetry().status();
    let entry = status["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "lookup")
        .expect("/status lists lookup");
    assert_eq!(entry["calls"], 9);
    assert_eq!(entry["computed_labels"]["series"], 3);
    assert_eq!(entry["computed_labels"]["cardinality_limit"], 3);
    assert_eq!(entry["computed_labels"]["overflow_calls"], 4);
}

#[counted(name = "async_jobs_total", labels(queue = queue, outcome = |done: &bool| *done))]
async fn run_job(queue: &'static str, finish: bool) -> bool {
    if !finish {
        std::future::pending::<()>().await;
    }
    true
}

#[counted(name = "deferred_jobs_total", labels(queue = queue))]
fn defer_job(queue: &'static str) -> impl Future<Output = u8> {
    async { 7 }
}

#[test]
fn async_calls_are_labelled_and_a_cancelled_one_counts_as_an_error() {
    assert_eq!(poll_once(run_job("email", true)), Poll::Ready(true));
    // Cancelled after its first poll: an error, with no outcome label.
    assert!(poll_once(run_job("email", false)).is_pending());
    assert_eq!(poll_once(defer_job("batch")), Poll::Ready(7));
    // Dropped before its first poll: never started, not counted.
    drop(defer_job("batch"));
    let scrape = scraped();
    let jobs = |labels: &[(&str, &str)]| scrape.value("async_jobs_total", labels);
    assert_eq!(
        jobs(&[("queue", "email"), ("outcome", "true"), ("result", "ok")]),
        1.0
    );
    assert_eq!(
        jobs(&[("queue", "email"), ("outcome", ""), ("result", "error")]),
        1.0
    );
    let deferred = [("queue", "batch"), ("result", "ok")];
    assert_eq!(scrape.value("deferred_jobs_total", &deferred), 1.0);
    let errors = [("queue", "batch"), ("result", "error")];
    assert_eq!(scrape.value("deferred_jobs_total", &errors), 0.0);
}

#[counted(name = "boxed_jobs_total", labels(queue = queue))]
#[telemark::timed]
#[telemark::traced]
fn boxed_job(queue: &'static str) -> std::pin::Pin<Box<dyn Future<Output = u8> + Send>> {
    Box::pin(async { 9 })
}

#[test]
fn a_boxed_future_with_stacked_attributes_is_labelled() {
    assert_eq!(poll_once(boxed_job("reports")), Poll::Ready(9));
    let scrape = scraped();
    let ok = [("queue", "reports"), ("result", "ok")];
    assert_eq!(scrape.value("boxed_jobs_total", &ok), 1.0);
    let timed = [("function", "boxed_job")];
    let (buckets, _) = scrape.histogram("function_calls_duration_seconds", &timed);
    assert_eq!(buckets["+Inf"], 1.0);
}
