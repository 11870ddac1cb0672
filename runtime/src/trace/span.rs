//! The span hot path: sampling, ids, the span record and the guards that
//! generated code creates. Static facts of a call site (name, kind, code
//! location) stay in the call site's `static` and are only read at export.

#![allow(missing_docs)] // hidden API for generated code

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, ContextGuard, KeyValue, Value};

use super::current::RecordingSpan;
use super::pipeline;
use super::sampler::Roots;
use super::updates::{may_wait_for, take_pending_updates, Update};
use crate::active_span::{self, ActiveScope, SpanIds};
use crate::clock::clock;
use crate::rng::{nonzero_random_u64, random_u64};
use crate::site::SiteInfo;
use crate::switch::is_enabled;

/// `SpanKind` as stored in a call site's `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// The static facts of one `#[traced]` call site.
#[derive(Debug)]
pub struct TraceSite {
    /// Span name.
    pub name: &'static str,
    pub kind: Kind,
    /// The function (`function` as the metrics name it, module, file, line).
    pub info: &'static SiteInfo,
}

impl TraceSite {
    /// `Some(TraceSite { .. })`, shorter in generated code.
    pub const fn some(name: &'static str, kind: Kind, info: &'static SiteInfo) -> Option<Self> {
        Some(TraceSite { name, kind, info })
    }
}

/// An event recorded on a span.
pub(crate) struct RecordedEvent {
    pub name: Cow<'static, str>,
    pub time: EventTime,
    pub attributes: Vec<KeyValue>,
}

/// When an event happened: clock ticks (telemark's own events), or a
/// wall-clock time given through the OpenTelemetry API.
pub(crate) enum EventTime {
    Ticks(u64),
    Wall(std::time::SystemTime),
}

/// Most attributes, events and links user code adds to one span (the
/// OpenTelemetry SDK's defaults); more are counted as dropped.
pub(crate) const MAX_ADDED_PER_SPAN: usize = 128;

/// A sampled span while it runs, then on its way to the exporter. Kept
/// small (ids, ticks, call site): it is written where it lives while its
/// call runs and copied once, into its thread's lane or the shared queue;
/// what most spans lack lives behind `extra`.
///
/// `ids` comes first (`repr(C)`): the active-span pointer points at it with
/// the provenance of the whole record.
#[repr(C)]
pub struct SpanRecord {
    /// Its trace id and span id (what metrics link to while it is active).
    pub(crate) ids: SpanIds,
    pub(crate) site: &'static TraceSite,
    pub(crate) parent_span_id: u64,
    pub(crate) start_ticks: u64,
    pub(crate) end_ticks: u64,
    pub(crate) parent_is_remote: bool,
    pub(crate) extra: Option<Box<SpanExtra>>,
}

/// The parts of a span that only some spans have.
#[derive(Default)]
pub(crate) struct SpanExtra {
    pub trace_state: TraceState,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<RecordedEvent>,
    pub links: Vec<opentelemetry::trace::Link>,
    /// The error the call ended with (`err`, a panic).
    pub outcome: Option<String>,
    /// The status user code set.
    pub status: Option<opentelemetry::trace::Status>,
    /// The name user code gave the span.
    pub name: Option<Cow<'static, str>>,
    /// Attributes and events user code added (telemark's own do not count
    /// against the limit).
    pub added_attributes: u32,
    pub added_events: u32,
    pub dropped_attributes: u32,
    pub dropped_events: u32,
    pub dropped_links: u32,
}

/// A span's status as exported.
pub(crate) enum FinalStatus<'a> {
    Unset,
    Ok,
    Error(&'a str),
}

impl SpanExtra {
    /// The status to export: `Ok` set by user code is final; else the
    /// call's error (returned `Err`, panic); else the status user code set.
    pub(crate) fn final_status(&self) -> FinalStatus<'_> {
        use opentelemetry::trace::Status;
        match (&self.status, &self.outcome) {
            (Some(Status::Ok), _) => FinalStatus::Ok,
            (_, Some(description)) => FinalStatus::Error(description),
            (Some(Status::Error { description }), None) => FinalStatus::Error(description),
            (Some(Status::Unset) | None, None) => FinalStatus::Unset,
        }
    }
}

