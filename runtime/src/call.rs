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

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::active_span::ActiveScope;
use crate::caller::{Caller, CallerScope};
use crate::metrics::site::{Counter, Histogram, MetricsSite};
use crate::metrics::value::{Gauge, ValueHistogram};
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
        value_histogram: Option<&'static ValueHistogram>,
        gauge: Option<&'static Gauge>,
    ) -> Self {
        Site {
            metrics: MetricsSite {
                info,
                counter,
                histogram,
                value_histogram,
                gauge,
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

/// One part of a call's guard, started with the call: the counter, the
/// timer, or [`Off`] for a part the function does not have. Generated code
/// picks the parts, so each combination is its own small type and its drop
/// inlines into the function.
pub trait Part: Sized {
    /// The part of a call of `site`'s function that just started, made by
    /// `caller`.
    fn start(site: &'static Site, caller: Caller) -> Self;
    /// The part before the call starts (a future not polled yet).
    fn not_started() -> Self;
}

/// A part that reports the call's outcome.
pub trait Outcome {
    /// The call returned a value: counts it as an error or not.
    fn finish(&mut self, is_error: bool);
}

/// A part that holds the call's span.
pub trait Spanned {
    /// The sampled span's record, to add the returned value's facts to.
    fn record(&mut self) -> Option<&mut SpanRecord>;
}

/// A part the function does not have.
pub struct Off;

impl Part for Off {
    #[inline(always)]
    fn start(_: &'static Site, _: Caller) -> Self {
        Off
    }

    #[inline(always)]
    fn not_started() -> Self {
        Off
    }
}

impl Outcome for Off {
    #[inline(always)]
    fn finish(&mut self, _: bool) {}
}

impl Spanned for Off {
    #[inline(always)]
    fn record(&mut self) -> Option<&mut SpanRecord> {
        None
    }
}

/// Counts the call: as an error unless `Outcome::finish` classified its
/// value first, so a panic or a cancelled future counts as an error. The
/// caller is who was running when the call started.
pub struct Counting(Option<(&'static Counter, Caller)>);

impl Part for Counting {
    #[inline(always)]
    fn start(site: &'static Site, caller: Caller) -> Self {
        Counting(
            site.metrics
                .counter
                .as_ref()
                .map(|counter| (counter, caller)),
        )
    }

    #[inline(always)]
    fn not_started() -> Self {
        Counting(None)
    }
}

impl Outcome for Counting {
    #[inline(always)]
    fn finish(&mut self, is_error: bool) {
        if let Some((counter, caller)) = self.0.take() {
            counter.record_from(caller, is_error);
        }
    }
}

impl Drop for Counting {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some((counter, caller)) = self.0 {
            counter.record_from(caller, true);
        }
    }
}

/// Times the call and tracks it as in flight, from its start to its drop
/// (if instrumentation was on when it started, so the gauge stays exact).
pub struct Timing(Option<(&'static Histogram, u64)>);

impl Part for Timing {
    #[inline(always)]
    fn start(site: &'static Site, _: Caller) -> Self {
        Timing(match &site.metrics.histogram {
            Some(histogram) if is_enabled() => Some((histogram, histogram.begin())),
            _ => None,
        })
    }

    #[inline(always)]
    fn not_started() -> Self {
        Timing(None)
    }
}

impl Drop for Timing {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some((histogram, start)) = self.0 {
            histogram.end(start);
        }
    }
}

impl Spanned for SyncSpan<'_> {
    #[inline(always)]
    fn record(&mut self) -> Option<&mut SpanRecord> {
        SyncSpan::record(self)
    }
}

/// The guard of one call of a synchronous function: records when dropped,
/// so early `return`s, `?` and panics are all recorded. Its parts drop in
/// field order: the counter, then the timer, then the span.
pub struct Call<C, T, S> {
    counter: C,
    /// Kept for its drop, which ends the timing.
    #[allow(dead_code)]
    timer: T,
    span: S,
    /// Kept for its drop: the function stops being the caller of calls
    /// made on this thread.
    #[allow(dead_code)]
    caller: CallerScope,
}

impl<C: Part, T: Part, S> Call<C, T, S> {
    /// A call of `site`'s function starting: its `span` (already started,
    /// or [`Off`]), then the timer, then the counter; then the function is
    /// the caller of calls made on this thread until the guard drops.
    #[inline(always)]
    pub fn enter(site: &'static Site, span: S) -> Self {
        let (caller, scope) = CallerScope::enter_called(&site.metrics.info);
        let timer = T::start(site, caller);
        let counter = C::start(site, caller);
        Call {
            counter,
            timer,
            span,
            caller: scope,
        }
    }

    /// The call returned a value: counts it as an error or not.
    #[inline(always)]
    pub fn finish(&mut self, is_error: bool)
    where
        C: Outcome,
    {
        self.counter.finish(is_error);
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline(always)]
    pub fn record(&mut self) -> Option<&mut SpanRecord>
    where
        S: Spanned,
    {
        self.span.record()
    }
}

/// A call of a `#[traced]` synchronous function: its span, started first.
/// `slot` holds the span if sampled; `fill` adds `fields(...)` and
/// `args(...)` to a sampled span.
#[inline(always)]
pub fn sync_span<'slot>(
    site: &'static Site,
    slot: Pin<&'slot mut SpanSlot>,
    fill: Fill<'_>,
) -> SyncSpan<'slot> {
    match &site.span {
        Some(span) => SyncSpan::start(span, slot, fill),
        None => SyncSpan::inert(slot),
    }
}

/// The span part of an asynchronous call: an [`AsyncSpan`], or [`Off`] for
/// a function without `#[traced]`.
pub trait FutureSpan: Spanned + Sized {
    /// The span of a call of `site`'s function, started where the call is
    /// made.
    fn start(site: &'static Site, fill: Fill<'_>) -> Self;
    /// Runs `poll`, one poll of the instrumented future, with the span
    /// current.
    fn in_poll<R>(&mut self, poll: impl FnOnce() -> R) -> R;
    /// The future completed: the span ends normally when dropped.
    fn complete(&mut self);
    /// Makes a sampled span active (for exemplars) until the scope drops.
    ///
    /// # Safety
    ///
    /// The scope must be dropped before the span moves or drops, and before
    /// any scope entered before it (keep it in a local of the caller).
    unsafe fn activate(&mut self) -> Option<ActiveScope>;
}

impl FutureSpan for Off {
    #[inline(always)]
    fn start(_: &'static Site, _: Fill<'_>) -> Self {
        Off
    }

    #[inline(always)]
    fn in_poll<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        poll()
    }

    #[inline(always)]
    fn complete(&mut self) {}

    #[inline(always)]
    unsafe fn activate(&mut self) -> Option<ActiveScope> {
        None
    }
}

impl FutureSpan for AsyncSpan {
    #[inline(always)]
    fn start(site: &'static Site, fill: Fill<'_>) -> Self {
        AsyncSpan::start(site.span.as_ref(), fill)
    }

    #[inline(always)]
    fn in_poll<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        AsyncSpan::in_poll(self, poll)
    }

    #[inline(always)]
    fn complete(&mut self) {
        AsyncSpan::complete(self);
    }

    #[inline(always)]
    unsafe fn activate(&mut self) -> Option<ActiveScope> {
        // SAFETY: as this method's own contract.
        unsafe { AsyncSpan::activate(self) }
    }
}

impl Spanned for AsyncSpan {
    #[inline(always)]
    fn record(&mut self) -> Option<&mut SpanRecord> {
        AsyncSpan::record(self)
    }
}

/// The guard of one call of an asynchronous function. A future dropped
/// before it completes (cancelled) leaves the in-flight gauge, is timed up to
/// the drop, counts as an error and ends its span as cancelled; one dropped
/// before its first poll never started and records nothing but its span.
/// It drops the counter, then the timer, with its span active (so they
/// keep the call as their exemplar, if sampled), then the span.
pub struct AsyncCall<C, T, S: FutureSpan> {
    counter: ManuallyDrop<C>,
    /// Kept for its drop, which ends the timing.
    timer: ManuallyDrop<T>,
    span: S,
    /// The function, current on this thread during each poll (kept only
    /// for caller labels: without them the guard stays as small as before).
    #[cfg(feature = "caller-labels")]
    info: &'static SiteInfo,
}

impl<C: Part, T: Part, S: FutureSpan> AsyncCall<C, T, S> {
    /// A call of `site`'s function, made now: its span starts (`fill` adds
    /// `fields(...)` and `args(...)` to a sampled span); counting and
    /// timing wait for [`AsyncCall::begin`].
    #[inline(always)]
    pub fn start(site: &'static Site, fill: Fill<'_>) -> Self {
        AsyncCall {
            counter: ManuallyDrop::new(C::not_started()),
            timer: ManuallyDrop::new(T::not_started()),
            span: S::start(site, fill),
            #[cfg(feature = "caller-labels")]
            info: &site.metrics.info,
        }
    }

    /// The call's future (of `site`'s function) is polled for the first
    /// time: counting and timing start.
    #[inline(always)]
    pub fn begin(mut self, site: &'static Site) -> Self {
        let caller = Caller::now();
        *self.timer = T::start(site, caller);
        *self.counter = C::start(site, caller);
        self
    }

    /// A call of an `async fn`, at its first poll: its span, timing and
    /// counting start.
    #[inline(always)]
    pub fn enter(site: &'static Site, fill: Fill<'_>) -> Self {
        let span = S::start(site, fill);
        let caller = Caller::now();
        let timer = T::start(site, caller);
        AsyncCall {
            counter: ManuallyDrop::new(C::start(site, caller)),
            timer: ManuallyDrop::new(timer),
            span,
            #[cfg(feature = "caller-labels")]
            info: &site.metrics.info,
        }
    }

    /// Runs `future` with the call's span current on every poll; its output
    /// comes back with the guard, for [`AsyncCall::finish`].
    #[inline]
    pub fn instrument<F: Future>(self, future: F) -> Instrumented<F, C, T, S> {
        Instrumented {
            future,
            call: Some(self),
        }
    }

    /// The call returned a value: counts it as an error or not.
    #[inline(always)]
    pub fn finish(&mut self, is_error: bool)
    where
        C: Outcome,
    {
        // SAFETY: a local, dropped before `self` can move.
        let _active = unsafe { self.span.activate() };
        self.counter.finish(is_error);
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline(always)]
    pub fn record(&mut self) -> Option<&mut SpanRecord> {
        self.span.record()
    }
}

impl<C, T, S: FutureSpan> Drop for AsyncCall<C, T, S> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: a local, dropped before the span drops with the fields.
        let _active = unsafe { self.span.activate() };
        // SAFETY: both are dropped here only, and never used afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.counter);
            ManuallyDrop::drop(&mut self.timer);
        }
    }
}

