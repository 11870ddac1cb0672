//! `#[histogram]` and `#[gauge]`: values from arguments, `self` and the
//! returned value, on sync and async functions, as Prometheus scrapes them
//! (exact bucket counts and sums, at zero before the first call).
#![cfg(not(feature = "disable-instrumentation"))]

mod common;

use std::future::Future;
use std::task::Poll;

use common::{poll_once, scrape_shared as scraped};
use telemark::{gauge, histogram};

#[histogram(name = "upload_body_bytes", value = body.len(), buckets = [8, 64, 1024], unit = "bytes", labels(route = "/upload"))]
fn upload(body: Vec<u8>) -> usize {
    let length = body.len();
    drop(body); // the body is moved: its length was taken when the call started
    length
}

#[test]
fn an_argument_is_recorded_in_its_bucket_with_an_exact_sum() {
    for size in [0, 8, 9, 64, 65, 5000] {
        upload(vec![0; size]);
    }
    let scrape = scraped();
    let labels = [("function", "upload"), ("route", "/upload")];
    let (buckets, sum) = scrape.histogram("upload_body_bytes", &labels);
    assert_eq!(buckets["8"], 2.0);
    assert_eq!(buckets["64"], 4.0);
    assert_eq!(buckets["1024"], 5.0);
    assert_eq!(buckets["+Inf"], 6.0);
    assert_eq!(sum, (8 + 9 + 64 + 65 + 5000) as f64);
    assert!(scrape.text.contains("# TYPE upload_body_bytes histogram"));
}

struct Index {
    documents: Vec<&'static str>,
}

impl Index {
    #[histogram(self_type = Index, name = "search_results", value = |hits| hits.len(), buckets = [0, 1, 10])]
    fn search(&self, word: &str) -> Vec<&'static str> {
        self.documents
            .iter()
            .copied()
            .filter(|document| document.contains(word))
            .collect()
    }

    #[gauge(self_type = Index, name = "index_documents", value = self.documents.len())]
    fn add(&mut self, document: &'static str) {
        self.documents.push(document);
    }
}

#[test]
fn the_returned_value_and_a_field_of_self_are_recorded() {
    let mut index = Index {
        documents: Vec::new(),
    };
    index.add("red apple");
    index.add("green apple");
    index.add("pear");
    assert_eq!(index.search("apple").len(), 2);
    assert_eq!(index.search("plum").len(), 0);
    let scrape = scraped();
    let (buckets, sum) = scrape.histogram("search_results", &[("function", "Index::search")]);
    assert_eq!(buckets["0"], 1.0);
    assert_eq!(buckets["1"], 1.0);
    assert_eq!(buckets["10"], 2.0);
    assert_eq!(sum, 2.0);
    // Set when each call started: before the third document was added.
    let depth = scrape.value("index_documents", &[("function", "Index::add")]);
    assert_eq!(depth, 2.0);
}

#[gauge(name = "pool_idle_connections", value = |idle| *idle)]
fn release(idle: &mut u32) -> u32 {
    *idle += 1;
    *idle
}

#[histogram(name = "never_called_sizes", value = size, buckets = [1])]
fn never_called(size: u32) -> u32 {
    size
}

#[test]
fn a_gauge_keeps_the_last_value_and_families_exist_before_the_first_call() {
    let mut idle = 40;
    release(&mut idle);
    release(&mut idle);
    let scrape = scraped();
    let value = scrape.value("pool_idle_connections", &[("function", "release")]);
    assert_eq!(value, 42.0);
    let (buckets, sum) = scrape.histogram("never_called_sizes", &[("function", "never_called")]);
    assert_eq!((buckets["1"], buckets["+Inf"], sum), (0.0, 0.0, 0.0));
    let _ = never_called;
}

#[histogram(name = "job_batch_size", value = batch.len(), buckets = [1, 10])]
#[telemark::counted]
#[telemark::timed]
#[telemark::traced]
async fn run_batch(batch: Vec<u32>, finish: bool) -> usize {
    if !finish {
        std::future::pending::<()>().await;
    }
    batch.len()
}

#[histogram(name = "deferred_batch_size", value = batch.len(), buckets = [1, 10])]
#[gauge(name = "deferred_last_total_weight", value = |weight: &u32| *weight)]
fn defer_batch(batch: Vec<u32>) -> impl Future<Output = u32> {
    async move { batch.iter().sum() }
}

#[test]
fn async_values_are_recorded_when_the_call_starts_and_from_its_output() {
    assert_eq!(poll_once(run_batch(vec![1, 2, 3], true)), Poll::Ready(3));
    // Started, then cancelled: its argument was recorded.
    assert!(poll_once(run_batch(vec![1; 20], false)).is_pending());
    assert_eq!(poll_once(defer_batch(vec![4, 5])), Poll::Ready(9));
    // Never polled: never started, nothing recorded.
    drop(defer_batch(vec![7; 30]));
    let scrape = scraped();
    let (buckets, sum) = scrape.histogram("job_batch_size", &[("function", "run_batch")]);
    assert_eq!((buckets["10"], buckets["+Inf"], sum), (1.0, 2.0, 23.0));
    let calls = [("function", "run_batch"), ("result", "error")];
    assert_eq!(scrape.value("function_calls_total", &calls), 1.0);
    let (buckets, sum) = scrape.histogram("deferred_batch_size", &[("function", "defer_batch")]);
    assert_eq!((buckets["+Inf"], sum), (1.0, 2.0));
    let weight = scrape.value("deferred_last_total_weight", &[("function", "defer_batch")]);
    assert_eq!(weight, 9.0);

    let functions = telemark::catalog::instrumented_functions();
    let batch = functions
        .iter()
        .find(|f| f.function == "run_batch")
        .unwrap();
    assert_eq!(
        batch.attributes,
        ["counted", "timed", "traced", "histogram"]
    );
}