impl SpanRecord {
    /// Makes the span at `this` the active one until the scope drops.
    ///
    /// # Safety
    ///
    /// The record must stay in place until the scope drops and be accessed
    /// only through the active pointer meanwhile (see [`with_active_record`]),
    /// and the scope must be dropped before any scope entered before it.
    #[inline]
    unsafe fn activate(this: *mut SpanRecord) -> ActiveScope {
        active_span::enter(this.cast::<SpanIds>())
    }

    fn extra(&mut self) -> &mut SpanExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Adds what user code (or a breaker) added to the span, within
    /// [`MAX_ADDED_PER_SPAN`] per kind.
    pub(crate) fn apply(&mut self, update: Update) {
        use opentelemetry::trace::Status;
        fn bounded<T>(items: &mut Vec<T>, item: T, added: &mut u32, dropped: &mut u32) {
            if (*added as usize) < MAX_ADDED_PER_SPAN {
                items.push(item);
                *added += 1;
            } else {
                *dropped = dropped.saturating_add(1);
            }
        }
        let extra = self.extra();
        match update {
            Update::Attribute(attribute) => bounded(
                &mut extra.attributes,
                attribute,
                &mut extra.added_attributes,
                &mut extra.dropped_attributes,
            ),
            Update::Event(event) => bounded(
                &mut extra.events,
                event,
                &mut extra.added_events,
                &mut extra.dropped_events,
            ),
            Update::Link(link) => {
                let mut added = extra.links.len() as u32;
                bounded(&mut extra.links, link, &mut added, &mut extra.dropped_links)
            }
            Update::Status(status) => {
                // `Ok` is final; `Unset` changes nothing.
                if extra.status != Some(Status::Ok) && status != Status::Unset {
                    extra.status = Some(status);
                }
            }
            Update::Name(name) => extra.name = Some(name),
        }
    }

    /// Sets the span's status (as user code would: `Ok` is final).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn set_status(&mut self, status: opentelemetry::trace::Status) {
        self.apply(Update::Status(status));
    }

    /// Names the span (instead of its call site's name).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn rename(&mut self, name: impl Into<Cow<'static, str>>) {
        self.extra().name = Some(name.into());
    }

    /// Adds an attribute (from `fields(...)`, `args(...)` or `ret`).
    #[inline]
    pub fn attribute(&mut self, key: &'static str, value: impl IntoAttributeValue) {
        self.extra()
            .attributes
            .push(KeyValue::new(key, value.into_attribute_value()));
    }

    /// Marks the span as failed by an error value: status Error with the
    /// message, an `exception` event and `error.type`.
    pub fn error(&mut self, error_type: &'static str, message: String) {
        let ticks = clock().raw();
        let extra = self.extra();
        extra
            .attributes
            .push(KeyValue::new("error.type", error_type));
        extra.events.push(RecordedEvent {
            name: Cow::Borrowed("exception"),
            time: EventTime::Ticks(ticks),
            attributes: vec![
                KeyValue::new("exception.type", error_type),
                KeyValue::new("exception.message", message.clone()),
            ],
        });
        extra.outcome = Some(message);
    }

    /// Ends a span whose pipeline may have been shut down meanwhile: then
    /// the span is lost, and counted as dropped. The record is taken where
    /// it lies, so that it is copied once, into the pipeline, not on every
    /// call on the way.
    ///
    /// # Safety
    ///
    /// Takes the record: it is handed to the pipeline or dropped here, and
    /// must not be used or dropped after.
    unsafe fn end_or_count(record: &mut ManuallyDrop<SpanRecord>, abnormally: bool) {
        let Some(pipeline) = pipeline::current() else {
            pipeline::SPANS_DROPPED.fetch_add(1, Relaxed);
            // SAFETY: taken by this function, as its contract says.
            unsafe { ManuallyDrop::drop(record) };
            return;
        };
        if abnormally {
            record.ended_abnormally();
        }
        if may_wait_for(record.ids.span_id) {
            take_pending_updates(record);
        }
        record.end_ticks = clock().raw();
        // SAFETY: as this function's own contract.
        unsafe { pipeline.submit(record) };
    }

    /// Records why the span ends abnormally: a panic, or its future
    /// dropped before it completed.
    #[cold]
    fn ended_abnormally(&mut self) {
        if std::thread::panicking() {
            self.error("panic", "the function panicked".to_owned());
        } else {
            self.extra()
                .attributes
                .push(KeyValue::new("telemark.cancelled", true));
        }
    }
}