pin_project_lite::pin_project! {
    /// A function's future running inside its call's span.
    pub struct Instrumented<F, C, T, S: FutureSpan> {
        #[pin]
        future: F,
        call: Option<AsyncCall<C, T, S>>,
    }
}

impl<F: Future, C, T, S: FutureSpan> Future for Instrumented<F, C, T, S> {
    type Output = (F::Output, AsyncCall<C, T, S>);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(call) = this.call.as_mut() else {
            panic!("an instrumented future was polled after it completed");
        };
        let future = this.future;
        #[cfg(feature = "caller-labels")]
        let info = call.info;
        let poll = call.span.in_poll(|| {
            #[cfg(feature = "caller-labels")]
            let _current = CallerScope::enter(info);
            future.poll(cx)
        });
        match poll {
            Poll::Ready(output) => {
                let mut call = this.call.take().expect("checked above");
                call.span.complete();
                Poll::Ready((output, call))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// The body of an untraced asynchronous function: the function is the
    /// caller of the calls made on each of its polls.
    pub struct CallerScoped<F> {
        #[pin]
        future: F,
        info: &'static SiteInfo,
    }
}

impl<F: Future> CallerScoped<F> {
    #[inline(always)]
    pub fn new(info: &'static SiteInfo, future: F) -> Self {
        CallerScoped { future, info }
    }
}

impl<F: Future> Future for CallerScoped<F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = CallerScope::enter(this.info);
        this.future.poll(cx)
    }
}

