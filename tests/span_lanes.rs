//! Spans handed over per thread: every span of many threads arrives once,
//! an idle thread's spans leave within the schedule delay, an exited
//! thread's spans are exported, and a shutdown that runs out of time counts
//! the spans still in lanes as dropped (its own binary: each test installs
//! process-wide pipelines and reads process-wide counters, one at a time).
#![cfg(not(feature = "disable-instrumentation"))]

mod common;
use common::rendered_counter;

use std::collections::HashSet;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use telemark::opentelemetry_sdk::error::OTelSdkResult;
use telemark::opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData, SpanExporter};
use telemark::trace::{BatchLimits, Sampler};
use telemark::{traced, Telemetry, Traces};

/// One test at a time: the pipeline and the counters are the process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[traced]
fn step(x: u64) -> u64 {
    x.wrapping_mul(3)
}

fn start(traces: Traces) -> Telemetry {
    telemark::builder!()
        .without_server()
        .traces(traces.sampler(Sampler::AlwaysOn))
        .start()
        .expect("telemetry starts")
}

fn span_ids(spans: &[SpanData]) -> HashSet<u64> {
    spans
        .iter()
        .map(|span| u64::from_be_bytes(span.span_context.span_id().to_bytes()))
        .collect()
}

#[test]
fn every_span_of_more_threads_than_lanes_arrives_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // A shared queue of 8,192 comes with 8 lanes, so 4 of the 12 threads
    // use the shared queue; a lane (512) is smaller than one thread's
    // spans, so a thread that outruns the export thread overflows into the
    // queue too.
    let exporter = InMemorySpanExporter::default();
    let telemetry = start(
        Traces::exporter(exporter.clone()).batch_limits(BatchLimits {
            max_queue_size: 8_192,
            ..BatchLimits::default()
        }),
    );
    let exported_before = rendered_counter(&telemetry, "telemark_spans_exported_total");
    let dropped_before = rendered_counter(&telemetry, "telemark_spans_dropped_total");
    let (threads, per_thread) = (12u64, 3_000u64);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            scope.spawn(move || {
                for x in 0..per_thread {
                    step(thread * per_thread + x);
                    if x % 500 == 0 {
                        // Let the export thread in now and then (2 cores).
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    assert!(telemetry.flush_traces(Duration::from_secs(10)));
    let spans = exporter.get_finished_spans().unwrap();
    let exported = rendered_counter(&telemetry, "telemark_spans_exported_total") - exported_before;
    let dropped = rendered_counter(&telemetry, "telemark_spans_dropped_total") - dropped_before;
    assert_eq!(
        exported + dropped,
        threads * per_thread,
        "every span is exported or counted as dropped"
    );
    assert_eq!(
        spans.len() as u64,
        exported,
        "the exporter got what was counted"
    );
    assert_eq!(
        span_ids(&spans).len(),
        spans.len(),
        "no span was exported twice"
    );
    // How many are dropped depends on how often the export thread gets a
    // core (a debug build, 12 callers, 2 cores): it is only counted.
    assert!(exported > 0, "{exported} exported, {dropped} dropped");
    telemetry.shutdown();
}

#[test]
fn an_idle_threads_spans_leave_within_the_schedule_delay_and_an_exited_threads_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let exporter = InMemorySpanExporter::default();
    let telemetry = start(
        Traces::exporter(exporter.clone()).batch_limits(BatchLimits {
            scheduled_delay: Duration::from_millis(100),
            ..BatchLimits::default()
        }),
    );
    // A thread ends three spans, then waits (alive, its lane not full): no
    // flush is asked for; the export thread finds them on its own.
    let (release, wait) = mpsc::channel::<()>();
    let idle = std::thread::spawn(move || {
        for x in 0..3 {
            step(x);
        }
        let _ = wait.recv();
    });
    let started = Instant::now();
    while exporter.get_finished_spans().unwrap().len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the idle thread's spans did not leave"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    release.send(()).unwrap();
    idle.join().unwrap();

    // Twenty threads, more than the lanes, one after the other: each ends
    // spans and exits, and none of its spans is lost (whether it had a
    // lane or the shared queue; lane retirement is unit-tested in lane.rs).
    exporter.reset();
    for thread in 0..20u64 {
        std::thread::spawn(move || {
            for x in 0..50 {
                step(thread * 50 + x);
            }
        })
        .join()
        .unwrap();
    }
    assert!(telemetry.flush_traces(Duration::from_secs(10)));
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1_000);
    assert_eq!(span_ids(&spans).len(), 1_000);
    telemetry.shutdown();
}

#[traced]
fn quiet_step(x: u64) -> u64 {
    x + 1
}

/// Counts the spans of `quiet_step` it is given (and keeps nothing),
/// taking a millisecond per export: slower than a thread ending spans.
#[derive(Debug, Default, Clone)]
struct QuietCounter(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl SpanExporter for QuietCounter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(Duration::from_millis(1));
        let quiet = batch
            .iter()
            .filter(|span| span.name == "quiet_step")
            .count();
        self.0
            .fetch_add(quiet as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn a_thread_ending_spans_without_pause_keeps_no_other_threads_waiting() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let quiet = QuietCounter::default();
    let telemetry = start(Traces::exporter(quiet.clone()).batch_limits(BatchLimits {
        scheduled_delay: Duration::from_millis(100),
        ..BatchLimits::default()
    }));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::thread::scope(|scope| {
        // The busy thread gets the first lane and refills it faster than
        // the export thread empties it.
        let busy_stop = std::sync::Arc::clone(&stop);
        scope.spawn(move || {
            let mut x = 0;
            while !busy_stop.load(std::sync::atomic::Ordering::Relaxed) {
                x = step(x);
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        // A second thread ends three spans and waits, its lane not full.
        let (release, wait) = mpsc::channel::<()>();
        scope.spawn(move || {
            for x in 0..3 {
                quiet_step(x);
            }
            let _ = wait.recv();
        });
        let started = Instant::now();
        let mut arrived = quiet.0.load(std::sync::atomic::Ordering::Relaxed);
        while arrived < 3 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
            arrived = quiet.0.load(std::sync::atomic::Ordering::Relaxed);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        release.send(()).unwrap();
        assert_eq!(
            arrived, 3,
            "the quiet thread's spans left while the busy one ran"
        );
    });
    telemetry.shutdown();
}

/// An exporter whose first export blocks its thread for two seconds (as a
/// badly written exporter can): nothing else is exported meanwhile. `done`
/// is set when that export returns.
#[derive(Debug, Default)]
struct StuckExporter {
    stuck_once: std::sync::atomic::AtomicBool,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SpanExporter for StuckExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        if !self
            .stuck_once
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_secs(2));
            self.done.store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }
}

#[test]
fn a_shutdown_out_of_time_counts_the_spans_in_lanes_as_dropped() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let reader = telemark::builder!().without_server().start().unwrap();
    let dropped_before = rendered_counter(&reader, "telemark_spans_dropped_total");
    let exported_before = rendered_counter(&reader, "telemark_spans_exported_total");
    let stuck = StuckExporter::default();
    let stuck_done = std::sync::Arc::clone(&stuck.done);
    let telemetry = start(Traces::exporter(stuck).batch_limits(BatchLimits {
        max_export_batch_size: 10,
        ..BatchLimits::default()
    }));
    // The first ten go out in a batch that sticks; the other 290 wait in
    // this thread's lane (512 slots).
    for x in 0..300 {
        step(x);
    }
    let started = Instant::now();
    telemetry.shutdown_within(Duration::from_millis(500));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_500),
        "shutdown took {took:?}"
    );
    let dropped = rendered_counter(&reader, "telemark_spans_dropped_total") - dropped_before;
    let exported = rendered_counter(&reader, "telemark_spans_exported_total") - exported_before;
    assert_eq!(
        (exported, dropped),
        (0, 300),
        "every span is counted once, as dropped"
    );
    // The stuck export ends later: its spans are not counted again.
    let waited = Instant::now();
    while !stuck_done.load(std::sync::atomic::Ordering::Acquire) {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the stuck export returns"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // What the export thread does after it returns (settling its batch).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rendered_counter(&reader, "telemark_spans_exported_total") - exported_before,
        0
    );
    assert_eq!(
        rendered_counter(&reader, "telemark_spans_dropped_total") - dropped_before,
        300
    );
}