/// Values `fields(...)` accept: numbers, booleans and strings.
pub trait IntoAttributeValue {
    fn into_attribute_value(self) -> Value;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl IntoAttributeValue for $t {
            #[inline]
            fn into_attribute_value(self) -> Value {
                Value::I64(i64::try_from(self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_values!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, i128, u128);

impl IntoAttributeValue for f32 {
    fn into_attribute_value(self) -> Value {
        Value::F64(f64::from(self))
    }
}
impl IntoAttributeValue for f64 {
    fn into_attribute_value(self) -> Value {
        Value::F64(self)
    }
}
impl IntoAttributeValue for bool {
    fn into_attribute_value(self) -> Value {
        Value::Bool(self)
    }
}
impl IntoAttributeValue for String {
    fn into_attribute_value(self) -> Value {
        Value::from(self)
    }
}
impl IntoAttributeValue for &String {
    fn into_attribute_value(self) -> Value {
        Value::from(self.clone())
    }
}
impl IntoAttributeValue for &str {
    fn into_attribute_value(self) -> Value {
        Value::from(self.to_owned())
    }
}
impl IntoAttributeValue for Cow<'static, str> {
    fn into_attribute_value(self) -> Value {
        Value::from(self)
    }
}
impl IntoAttributeValue for Value {
    fn into_attribute_value(self) -> Value {
        self
    }
}

/// `args(name = display)`: the argument's `Display` text. A type without
/// `Display` fails to compile here, at the argument's name.
#[inline]
pub fn capture_display<T: fmt::Display + ?Sized>(value: &T) -> Value {
    Value::from(value.to_string())
}

/// `args(name = debug)`: the argument's `Debug` text.
#[inline]
pub fn capture_debug<T: fmt::Debug + ?Sized>(value: &T) -> Value {
    Value::from(format!("{value:?}"))
}

thread_local! {
    /// Depth of unsampled root spans running on this thread: their children
    /// are not sampled either, without allocating a context for them.
    /// Every decrement follows its own increment on the same thread (a
    /// sync span's guard, or a poll's `UnsampledDepth`, neither of which
    /// leaves the thread), so the arithmetic wraps instead of checking: a
    /// saturating decrement cost the unsampled sync span 6 of its 49
    /// instructions.
    static UNSAMPLED: Cell<u32> = const { Cell::new(0) };
}

/// The decision for a new span.
enum Start {
    /// Instrumentation off, no pipeline, or inside an unsampled root.
    Inert,
    /// A root span the sampler dropped: children must not sample either.
    UnsampledRoot,
    /// Sampled: the span's context; its record was written where
    /// `begin_slow` was told (so that it is not copied on the way there).
    Sampled(Context),
}

/// What `fields(...)` and `args(...)` add to a sampled span, evaluated only
/// when the span is sampled, at most once.
pub type Fill<'a> = Option<&'a mut dyn FillSpan>;

/// Adds a sampled span's attributes at its start (see [`FillOnce`]).
pub trait FillSpan {
    fn fill(&mut self, record: &mut SpanRecord);
}

/// The closure generated for `fields(...)` and `args(...)`: called once, so
/// its expressions may move what they capture.
pub struct FillOnce<F>(Option<F>);

impl<F: FnOnce(&mut SpanRecord)> FillOnce<F> {
    #[inline(always)]
    pub fn new(fill: F) -> Self {
        FillOnce(Some(fill))
    }
}

impl<F: FnOnce(&mut SpanRecord)> FillSpan for FillOnce<F> {
    #[inline]
    fn fill(&mut self, record: &mut SpanRecord) {
        if let Some(fill) = self.0.take() {
            fill(record);
        }
    }
}

/// What a look at a new span decides.
enum Look {
    Inert,
    UnsampledRoot,
    /// From the first look: it may be sampled, `begin_slow` decides (a
    /// fieldless answer keeps the unsampled paths, inlined into every call,
    /// at their fewest instructions; the pipeline is looked up again
    /// there). From `begin_slow`'s look: sampled, its context written.
    Further,
}

/// The first look at a new span, inlined into every call: only a span
/// that may be sampled goes further.
#[inline(always)]
fn begin() -> Look {
    if !is_enabled() {
        return Look::Inert;
    }
    let Some(pipeline) = pipeline::current() else {
        return Look::Inert;
    };
    let roots = pipeline.roots;
    if roots == Roots::NothingSampled {
        return Look::Inert;
    }
    // Roots are decided here, after one small look at the context, unless
    // they are sampled or decided by trace id; spans that may be sampled go
    // on below.
    if !Context::map_current(|cx| cx.has_active_span()) {
        // Inside an unsampled root nothing is sampled, unless code inside it
        // made another span current (then that span decides, as a parent).
        if UNSAMPLED.with(Cell::get) > 0 {
            return Look::Inert;
        }
        if roots == Roots::Unsampled {
            return Look::UnsampledRoot;
        }
    }
    Look::Further
}

/// The context is looked at again here rather than `begin`'s look passed
/// in: passing it cost the unsampled paths, inlined into every call, one
/// instruction more (callgrind: 50 against 49).
#[inline(never)]
fn begin_slow(
    site: &'static TraceSite,
    fill: Fill<'_>,
    record_out: &mut MaybeUninit<SpanRecord>,
) -> Start {
    // The pipeline is looked up again: one installed or shut down since
    // the first look decides with its own sampler.
    let Some(pipeline) = pipeline::current() else {
        return Start::Inert;
    };
    if pipeline.roots == Roots::NothingSampled {
        return Start::Inert;
    }
    // A root (no span in the current context) whose sampler needs a trace
    // id is decided here; its trace id is kept for the span.
    let mut root_trace_id = 0u128;
    if !Context::map_current(|cx| cx.has_active_span()) {
        if pipeline.roots == Roots::Unsampled {
            return Start::UnsampledRoot;
        }
        root_trace_id = new_trace_id();
        if pipeline.roots == Roots::ByTraceId && !pipeline.sampler.decide(None, root_trace_id) {
            return Start::UnsampledRoot;
        }
    }
    // A sampled root, or a span with a parent: one look at the current
    // context decides (for a child) and derives the span's context and
    // record.
    // The span's context is written here by the look below, which returns
    // only the decision (a `Result` holding the context came back through
    // `LocalKey::with` a byte at a time: 25 instructions).
    let mut context = MaybeUninit::<Context>::uninit();
    let decided = Context::map_current(|cx| {
        let parent_span = cx.span();
        let parent = parent_span.span_context();
        let valid = parent.is_valid();
        let trace_id;
        if valid {
            trace_id = u128::from_be_bytes(parent.trace_id().to_bytes());
            if !pipeline.sampler.decide(Some(parent.is_sampled()), trace_id) {
                return Look::Inert;
            }
        } else if root_trace_id != 0 {
            trace_id = root_trace_id;
        } else {
            // An active span with an invalid context: decide as a root.
            let candidate = new_trace_id();
            if !pipeline.sampler.decide(None, candidate) {
                return Look::UnsampledRoot;
            }
            trace_id = candidate;
        }
        let span_id = nonzero_random_u64();
        let record = record_out.write(SpanRecord {
            site,
            ids: SpanIds { trace_id, span_id },
            parent_span_id: 0,
            start_ticks: 0,
            end_ticks: 0,
            parent_is_remote: false,
            extra: None,
        });
        let mut trace_state = TraceState::NONE;
        if valid {
            record.parent_span_id = u64::from_be_bytes(parent.span_id().to_bytes());
            record.parent_is_remote = parent.is_remote();
            if *parent.trace_state() != TraceState::NONE {
                trace_state = parent.trace_state().clone();
                record.extra().trace_state = trace_state.clone();
            }
        }
        let own = SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::SAMPLED,
            false,
            trace_state,
        );
        context.write(cx.with_span(RecordingSpan::new(own)));
        Look::Further
    });
    match decided {
        Look::Inert => return Start::Inert,
        Look::UnsampledRoot => return Start::UnsampledRoot,
        Look::Further => {}
    }
    // SAFETY: written above, on the way to `Further`.
    let context = unsafe { context.assume_init() };
    // SAFETY: written above, on the way to `Further`.
    unsafe { record_out.assume_init_mut() }.start_ticks = clock().raw();
    if let Some(fill) = fill {
        fill_record(fill, record_out);
    }
    Start::Sampled(context)
}

/// Adds `fields(...)` and `args(...)` to a sampled span's written record.
/// Their expressions are the user's: if one panics, the record is dropped
/// as the panic leaves.
#[inline(never)]
fn fill_record(fill: &mut dyn FillSpan, record: &mut MaybeUninit<SpanRecord>) {
    struct DropOnUnwind<'a>(&'a mut MaybeUninit<SpanRecord>);
    impl Drop for DropOnUnwind<'_> {
        fn drop(&mut self) {
            // SAFETY: written before `fill_record` was called, and left
            // unused as the panic leaves `begin`.
            unsafe { self.0.assume_init_drop() }
        }
    }
    let written = DropOnUnwind(record);
    // SAFETY: written before this was called.
    fill.fill(unsafe { written.0.assume_init_mut() });
    std::mem::forget(written);
}