/// A call's guard, for the statements generated after its body returned.
pub trait HoldsSpan {
    /// The sampled span's record, if any.
    fn span_record(&mut self) -> Option<&mut SpanRecord>;
    /// Runs `f` with the call's span current, as during the call.
    fn with_span_current<R>(&mut self, f: impl FnOnce() -> R) -> R;
}

impl<C, T, S: Spanned> HoldsSpan for Call<C, T, S> {
    #[inline(always)]
    fn span_record(&mut self) -> Option<&mut SpanRecord> {
        self.span.record()
    }

    /// A synchronous call's span is current until its guard drops.
    #[inline(always)]
    fn with_span_current<R>(&mut self, f: impl FnOnce() -> R) -> R {
        f()
    }
}

impl<C, T, S: FutureSpan> HoldsSpan for AsyncCall<C, T, S> {
    #[inline(always)]
    fn span_record(&mut self) -> Option<&mut SpanRecord> {
        self.span.record()
    }

    /// After its last poll, the span is made current again, as in a poll.
    #[inline]
    fn with_span_current<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.span.in_poll(f)
    }
}

/// Adds what `text` makes of the returned value to a sampled span with
/// `add`: the text is made first, with the record not borrowed, since it
/// runs the user's `Display` or `Debug` (which may add to the span itself).
#[inline]
fn add_to_span<G: HoldsSpan>(
    call: &mut G,
    text: impl FnOnce() -> String,
    add: impl FnOnce(&mut SpanRecord, String),
) {
    if call.span_record().is_none() {
        return;
    }
    let text = call.with_span_current(text);
    if let Some(record) = call.span_record() {
        add(record, text);
    }
}

