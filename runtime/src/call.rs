//! One call of an instrumented function: the `static` generated code
//! declares for the function, and the one guard it creates for each call,
//! whatever the function's attributes.
//!
//! The guard drives each subsystem's part in one nesting order, outermost
//! first: the span (`#[traced]`), then the in-flight gauge and duration
//! (`#[timed]`), then the call counter (`#[counted]`), then the call itself
//! (through `#[circuit_breaker]` when present). The span starts first and
//! ends last, so it covers everything the other parts measure.

#![allow(missing_docs)] // hidden API for generated code

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::metrics::site::{Counter, Histogram, MetricsSite};
use crate::site::SiteInfo;
use crate::switch::is_enabled;
use crate::trace::span::{AsyncSpan, Fill, SpanRecord, SpanSlot, SyncSpan, TraceSite};

/// Every function with `#[counted]`, `#[timed]` or `#[traced]` linked into
/// the program: each function's one `Site` is its entry.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static FUNCTION_SITES: [Site];

/// Everything one instrumented function records, in one `static` that is
/// also its entry in `FUNCTION_SITES`.
pub struct Site {
    /// Where the function is, its counter and its histogram (the catalog
    /// entry of `#[counted]` / `#[timed]` functions points here).
    pub metrics: MetricsSite,
    /// Its span, if it is `#[traced]`.
    pub span: Option<TraceSite>,
}

impl Site {
    pub const fn new(
        info: SiteInfo,
        counter: Option<Counter>,
        histogram: Option<Histogram>,
        span: Option<TraceSite>,
    ) -> Self {
        Site {
            metrics: MetricsSite {
                info,
                counter,
                histogram,
            },
            span,
        }
    }
}

/// Never called: `if false { return type_of_return::<T>(); }` at the top of
/// a wrapped body fixes its type to the function's before the body's own
/// `return`s are checked, so they coerce as in the function itself.
#[allow(clippy::empty_loop)]
pub fn type_of_return<T>() -> T {
    loop {}
}

/// Runs a wrapped body once. The closure is inferred `FnOnce`, so it may
/// return borrows of what it captured (`&mut self`).
#[inline(always)]
pub fn call_once<T>(body: impl FnOnce() -> T) -> T {
    body()
}

/// The guard of one call of a synchronous function: records when dropped,
/// so early `return`s, `?` and panics are all recorded.
pub struct Call<'slot> {
    /// Counts the call; taken by [`Call::finish`], else it counts an error.
    counter: Option<&'static Counter>,
    /// The histogram and the start, in clock ticks, of a timed call.
    timing: Option<(&'static Histogram, u64)>,
    span: SyncSpan<'slot>,
}

#[inline(always)]
fn start_timing(site: &'static Site) -> Option<(&'static Histogram, u64)> {
    match &site.metrics.histogram {
        Some(histogram) if is_enabled() => Some((histogram, histogram.begin())),
        _ => None,
    }
}

impl Call<'static> {
    /// A call of a function without a span.
    #[inline(always)]
    pub fn enter(site: &'static Site) -> Self {
        Call {
            counter: site.metrics.counter.as_ref(),
            timing: start_timing(site),
            span: SyncSpan::none(),
        }
    }
}

impl<'slot> Call<'slot> {
    /// A call of a `#[traced]` function; `slot` holds its span if sampled,
    /// `fill` adds `fields(...)` and `args(...)` to a sampled span.
    #[inline(always)]
    pub fn traced(site: &'static Site, slot: &'slot mut SpanSlot, fill: Fill<'_>) -> Self {
        let span = match &site.span {
            Some(span) => SyncSpan::start(span, slot, fill),
            None => SyncSpan::none(),
        };
        Call {
            counter: site.metrics.counter.as_ref(),
            timing: start_timing(site),
            span,
        }
    }