fn new_trace_id() -> u128 {
    (u128::from(nonzero_random_u64()) << 64) | u128::from(random_u64())
}

/// What a call leaving this thread should carry when it is made inside an
/// unsampled root span, with no other span current: the current context
/// (its baggage) with a new span context whose sampled flag is off, so that
/// the next service's parent-based sampler follows the decision instead of
/// starting a trace of its own. `None` anywhere else.
pub(crate) fn unsampled_context() -> Option<Context> {
    if UNSAMPLED.with(Cell::get) == 0
        || !is_enabled()
        || Context::map_current(|cx| cx.has_active_span())
    {
        return None;
    }
    let unsampled = SpanContext::new(
        TraceId::from(new_trace_id()),
        SpanId::from(nonzero_random_u64()),
        TraceFlags::default(),
        false,
        TraceState::NONE,
    );
    Some(Context::current().with_remote_span_context(unsampled))
}

/// Runs `f` on the sampled span active on this thread, if any.
///
/// `f` must not run user code: the record is borrowed for its duration.
#[inline]
pub(crate) fn with_active_record<R>(f: impl FnOnce(&mut SpanRecord) -> R) -> Option<R> {
    let active = active_span::active_pointer();
    if active.is_null() {
        return None;
    }
    // SAFETY: the pointer was set by `SpanRecord::activate` from the whole
    // record, which stays in place and is reached only through this pointer
    // until its scope drops; `f` runs no code that could reach it again.
    Some(f(unsafe { &mut *active.cast::<SpanRecord>() }))
}

