//! Spans at a sustained rate into a real collector: the calling thread's
//! latency per call (p50, p99, p999, max), every span counted as exported
//! or dropped, and the process's peak resident memory.
//!
//! ```sh
//! sustained <telemark|sdk> <spans per second> <seconds> <OTLP gRPC endpoint>
//! ```
//!
//! `telemark` is a `#[traced]` function with telemark's OTLP export;
//! `sdk` is the OpenTelemetry SDK's `in_span` with its batch span processor
//! and the `opentelemetry-otlp` exporter, both with their default queue and
//! batch settings and every span sampled. Calls are paced by a spin on the
//! clock (no system call), each timed with the TSC. `peers/sustained.sh`
//! runs it against rotel at several rates.

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer, TracerProvider};
use telemark::opentelemetry;
use telemark::trace::{Otlp, Sampler, Traces};
use telemark_peers::counter;

#[telemark::traced]
#[inline(never)]
fn work(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn work_untraced(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

/// Call latencies in nanoseconds: 10 ns buckets up to 100 µs, the rest kept.
struct Latencies {
    buckets: Vec<u64>,
    slow: Vec<u64>,
    calls: u64,
}

const BUCKET_NANOS: u64 = 10;
const BUCKETS: usize = 10_000;

impl Latencies {
    fn new() -> Self {
        Latencies {
            buckets: vec![0; BUCKETS],
            slow: Vec::new(),
            calls: 0,
        }
    }

    fn record(&mut self, nanos: u64) {
        self.calls += 1;
        match self.buckets.get_mut((nanos / BUCKET_NANOS) as usize) {
            Some(count) => *count += 1,
            None => self.slow.push(nanos),
        }
    }

    /// The latency under which `quantile` of the calls fell (a bucket's
    /// upper bound).
    fn quantile(&mut self, quantile: f64) -> u64 {
        let wanted = ((self.calls as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return (index as u64 + 1) * BUCKET_NANOS;
            }
        }
        self.slow.sort_unstable();
        let index = (wanted - seen).saturating_sub(1) as usize;
        self.slow.get(index).copied().unwrap_or(0)
    }

    fn max(&self) -> u64 {
        self.slow.iter().copied().max().unwrap_or_else(|| {
            let last = self.buckets.iter().rposition(|count| *count > 0);
            last.map_or(0, |index| (index as u64 + 1) * BUCKET_NANOS)
        })
    }
}

/// `VmHWM` (peak resident memory) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `call` `rate` times a second for `seconds`, timing each.
fn paced(rate: f64, seconds: f64, mut call: impl FnMut(u64)) -> Latencies {
    let clock = quanta::Clock::new();
    let mut latencies = Latencies::new();
    let calls = (rate * seconds) as u64;
    let started = Instant::now();
    for i in 0..calls {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let before = clock.raw();
        call(i);
        let after = clock.raw();
        latencies.record(clock.delta_as_nanos(before, after));
    }
    let behind = started.elapsed().as_secs_f64() - seconds;
    if behind > 0.05 {
        eprintln!("warning: the calls ran {behind:.2} s behind the rate");
    }
    latencies
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which, rate, seconds, endpoint] = &args[..] else {
        eprintln!(
            "usage: sustained <telemark|sdk> <spans per second> <seconds> <OTLP gRPC endpoint>"
        );
        std::process::exit(2);
    };
    let rate: f64 = rate.parse().expect("a rate");
    let seconds: f64 = seconds.parse().expect("seconds");
    let (mut latencies, exported) = match which.as_str() {
        "telemark" => {
            let telemetry = telemark::builder!()
                .without_server()
                .metrics_recorder(false)
                .traces(Traces::otlp_with(Otlp::grpc(endpoint.clone())).sampler(Sampler::AlwaysOn))
                .start()
                .expect("telemetry");
            let latencies = paced(rate, seconds, |i| {
                black_box(work(black_box(i)));
            });
            telemetry.flush_traces(Duration::from_secs(30));
            let text = telemetry.render_metrics();
            telemetry.shutdown();
            (latencies, counter(&text, "telemark_spans_exported_total"))
        }
        "sdk" => {
            let (runtime, provider, exported) = telemark_peers::sdk::otlp_provider(endpoint);
            let tracer = provider.tracer("sustained");
            let latencies = paced(rate, seconds, |i| {
                black_box(tracer.in_span("work", |_| work_untraced(black_box(i))));
            });
            let _ = provider.force_flush();
            let _ = provider.shutdown();
            drop(runtime);
            (latencies, exported.load(Ordering::Relaxed))
        }
        other => {
            eprintln!("unknown case {other}: telemark or sdk");
            std::process::exit(2);
        }
    };
    let calls = latencies.calls;
    println!(
        "{which} rate {rate} calls {calls} exported {exported} dropped {} p50_ns {} p99_ns {} p999_ns {} max_ns {} peak_rss_kib {}",
        calls.saturating_sub(exported),
        latencies.quantile(0.50),
        latencies.quantile(0.99),
        latencies.quantile(0.999),
        latencies.max(),
        peak_rss_kib(),
    );
}