/// `err`: an `Err` marks the sampled span as failed, with its `Display`
/// text.
pub fn span_error_display<G: HoldsSpan, T, E: fmt::Display>(call: &mut G, value: &Result<T, E>) {
    if let Err(error) = value {
        add_to_span(
            call,
            || error.to_string(),
            |record, message| record.error(std::any::type_name::<E>(), message),
        );
    }
}

/// `err = debug`: as `err`, with the `Debug` text.
pub fn span_error_debug<G: HoldsSpan, T, E: fmt::Debug>(call: &mut G, value: &Result<T, E>) {
    if let Err(error) = value {
        add_to_span(
            call,
            || format!("{error:?}"),
            |record, message| record.error(std::any::type_name::<E>(), message),
        );
    }
}

/// `ret = display`: the returned value's `Display` text as `return.value`.
pub fn span_return_display<G: HoldsSpan, T: fmt::Display + ?Sized>(call: &mut G, value: &T) {
    add_to_span(
        call,
        || value.to_string(),
        |record, text| record.attribute("return.value", text),
    );
}

/// `ret` / `ret = debug`: the returned value's `Debug` text as
/// `return.value`.
pub fn span_return_debug<G: HoldsSpan, T: fmt::Debug + ?Sized>(call: &mut G, value: &T) {
    add_to_span(
        call,
        || format!("{value:?}"),
        |record, text| record.attribute("return.value", text),
    );
}