/// Stack storage for a synchronous call's span, declared (pinned) by
/// generated code before its guard: only a sampled span writes to it, so the
/// guard stays small and an unrecorded call touches nothing else.
///
/// Pinned, it cannot move while its span is active, and it is not freed
/// before it drops. A span ended by its guard stops being active, has its
/// context detached, then its record leaves; a slot dropped while still
/// filled (its guard leaked) drops its parts in order: the span stops
/// being active, then the record, then the context is detached.
pub struct SpanSlot {
    /// Whether `parts` holds a sampled span (it is cleared before the parts
    /// are taken, so that a panic while they are leaves them, never drops
    /// them twice).
    filled: bool,
    parts: MaybeUninit<SampledSlot>,
    _pinned: PhantomPinned,
}

/// What a sampled span keeps in its slot.
type SampledSlot = (Option<ActiveScope>, SpanRecord, ContextGuard);

impl SpanSlot {
    /// Where the slot's record goes.
    #[inline(always)]
    fn record_place(slot: *mut SpanSlot) -> *mut MaybeUninit<SpanRecord> {
        // SAFETY: a field's place in the slot, not read.
        unsafe { std::ptr::addr_of_mut!((*(*slot).parts.as_mut_ptr()).1).cast() }
    }

    #[allow(clippy::new_without_default)]
    #[inline(always)]
    pub const fn new() -> Self {
        SpanSlot {
            filled: false,
            parts: MaybeUninit::uninit(),
            _pinned: PhantomPinned,
        }
    }
}