    /// The call returned a value: counts it as an error or not.
    #[inline(always)]
    pub fn finish(&mut self, is_error: bool) {
        if let Some(counter) = self.counter.take() {
            counter.record(is_error);
        }
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline]
    pub fn record(&mut self) -> Option<&mut SpanRecord> {
        self.span.record()
    }
}

impl Drop for Call<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some((histogram, start)) = self.timing {
            histogram.end(start);
        }
        // Not finished: the call panicked.
        if let Some(counter) = self.counter {
            counter.record(true);
        }
        // The span (a field) ends after this, as the outermost part.
    }
}

/// The guard of one call of an asynchronous function. A future dropped
/// before it completes (cancelled) leaves the in-flight gauge, is timed up to
/// the drop, counts as an error and ends its span as cancelled; one dropped
/// before its first poll never started and records nothing but its span.
pub struct AsyncCall {
    site: &'static Site,
    /// The call started (its first poll) and is not counted yet.
    counting: bool,
    /// Start of a timed call, in clock ticks.
    timing: Option<u64>,
    span: AsyncSpan,
    completed: bool,
}

impl AsyncCall {
    /// The span of a call of `site`'s function, started where the call is
    /// made (`fill` adds `fields(...)` and `args(...)` to a sampled span);
    /// counting and timing wait for [`AsyncCall::begin`].
    #[inline(always)]
    pub fn start(site: &'static Site, fill: Fill<'_>) -> Self {
        AsyncCall {
            site,
            counting: false,
            timing: None,
            span: AsyncSpan::start(site.span.as_ref(), fill),
            completed: false,
        }
    }

    /// The call's future is polled for the first time: counting and timing
    /// start.
    #[inline(always)]
    pub fn begin(mut self) -> Self {
        self.counting = self.site.metrics.counter.is_some();
        self.timing = match &self.site.metrics.histogram {
            Some(histogram) if is_enabled() => Some(histogram.begin()),
            _ => None,
        };
        self
    }

    /// A call of an `async fn`, at its first poll: [`start`](Self::start)
    /// and [`begin`](Self::begin) at once.
    #[inline(always)]
    pub fn enter(site: &'static Site, fill: Fill<'_>) -> Self {
        Self::start(site, fill).begin()
    }

    /// Runs `future` with the call's span current on every poll; its output
    /// comes back with the guard, for [`AsyncCall::finish`].
    #[inline]
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F> {
        Instrumented {
            future,
            call: Some(self),
        }
    }

    /// The call returned a value: counts it as an error or not.
    #[inline(always)]
    pub fn finish(&mut self, is_error: bool) {
        if std::mem::take(&mut self.counting) {
            if let Some(counter) = &self.site.metrics.counter {
                counter.record(is_error);
            }
        }
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline]
    pub fn record(&mut self) -> Option<&mut SpanRecord> {
        self.span.record()
    }
}

impl Drop for AsyncCall {
    #[inline]
    fn drop(&mut self) {
        let metrics = &self.site.metrics;
        if let (Some(start), Some(histogram)) = (self.timing, &metrics.histogram) {
            histogram.end(start);
        }
        // Started but not finished: cancelled, or it panicked.
        if let (true, Some(counter)) = (self.counting, &metrics.counter) {
            counter.record(true);
        }
        if self.completed {
            std::mem::replace(&mut self.span, AsyncSpan::start(None, None)).end();
        }
        // Otherwise the span (a field) ends as cancelled after this.
    }
}

pin_project_lite::pin_project! {
    /// A function's future running inside its call's span.
    pub struct Instrumented<F> {
        #[pin]
        future: F,
        call: Option<AsyncCall>,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = (F::Output, AsyncCall);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(call) = this.call.as_ref() else {
            panic!("an instrumented future was polled after it completed");
        };
        let scope = call.span.enter_poll();
        let poll = this.future.poll(cx);
        drop(scope);
        match poll {
            Poll::Ready(output) => {
                let mut call = this.call.take().expect("checked above");
                call.completed = true;
                Poll::Ready((output, call))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
