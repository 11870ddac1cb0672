//! Trace pipelines over the life of several `Telemetry` guards, and every
//! span accounted for when the collector never answers (its own test
//! binary: it installs and removes process-wide pipelines).
#![cfg(all(feature = "otlp", not(feature = "disable-instrumentation")))]

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::InMemorySpanExporter;
use telemark::trace::Sampler;
use telemark::{traced, Telemetry, Traces};

#[traced]
fn work(x: u32) -> u32 {
    x + 1
}

fn start(exporter: &InMemorySpanExporter) -> Telemetry {
    telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .traces(Traces::exporter(exporter.clone()).sampler(Sampler::AlwaysOn))
        .start()
        .expect("telemetry starts")
}

fn exported(exporter: &InMemorySpanExporter) -> usize {
    exporter.get_finished_spans().unwrap().len()
}

fn counter(telemetry: &Telemetry, name: &str) -> u64 {
    telemetry
        .render_metrics()
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .expect("the counter is rendered")
}

#[test]
fn pipelines_stack_dropping_the_newest_restores_the_older_and_hanging_collectors_lose_counted_spans(
) {
    // Two guards: the newer one's pipeline is current; dropping it makes
    // the older one's current again.
    let older_spans = InMemorySpanExporter::default();
    let newer_spans = InMemorySpanExporter::default();
    let older = start(&older_spans);
    let newer = start(&newer_spans);
    work(1);
    assert!(newer.flush_traces(Duration::from_secs(5)));
    assert_eq!((exported(&older_spans), exported(&newer_spans)), (0, 1));
    drop(newer);
    work(2);
    assert!(older.flush_traces(Duration::from_secs(5)));
    assert_eq!(exported(&older_spans), 1, "the older pipeline is back");
    // Dropping the older one while a newer one lives keeps the newer.
    let newest_spans = InMemorySpanExporter::default();
    let newest = start(&newest_spans);
    drop(older);
    work(3);
    assert!(newest.flush_traces(Duration::from_secs(5)));
    assert_eq!(exported(&newest_spans), 1);
    drop(newest);

    // A collector that accepts connections and never answers.
    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = collector.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in collector.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = stream.read(&mut buffer);
            held.push(stream); // never answered, never closed
        }
    });
    let reader = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .start()
        .unwrap();
    let dropped_before = counter(&reader, "telemark_spans_dropped_total");
    let exported_before = counter(&reader, "telemark_spans_exported_total");
    let hanging = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .traces(Traces::otlp_http(format!("http://{address}/v1/traces")).sampler(Sampler::AlwaysOn))
        .start()
        .unwrap();
    for x in 0..300 {
        work(x);
    }
    let started = Instant::now();
    hanging.shutdown_within(Duration::from_secs(1));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let dropped = counter(&reader, "telemark_spans_dropped_total") - dropped_before;
    let exported = counter(&reader, "telemark_spans_exported_total") - exported_before;
    assert_eq!(
        (exported, dropped),
        (0, 300),
        "every span is exported or counted as dropped"
    );
}