/// An empty slot (every call but a sampled one whose guard was leaked)
/// drops with one inline check.
impl Drop for SpanSlot {
    #[inline(always)]
    fn drop(&mut self) {
        if self.filled {
            drop_filled_slot(self);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_filled_slot(slot: &mut SpanSlot) {
    slot.filled = false;
    // SAFETY: it was filled, and is marked empty before its parts drop
    // (in order: the span stops being active, then the record, then the
    // context is detached).
    unsafe { slot.parts.assume_init_drop() };
}

/// The span of a synchronous call: current while the call runs, ended when
/// dropped (as an error if the call panicked).
///
/// While a sampled span runs, its record is reached only through `record`
/// (the active-span pointer); the slot itself only when the span starts and
/// after it stops being active.
pub struct SyncSpan<'slot> {
    slot: *mut SpanSlot,
    /// The sampled span's record in the slot (null: not sampled).
    record: *mut SpanRecord,
    unsampled_root: bool,
    _slot: PhantomData<Pin<&'slot mut SpanSlot>>,
}

impl<'slot> SyncSpan<'slot> {
    /// A span that records nothing.
    #[inline(always)]
    pub(crate) fn inert(slot: Pin<&'slot mut SpanSlot>) -> Self {
        SyncSpan {
            // SAFETY: the slot is never moved out of.
            slot: unsafe { slot.get_unchecked_mut() },
            record: std::ptr::null_mut(),
            unsampled_root: false,
            _slot: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn start(
        site: &'static TraceSite,
        slot: Pin<&'slot mut SpanSlot>,
        fill: Fill<'_>,
    ) -> Self {
        // SAFETY: the slot is never moved out of.
        let slot: *mut SpanSlot = unsafe { slot.get_unchecked_mut() };
        let mut unsampled_root = false;
        let mut record = std::ptr::null_mut();
        let start = match begin() {
            Look::Inert => Start::Inert,
            Look::UnsampledRoot => Start::UnsampledRoot,
            // A sampled span's record is written straight into the slot.
            // SAFETY: the slot is borrowed for 'slot, by this guard only;
            // one given again after its guard was leaked is emptied first
            // (its context detached), so its record's place is free to
            // write.
            Look::Further => {
                if unsafe { (*slot).filled } {
                    drop_filled_slot(unsafe { &mut *slot });
                }
                begin_slow(site, fill, unsafe { &mut *SpanSlot::record_place(slot) })
            }
        };
        match start {
            Start::Inert => {}
            Start::UnsampledRoot => {
                UNSAMPLED.with(|depth| depth.set(depth.get().wrapping_add(1)));
                unsampled_root = true;
            }
            // SAFETY: as above; `begin_slow` wrote the record.
            Start::Sampled(context) => record = unsafe { start_sampled(&mut *slot, context) },
        }
        SyncSpan {
            slot,
            record,
            unsampled_root,
            _slot: PhantomData,
        }
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline]
    pub(crate) fn record(&mut self) -> Option<&mut SpanRecord> {
        // SAFETY: the record the span is active with, reached through the
        // pointer it is active with, for as long as `self` is borrowed.
        (!self.record.is_null()).then(|| unsafe { &mut *self.record })
    }
}

/// Completes the sampled span in the slot, whose record `begin_slow` wrote:
/// attaches its context and makes it active. Returns where its record is.
///
/// # Safety
///
/// The slot is empty but for its written record.
#[inline(never)]
unsafe fn start_sampled(slot: &mut SpanSlot, context: Context) -> *mut SpanRecord {
    debug_assert!(!slot.filled, "a slot holds one span");
    let parts = slot.parts.as_mut_ptr();
    // SAFETY: the other two parts are written, the record is (as this
    // function's contract says), and then the slot is marked filled. The
    // record stays in the caller's pinned slot, which keeps the scope: it
    // is reached only through `record` until `end_dropped` drops the scope
    // (first) and takes the record, or the slot drops, the scope first.
    unsafe {
        std::ptr::addr_of_mut!((*parts).2).write(context.attach());
        let record = std::ptr::addr_of_mut!((*parts).1);
        std::ptr::addr_of_mut!((*parts).0).write(Some(SpanRecord::activate(record)));
        slot.filled = true;
        record
    }
}

impl Drop for SyncSpan<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.unsampled_root {
            UNSAMPLED.with(|depth| depth.set(depth.get().wrapping_sub(1)));
        }
        if !self.record.is_null() {
            // SAFETY: the slot is borrowed for 'slot, by this guard only.
            end_dropped(unsafe { &mut *self.slot });
        }
    }
}

/// Ends the slot's span: it stops being active, its context is detached,
/// and its record goes to the pipeline from where it lies.
#[inline(never)]
fn end_dropped(slot: &mut SpanSlot) {
    if !slot.filled {
        return;
    }
    slot.filled = false;
    let parts = slot.parts.as_mut_ptr();
    // (Were a drop on the way to panic, the parts not yet taken would leak,
    // never drop twice.)
    // SAFETY: the slot was filled and is now marked empty, so each part is
    // taken once, here: the scope and the context guard drop in place (the
    // span stops being active and its context is detached before the
    // record leaves), then the record is taken where it lies
    // (`ManuallyDrop` has its layout).
    unsafe {
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*parts).0));
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*parts).2));
        let record = std::ptr::addr_of_mut!((*parts).1).cast::<ManuallyDrop<SpanRecord>>();
        SpanRecord::end_or_count(&mut *record, std::thread::panicking());
    }
}

