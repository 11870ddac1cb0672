//! One span per call: telemark's `#[traced]` beside the OpenTelemetry SDK's
//! `in_span`, `#[tracing::instrument]` (without a subscriber and with
//! `tracing-opentelemetry`) and `#[fastrace::trace]` with a reporter, sampled
//! and not, sync and async; and every telemark attribute stacked on one
//! function, on and switched off. Spans are exported in batches to exporters
//! that discard them, measured in the same run against the same
//! uninstrumented function. Sampled spans are timed in chunks of 1,024
//! calls, each chunk's flush (its spans' export) inside the timed region.
//!
//! `cargo bench -p telemark-peers --bench spans`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemark::opentelemetry::trace::{Tracer, TracerProvider};
use telemark::trace::{Root, Sampler};
use telemark::Traces;
use telemark_peers::support::NoopExporter;
use telemark_peers::support::{
    awaited, baseline, baseline_async, dropped_spans, ready, timed_in_chunks,
    timed_in_chunks_under, traced as telemark_traced, traced_async as telemark_traced_async,
    CallError,
};

use tracing_subscriber::layer::SubscriberExt;

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tracing_instrumented(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
async fn tracing_instrumented_async(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[fastrace::trace]
#[inline(never)]
fn fastrace_traced(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

#[fastrace::trace]
#[inline(never)]
async fn fastrace_traced_async(x: u64) -> u64 {
    x.wrapping_mul(31).rotate_left(7)
}

/// Every telemark attribute on one function.
#[telemark::traced]
#[telemark::counted]
#[telemark::timed]
#[telemark::circuit_breaker(name = "peers-stacked")]
#[inline(never)]
fn telemark_stacked(x: u64) -> Result<u64, CallError> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

#[inline(never)]
fn baseline_result(x: u64) -> Result<u64, CallError> {
    Ok(x.wrapping_mul(31).rotate_left(7))
}

/// Discards fastrace's spans, as `NoopExporter` does the others'.
struct NoopReporter;

impl fastrace::collector::Reporter for NoopReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// `timed_in_chunks` for fastrace: each chunk runs under a root span (its
/// one span per chunk is part of the cost), its spans reported after it
/// (`fastrace::flush`), inside the timed region.
fn fastrace_in_chunks(iters: u64, mut call: impl FnMut()) -> Duration {
    use fastrace::prelude::{Span, SpanContext};
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(1024);
        {
            let root = Span::root("chunk", SpanContext::random());
            let _parent = root.set_local_parent();
            for _ in 0..chunk {
                call();
            }
        }
        left -= chunk;
        fastrace::flush();
    }
    start.elapsed()
}

/// A span around a chunk of calls, so theirs are children (as fastrace's
/// are under its per-chunk root).
#[telemark::traced]
fn telemark_chunk(chunk: &mut dyn FnMut()) {
    chunk()
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("peer_spans");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("tracing_instrument_no_subscriber", |b| {
        b.iter(|| tracing_instrumented(black_box(7)))
    });

    group.bench_function("baseline_async", |b| {
        b.iter(|| ready(baseline_async(black_box(7))))
    });
    group.bench_function("baseline_result", |b| {
        b.iter(|| baseline_result(black_box(7)))
    });

    let telemetry = telemark::builder!()
        .without_server()
        .traces(Traces::exporter(NoopExporter).sampler(Sampler::AlwaysOn))
        .start()
        .expect("telemetry");
    let flush = || {
        telemetry.flush_traces(Duration::from_secs(10));
    };
    // Spans dropped while the sampled cases ran (a figure counts only if
    // none was).
    let dropped_before = dropped_spans(&telemetry);
    let chunked = |name: &str, group: &mut criterion::BenchmarkGroup<'_, _>, call: &dyn Fn()| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| timed_in_chunks(iters, call, flush))
        });
    };
    chunked("telemark_traced_sampled", &mut group, &|| {
        black_box(telemark_traced(black_box(7)));
    });
    group.bench_function("telemark_traced_child_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks_under(
                iters,
                telemark_chunk,
                || {
                    black_box(telemark_traced(black_box(7)));
                },
                flush,
            )
        })
    });
    group.bench_function("telemark_traced_async_child_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks_under(
                iters,
                telemark_chunk,
                || {
                    black_box(ready(telemark_traced_async(black_box(7))));
                },
                flush,
            )
        })
    });
    chunked("telemark_traced_async_sampled", &mut group, &|| {
        black_box(ready(telemark_traced_async(black_box(7))));
    });
    chunked("telemark_stacked_sampled", &mut group, &|| {
        let _ = black_box(telemark_stacked(black_box(7)));
    });
    // Switched off, no span is made: no chunks, no flushes (a flush with
    // nothing to export is a round trip to the export thread, about 45 µs
    // here, which chunks of 1,024 calls would add as ~44 ns a call).
    telemark::set_enabled(false);
    group.bench_function("telemark_stacked_switched_off", |b| {
        b.iter(|| black_box(telemark_stacked(black_box(7))))
    });
    telemark::set_enabled(true);
    eprintln!(
        "spans dropped while measuring sampled #[traced]: {}",
        dropped_spans(&telemetry) - dropped_before
    );
    telemetry.shutdown();

    // Unsampled roots: telemark with a parent-based, always-off sampler.
    let unsampled = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .traces(Traces::exporter(NoopExporter).sampler(Sampler::ParentBased(Root::AlwaysOff)))
        .start()
        .expect("telemetry");
    group.bench_function("telemark_traced_not_sampled", |b| {
        b.iter(|| telemark_traced(black_box(7)))
    });
    // Awaited inside a tokio runtime, as services await them (the futures
    // move into the caller's): the unsampled async span beside the same
    // uninstrumented async fn and `#[tracing::instrument]` without a
    // subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    group.bench_function("baseline_async_in_tokio", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, baseline_async))
    });
    group.bench_function("telemark_traced_async_not_sampled_in_tokio", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, telemark_traced_async))
    });
    group.bench_function("tracing_instrument_async_no_subscriber_in_tokio", |b| {
        b.iter_custom(|iters| awaited(&runtime, iters, tracing_instrumented_async))
    });
    drop(runtime);
    unsampled.shutdown();

    fastrace::set_reporter(NoopReporter, fastrace::collector::Config::default());
    group.bench_function("fastrace_trace_sampled", |b| {
        b.iter_custom(|iters| {
            fastrace_in_chunks(iters, || {
                black_box(fastrace_traced(black_box(7)));
            })
        })
    });
    group.bench_function("fastrace_trace_async_sampled", |b| {
        b.iter_custom(|iters| {
            fastrace_in_chunks(iters, || {
                black_box(ready(fastrace_traced_async(black_box(7))));
            })
        })
    });

    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(NoopExporter)
        .build();
    let tracer = provider.tracer("bench");
    let sdk_flush = || {
        let _ = provider.force_flush();
    };
    let off = SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .with_batch_exporter(NoopExporter)
        .build();
    let off_tracer = off.tracer("bench");
    group.bench_function("otel_sdk_in_span_not_sampled", |b| {
        b.iter(|| off_tracer.in_span("in_span", |_| baseline(black_box(7))))
    });
    let _ = off.shutdown();

    group.bench_function("otel_sdk_in_span_sampled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || {
                    black_box(tracer.in_span("in_span", |_| baseline(black_box(7))));
                },
                sdk_flush,
            )
        })
    });

    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("tracing")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tracing_instrument_with_tracing_opentelemetry", |b| {
            b.iter_custom(|iters| {
                timed_in_chunks(
                    iters,
                    || {
                        black_box(tracing_instrumented(black_box(7)));
                    },
                    sdk_flush,
                )
            })
        });
    });
    group.finish();
    let _ = provider.shutdown();
}

