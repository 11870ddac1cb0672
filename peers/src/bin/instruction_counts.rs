//! Instruction counts per call, a noise-free second view beside criterion.
//!
//! Runs one case `N` times; run it under callgrind for every case and for
//! `baseline`, and the difference of total instructions divided by `N` is the
//! case's instructions per call (start-up is identical and cancels out):
//!
//! ```sh
//! cargo build --release -p telemark-peers --bin instruction_counts
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/instruction_counts traced_not_sampled 100000
//! ```
//!
//! `peers/instruction_counts.sh` does this for every case.

use std::hint::black_box;

use telemark::opentelemetry_sdk::error::OTelSdkResult;
use telemark::opentelemetry_sdk::trace::{SpanData, SpanExporter};
use telemark::trace::{Root, Sampler};
use telemark::Traces;

/// Spans that reached the exporter.
static EXPORTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts the spans it is given and drops them.
#[derive(Debug)]
struct CountingExporter;

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        EXPORTED.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[inline(never)]
fn baseline(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::counted]
#[inline(never)]
fn counted(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::timed]
#[inline(never)]
fn timed(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[telemark::traced]
#[inline(never)]
fn traced(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

/// A caller's error type: small, and able to carry a breaker's refusal.
struct Refused;

impl From<telemark::BreakerError> for Refused {
    fn from(_: telemark::BreakerError) -> Self {
        Refused
    }
}

#[telemark::circuit_breaker(name = "instructions")]
#[inline(always)]
fn breaker_closed(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[inline(never)]
fn breaker(x: u64) -> u64 {
    breaker_closed(x).unwrap_or(0)
}

#[telemark::circuit_breaker(name = "instructions-window", failure_rate = 50, window = 100)]
#[inline(always)]
fn breaker_window(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[inline(never)]
fn windowed(x: u64) -> u64 {
    breaker_window(x).unwrap_or(0)
}

#[telemark::traced]
#[telemark::counted]
#[telemark::timed]
#[telemark::circuit_breaker(name = "instructions-stacked")]
#[inline(always)]
fn stacked_result(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[inline(never)]
fn stacked(x: u64) -> u64 {
    stacked_result(x).unwrap_or(0)
}

// Peers, for the cheap cases.

#[inline(never)]
fn cached(x: u64) -> u64 {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER
        .get_or_init(|| metrics::counter!("instructions_total"))
        .increment(1);
    x.wrapping_mul(31).rotate_left(7)
}

#[derive(Default, Debug)]
struct Work {
    metrics: WorkMetrics,
}

#[metered::metered(registry = WorkMetrics)]
impl Work {
    #[measure(metered::HitCount)]
    #[inline(always)]
    fn hit(&self, x: u64) -> u64 {
        x.wrapping_mul(31).rotate_left(7)
    }
}

#[inline(never)]
fn metered(x: u64) -> u64 {
    static WORK: std::sync::OnceLock<Work> = std::sync::OnceLock::new();
    WORK.get_or_init(Work::default).hit(x)
}

#[inline(never)]
fn recloser(x: u64) -> u64 {
    static BREAKER: std::sync::OnceLock<::recloser::Recloser> = std::sync::OnceLock::new();
    BREAKER
        .get_or_init(::recloser::Recloser::default)
        .call(|| Ok::<u64, Refused>(x.wrapping_mul(31).rotate_left(7)))
        .unwrap_or(0)
}

#[inline(never)]
async fn baseline_async(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::circuit_breaker(name = "instructions-async")]
#[inline(never)]
async fn breaker_async(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::circuit_breaker(name = "instructions-async-timeout", timeout = "1s")]
#[inline(never)]
async fn breaker_timeout_async(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[telemark::traced]
#[inline(never)]
async fn traced_async(x: u64) -> Result<u64, Refused> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[fastrace::trace]
#[inline(never)]
fn fastrace_traced(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

/// A traced root around a chunk of calls, so that theirs are children.
#[telemark::traced]
#[inline(never)]
fn traced_chunk(from: u64, to: u64) -> u64 {
    (from..to).fold(0u64, |sum, i| sum.wrapping_add(traced(black_box(i))))
}

/// Spans fastrace reported, counted and discarded.
static REPORTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        REPORTED.fetch_add(spans.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `iterations` calls, each a span that is the child of a root span made
/// per `chunk` calls (fastrace records spans only under a root), by
/// telemark (`traced_child_sampled`) or by fastrace with a reporter that
/// counts and discards them (`fastrace_sampled`); each chunk's spans are
/// flushed after it, as telemark's other cases are every FLUSH_EVERY calls.
/// Prints the children exported (the roots left out).
fn chunked_children(case: &str, telemetry: &telemark::Telemetry, iterations: u64, chunk: u64) {
    use fastrace::prelude::{Span, SpanContext};
    let mut sum = 0u64;
    let mut roots = 0u64;
    let mut from = 0;
    while from < iterations {
        let to = (from + chunk).min(iterations);
        if case == "fastrace_sampled" {
            {
                let root = Span::root("chunk", SpanContext::random());
                let _parent = root.set_local_parent();
                for i in from..to {
                    sum = sum.wrapping_add(fastrace_traced(black_box(i)));
                }
            }
            fastrace::flush();
        } else {
            sum = sum.wrapping_add(traced_chunk(from, to));
            telemetry.flush_traces(std::time::Duration::from_secs(60));
        }
        roots += 1;
        from = to;
    }
    black_box(sum);
    telemetry.flush_traces(std::time::Duration::from_secs(60));
    let exported = if case == "fastrace_sampled" {
        REPORTED.load(std::sync::atomic::Ordering::Relaxed)
    } else if std::env::var_os("OTLP_ENDPOINT").is_some() {
        telemark_peers::counter(&telemetry.render_metrics(), "telemark_spans_exported_total")
    } else {
        EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
    };
    eprintln!("spans exported {}", exported.saturating_sub(roots));
}

/// `iterations` calls in a span of the OpenTelemetry SDK exporting over
/// OTLP/gRPC to `endpoint`, flushed every FLUSH_EVERY calls as telemark's
/// cases are.
fn sdk_sampled(endpoint: &str, iterations: u64) {
    use telemark::opentelemetry::trace::{Tracer, TracerProvider};
    let (runtime, provider, exported) = telemark_peers::sdk::otlp_provider(endpoint);
    let tracer = provider.tracer("instruction_counts");
    let flush_every: u64 = std::env::var("FLUSH_EVERY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut sum = 0u64;
    for i in 0..iterations {
        sum = sum.wrapping_add(tracer.in_span("work", |_| baseline(black_box(i))));
        if flush_every > 0 && (i + 1) % flush_every == 0 {
            let _ = provider.force_flush();
        }
    }
    black_box(sum);
    let _ = provider.force_flush();
    eprintln!(
        "spans exported {}",
        exported.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = provider.shutdown();
    drop(runtime);
}

/// `iterations` calls of an `async fn`, each awaited inside a tokio
/// current-thread runtime (with timers, as services have). Not inlined:
/// callgrind counts inside it only (`--toggle-collect`), leaving out
/// start-up, whose clock calibration varies from run to run.
#[inline(never)]
fn awaited<F: std::future::Future<Output = Result<u64, Refused>>>(
    iterations: u64,
    call: impl Fn(u64) -> F,
) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut sum = 0u64;
        for i in 0..iterations {
            sum = sum.wrapping_add(call(black_box(i)).await.unwrap_or(0));
        }
        sum
    })
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tracing(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

const CASES: &[&str] = &[
    "baseline",
    "counted",
    "counted_switched_off",
    "timed",
    "timed_switched_off",
    "traced_sampled",
    "traced_not_sampled",
    "traced_switched_off",
    "breaker",
    "breaker_switched_off",
    "windowed",
    "stacked",
    "stacked_switched_off",
    "cached_metrics_counter",
    "metered_hit_count",
    "recloser_closed",
    "tracing_no_subscriber",
    // Awaited in a tokio runtime; counted over the whole process against
    // baseline_async (instruction_counts.sh --whole-process).
    "baseline_async",
    "breaker_async",
    "breaker_timeout_async",
    "traced_async_not_sampled",
    // The OpenTelemetry SDK's in_span with its batch processor and
    // opentelemetry-otlp, exporting to OTLP_ENDPOINT (whole process).
    "sdk_sampled",
    // Each call a child of a root made per FLUSH_EVERY calls (256 if
    // unset): telemark's, and fastrace's with a counting reporter.
    "traced_child_sampled",
    "fastrace_sampled",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    let iterations: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    if !CASES.contains(&case.as_str()) {
        eprintln!(
            "usage: instruction_counts <{}> [iterations]",
            CASES.join("|")
        );
        std::process::exit(2);
    }
    // Every case starts the same telemetry, so start-up costs cancel out.
    let sampler = if case == "traced_not_sampled" || case == "traced_async_not_sampled" {
        Sampler::ParentBased(Root::AlwaysOff)
    } else {
        Sampler::AlwaysOn
    };
    // With OTLP_ENDPOINT, spans are exported over OTLP/gRPC to a collector
    // there (as users export them); else handed to a counting exporter.
    let endpoint = std::env::var("OTLP_ENDPOINT").ok();
    let traces = match &endpoint {
        Some(endpoint) => Traces::otlp_grpc(endpoint.clone()),
        None => Traces::exporter(CountingExporter),
    };
    let telemetry = telemark::builder!()
        .without_server()
        .traces(traces.sampler(sampler))
        .start()
        .expect("telemetry");
    if case == "sdk_sampled" {
        let endpoint = endpoint.expect("sdk_sampled exports to OTLP_ENDPOINT");
        sdk_sampled(&endpoint, iterations);
        telemetry.shutdown();
        return;
    }
    if case == "traced_child_sampled" || case == "fastrace_sampled" {
        if case == "fastrace_sampled" {
            fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
        }
        let chunk = std::env::var("FLUSH_EVERY")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256);
        chunked_children(&case, &telemetry, iterations, chunk);
        telemetry.shutdown();
        return;
    }
    if case.ends_with("switched_off") {
        telemark::set_enabled(false);
    }
    let asynchronous = match case.as_str() {
        "baseline_async" => Some(awaited(iterations, baseline_async)),
        "breaker_async" => Some(awaited(iterations, breaker_async)),
        "breaker_timeout_async" => Some(awaited(iterations, breaker_timeout_async)),
        "traced_async_not_sampled" => Some(awaited(iterations, traced_async)),
        _ => None,
    };
    if let Some(sum) = asynchronous {
        black_box(sum);
        telemetry.shutdown();
        return;
    }
    let call: fn(u64) -> u64 = match case.as_str() {
        "baseline" => baseline,
        "counted" | "counted_switched_off" => counted,
        "timed" | "timed_switched_off" => timed,
        "breaker" | "breaker_switched_off" => breaker,
        "windowed" => windowed,
        "stacked" | "stacked_switched_off" => stacked,
        "cached_metrics_counter" => cached,
        "metered_hit_count" => metered,
        "recloser_closed" => recloser,
        "tracing_no_subscriber" => tracing,
        _ => traced,
    };
    // For whole-process counts: a flush every this many calls, so that the
    // export thread keeps up (under valgrind threads take turns) and every
    // span's export is counted.
    let flush_every: u64 = std::env::var("FLUSH_EVERY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // For system-call counts: calls paced at this many per second (a spin
    // on the clock, which makes no system call), as a service at a steady
    // rate rather than a loop outrunning the exporter.
    let rate: Option<f64> = std::env::var("RATE").ok().and_then(|n| n.parse().ok());
    let started = std::time::Instant::now();
    let mut sum = 0u64;
    for i in 0..iterations {
        if let Some(rate) = rate {
            let due = started + std::time::Duration::from_secs_f64(i as f64 / rate);
            while std::time::Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        sum = sum.wrapping_add(call(black_box(i)));
        if flush_every > 0 && (i + 1) % flush_every == 0 {
            telemetry.flush_traces(std::time::Duration::from_secs(60));
        }
    }
    black_box(sum);
    telemark::set_enabled(true);
    // What the export thread did with the spans (whole-process counts
    // include its work: see peers/instruction_counts.sh --whole-process).
    telemetry.flush_traces(std::time::Duration::from_secs(60));
    let exported = match endpoint {
        Some(_) => {
            telemark_peers::counter(&telemetry.render_metrics(), "telemark_spans_exported_total")
        }
        None => EXPORTED.load(std::sync::atomic::Ordering::Relaxed),
    };
    eprintln!("spans exported {exported}");
    if rate.is_some() {
        eprintln!("calls took {:?}", started.elapsed());
    }
    telemetry.shutdown();
}