/// The span of an asynchronous call, started when the call starts; it
/// becomes current during every poll of the future it instruments.
///
/// Two words: a sampled span's record and context are boxed, so that the
/// futures of unsampled calls (which move, whole, into their callers'
/// futures and through the instrumenting wrappers) stay as small as the
/// function's own.
pub struct AsyncSpan {
    state: AsyncState,
}

enum AsyncState {
    Inert,
    UnsampledRoot,
    /// Taken, and the span ended, only by `AsyncSpan`'s drop (so that an
    /// unsampled span has no drop code beyond one check).
    Sampled(ManuallyDrop<Box<SampledAsync>>),
}

/// A sampled asynchronous call's span while its future runs.
///
/// Its record and context are taken where they lie by `end_async`, the one
/// place the box is freed (so the record is copied once, into the
/// pipeline).
struct SampledAsync {
    record: ManuallyDrop<SpanRecord>,
    context: ManuallyDrop<Context>,
    /// Its future completed: the span ends normally (else as cancelled).
    completed: bool,
}

impl AsyncSpan {
    #[inline(always)]
    pub(crate) fn start(site: Option<&'static TraceSite>, fill: Fill<'_>) -> Self {
        let Some(site) = site else {
            return AsyncSpan {
                state: AsyncState::Inert,
            };
        };
        let state = match begin() {
            Look::Inert => AsyncState::Inert,
            Look::UnsampledRoot => AsyncState::UnsampledRoot,
            Look::Further => begin_async(site, fill),
        };
        AsyncSpan { state }
    }

    /// Its future completed: the span will end normally when dropped.
    #[inline]
    pub(crate) fn complete(&mut self) {
        if let AsyncState::Sampled(sampled) = &mut self.state {
            sampled.completed = true;
        }
    }

    /// Runs `poll`, one poll of the future the span instruments (or any
    /// work done for the call, such as making a request's headers), with the
    /// span current: its OpenTelemetry context attached and it the active
    /// sampled span, or, an unsampled root, the thread marked so that what
    /// it calls is not sampled either. Left when `poll` returns or unwinds.
    #[inline(always)]
    pub(crate) fn in_poll<R>(&mut self, poll: impl FnOnce() -> R) -> R {
        match &mut self.state {
            AsyncState::Inert => poll(),
            AsyncState::UnsampledRoot => {
                let _depth = UnsampledDepth::enter();
                poll()
            }
            AsyncState::Sampled(sampled) => in_sampled_poll(sampled, poll),
        }
    }