/// A span object that does nothing but carry its span context: what any
/// span kept as the current OpenTelemetry `Context` costs at least.
struct BareSpan(telemark::opentelemetry::trace::SpanContext);

impl telemark::opentelemetry::trace::Span for BareSpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        _: T,
        _: std::time::SystemTime,
        _: Vec<telemark::opentelemetry::KeyValue>,
    ) where
        T: Into<std::borrow::Cow<'static, str>>,
    {
    }
    fn span_context(&self) -> &telemark::opentelemetry::trace::SpanContext {
        &self.0
    }
    fn is_recording(&self) -> bool {
        true
    }
    fn set_attribute(&mut self, _: telemark::opentelemetry::KeyValue) {}
    fn set_status(&mut self, _: telemark::opentelemetry::trace::Status) {}
    fn update_name<T>(&mut self, _: T)
    where
        T: Into<std::borrow::Cow<'static, str>>,
    {
    }
    fn add_link(
        &mut self,
        _: telemark::opentelemetry::trace::SpanContext,
        _: Vec<telemark::opentelemetry::KeyValue>,
    ) {
    }
    fn end_with_timestamp(&mut self, _: std::time::SystemTime) {}
}

/// What keeping each call's span the current OpenTelemetry `Context` costs
/// by itself, whoever makes the span: a new span context made current for
/// the call (`Context::current().with_remote_span_context(..).attach()`,
/// one allocation), and a span object made current (`with_span(..)`, the
/// SDK's and telemark's way, so that `Context::current().span()` reaches
/// the span: two allocations). The floor under any sampled span that stays
/// the current `Context`.
fn context_floor(c: &mut Criterion) {
    use telemark::opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use telemark::opentelemetry::Context;
    let mut group = c.benchmark_group("otel_context_floor");
    let mut next = 1u64;
    let mut span_context = move || {
        next = next.wrapping_add(0x9e37_79b9_7f4a_7c15) | 1;
        SpanContext::new(
            TraceId::from(u128::from(next) << 1 | 1),
            SpanId::from(next),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        )
    };
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));
    group.bench_function("span_context_current", |b| {
        b.iter(|| {
            let _current = Context::current()
                .with_remote_span_context(span_context())
                .attach();
            baseline(black_box(7))
        })
    });
    group.bench_function("span_object_current", |b| {
        b.iter(|| {
            let _current = Context::current()
                .with_span(BareSpan(span_context()))
                .attach();
            baseline(black_box(7))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = spans, context_floor
}
criterion_main!(benches);