    /// Makes the sampled span the one metrics link to (as exemplars) until
    /// the scope is dropped: for the call's counter and timer, which record
    /// after its last poll.
    ///
    /// # Safety
    ///
    /// The scope must be dropped before this span moves or drops, and
    /// before any scope entered before it.
    #[inline]
    pub(crate) unsafe fn activate(&mut self) -> Option<ActiveScope> {
        match &mut self.state {
            // SAFETY: as this function's own contract.
            AsyncState::Sampled(sampled) => {
                Some(unsafe { SpanRecord::activate(&mut *sampled.record) })
            }
            _ => None,
        }
    }

    /// The sampled span's record, to add the returned value's facts to.
    #[inline]
    pub(crate) fn record(&mut self) -> Option<&mut SpanRecord> {
        match &mut self.state {
            AsyncState::Sampled(sampled) => Some(&mut sampled.record),
            _ => None,
        }
    }
}

/// One poll inside a sampled span, out of line: the unsampled paths carry
/// none of its code.
#[inline(never)]
fn in_sampled_poll<R>(sampled: &mut SampledAsync, poll: impl FnOnce() -> R) -> R {
    // SAFETY: the record is boxed (it does not move while the box is
    // borrowed here), and the scope drops before this returns; the poll
    // reaches the span only through the active pointer.
    let _active = unsafe { SpanRecord::activate(&mut *sampled.record) };
    let _attached = Context::clone(&sampled.context).attach();
    poll()
}

/// Inside an unsampled root (one level of it) until dropped: its children
/// are not sampled either.
struct UnsampledDepth;

impl UnsampledDepth {
    #[inline(always)]
    fn enter() -> Self {
        UNSAMPLED.with(|depth| depth.set(depth.get().wrapping_add(1)));
        UnsampledDepth
    }
}

impl Drop for UnsampledDepth {
    #[inline(always)]
    fn drop(&mut self) {
        UNSAMPLED.with(|depth| depth.set(depth.get().wrapping_sub(1)));
    }
}

/// An asynchronous span that may be sampled, decided out of line (the
/// unsampled paths carry none of its code): a sampled span's state is
/// boxed.
#[inline(never)]
fn begin_async(site: &'static TraceSite, fill: Fill<'_>) -> AsyncState {
    let mut record = MaybeUninit::uninit();
    match begin_slow(site, fill, &mut record) {
        Start::Inert => AsyncState::Inert,
        Start::UnsampledRoot => AsyncState::UnsampledRoot,
        // SAFETY: `begin_slow` wrote the record.
        Start::Sampled(context) => AsyncState::Sampled(ManuallyDrop::new(Box::new(SampledAsync {
            record: ManuallyDrop::new(unsafe { record.assume_init() }),
            context: ManuallyDrop::new(context),
            completed: false,
        }))),
    }
}

/// Ends the span: normally if its future completed, else as cancelled (or
/// as failed, while a panic unwinds).
impl Drop for AsyncSpan {
    #[inline(always)]
    fn drop(&mut self) {
        if let AsyncState::Sampled(sampled) = &mut self.state {
            // SAFETY: taken once, here, as the span drops: never used again.
            end_async(unsafe { ManuallyDrop::take(sampled) });
        }
    }
}

// The box is taken to be freed here, out of the caller's inline drop.
#[allow(clippy::boxed_local)]
#[inline(never)]
fn end_async(mut sampled: Box<SampledAsync>) {
    // Ended abnormally if cancelled, or if recording the outcome of a
    // completed future panicked.
    let abnormally = !sampled.completed || std::thread::panicking();
    // SAFETY: the box is taken here, once, and freed after: its context and
    // its record are each taken once (the context dropped first, as the
    // span's context stops being kept), and not reached again.
    unsafe {
        ManuallyDrop::drop(&mut sampled.context);
        SpanRecord::end_or_count(&mut sampled.record, abnormally);
    }
}
