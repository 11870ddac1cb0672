//! From ended spans to an exporter: per-thread lanes and a bounded shared
//! queue, one export thread that batches, and the counters of exported and
//! dropped spans.

use std::borrow::Cow;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};

use crossbeam_queue::ArrayQueue;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use opentelemetry_sdk::Resource;

use super::error::TraceError;
use super::lane::{self, Lane, Lanes, LANE_SLOTS};
use super::sampler::{Roots, Sampler};
use super::span::{EventTime, FinalStatus, Kind, SpanRecord, TraceSite};
use crate::clock::WallClock;
use crate::error::ConfigError;

/// Spans handed to an exporter successfully, over the process's life.
pub(crate) static SPANS_EXPORTED: AtomicU64 = AtomicU64::new(0);
/// Spans lost: queue full, pipeline shut down, or export failed.
pub(crate) static SPANS_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Wall time span exports took, each from its start to its end, in
/// nanoseconds (waits on the collector included; concurrent exports each
/// count).
pub(crate) static EXPORT_NANOS: AtomicU64 = AtomicU64::new(0);

/// The installed pipeline (null when tracing is off). Pipelines are leaked:
/// a span that started under one may still end after it was replaced.
static CURRENT: AtomicPtr<Pipeline> = AtomicPtr::new(std::ptr::null_mut());
/// The pipelines of live `Telemetry` guards, oldest first: the newest is
/// current; shutting one down makes the newest of the others current.
static INSTALLED: Mutex<Vec<&'static Pipeline>> = Mutex::new(Vec::new());

/// While spans come, the export thread looks at the queue again when about
/// this many more will have come, at the rate they came: often enough to
/// convert them beside the callers, never near the half-full queue that
/// would make a caller wake it.
const POLL_SPANS: f64 = 64.0;

/// The longest nap while spans come: at 100,000 spans a second, 100 wait.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// The shortest nap: a caller producing spans as fast as it can is met by
/// polls this far apart.
const MIN_POLL: Duration = Duration::from_micros(20);

/// Polls in a row that found no span before the export thread stops
/// polling and sleeps until the batch is due.
const QUIET_ROUNDS: u32 = 8;

thread_local! {
    /// Spans this thread queued, to check the queue's fill every 64.
    static PUSHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Requests to the export thread besides spans.
enum Control {
    Flush(mpsc::Sender<()>),
    /// Export what is queued, then stop, by the deadline.
    Shutdown(mpsc::Sender<()>, Instant),
}

/// What the hot path needs: the sampler, the lanes and the queue.
pub struct Pipeline {
    pub(crate) sampler: Sampler,
    /// How `sampler` decides roots.
    pub(crate) roots: Roots,
    /// Ended spans, by value, in a lane of the thread that ended them (see
    /// [`lane`]): ending a span writes only that thread's cache lines. A
    /// thread's first span makes its lane (an allocation, and a lock the
    /// export thread takes once per pass); after that, ending a span
    /// neither blocks, allocates nor makes a system call, in a lane or in
    /// the queue (the export thread polls them, and is woken only when a
    /// lane is all but full or a batch's worth waits in the queue).
    lanes: Lanes,
    /// Ended spans of threads without a lane, or whose lane is full: a
    /// lock-free bounded queue.
    queue: ArrayQueue<SpanRecord>,
    /// Spans waiting that make a caller wake a sleeping export thread: a
    /// batch (at most half the queue).
    wake_at: usize,
    control: Mutex<Vec<Control>>,
    worker: OnceLock<std::thread::Thread>,
    /// The export thread is (about to be) parked: only then does a caller
    /// wake it (a thread waiting for a core needs no system call).
    parked: AtomicBool,
    open: AtomicBool,
    /// Spans the export thread took from the lanes or the queue and has not
    /// counted yet (exported or dropped). A shutdown that runs out of time
    /// counts them as dropped itself, taking them from the export thread.
    unresolved: AtomicU64,
}

#[inline(always)]
pub(crate) fn current() -> Option<&'static Pipeline> {
    let pointer = CURRENT.load(Ordering::Acquire);
    // SAFETY: non-null pointers in CURRENT come from Box::leak and are never freed.
    unsafe { pointer.as_ref() }
}

impl Pipeline {
    /// Queues an ended span (in this thread's lane, else in the shared
    /// queue), or drops and counts it when both are full or the pipeline
    /// shut down: never waits for the export thread. The record is taken
    /// where it lies: a lane copies it from there, once.
    ///
    /// # Safety
    ///
    /// Takes the record: it is handed on or dropped here, and must not be
    /// used or dropped after.
    pub(crate) unsafe fn submit(&self, record: &mut ManuallyDrop<SpanRecord>) {
        if !self.open.load(Ordering::Relaxed) {
            SPANS_DROPPED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: taken by this function, as its contract says.
            unsafe { ManuallyDrop::drop(record) };
            return;
        }
        if let Some(fill) = lane::offer(self, record) {
            // The lane took the record. A sleeping export thread is woken
            // when the lane is all but full (the fill is read every 64
            // spans; a full lane's spans go to the shared queue, which
            // wakes it when a batch's worth waits there): a nap that
            // overran by 448 spans, which a rate it keeps up with does not
            // reach.
            if fill >= LANE_SLOTS - 64
                && self.parked.load(Ordering::Relaxed)
                && self.parked.swap(false, Ordering::AcqRel)
            {
                self.wake();
            }
            return;
        }
        // SAFETY: the lane did not take it: it is still the caller's, taken
        // by this function.
        let record = unsafe { ManuallyDrop::take(record) };
        if self.queue.push(record).is_err() {
            SPANS_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Counted per thread: no shared counter to contend on.
        let pushed = PUSHED.with(|count| {
            let next = count.get().wrapping_add(1);
            count.set(next);
            next
        });
        // The export thread polls the queue while spans come (see
        // `Worker::run`), about every 64 spans: it is woken, with a system
        // call, only when a batch's worth waits while it sleeps (checked
        // every 64 spans), which a steady rate it keeps up with never
        // reaches.
        if pushed % 64 == 0
            && self.queue.len() >= self.wake_at
            && self.parked.load(Ordering::Relaxed)
            && self.parked.swap(false, Ordering::AcqRel)
        {
            self.wake();
        }
    }

    /// A lane for a thread's spans, if the pipeline has one to spare.
    pub(crate) fn lane(&self) -> Option<Arc<Lane>> {
        self.lanes.make()
    }

    fn wake(&self) {
        if let Some(worker) = self.worker.get() {
            worker.unpark();
        }
    }

    fn request(&self, control: Control) {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(control);
        self.wake();
    }

    /// Settles `count` spans the export thread took, `dropped` of them
    /// lost and the others exported; unless a timed-out shutdown counted
    /// them already.
    pub(crate) fn settle(&self, count: u64, dropped: u64) {
        let taken = self
            .unresolved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_sub(count)
            });
        if taken.is_ok() {
            if dropped < count {
                SPANS_EXPORTED.fetch_add(count - dropped, Ordering::Relaxed);
            }
            if dropped > 0 {
                SPANS_DROPPED.fetch_add(dropped, Ordering::Relaxed);
            }
        }
    }

    /// A shutdown ran out of time: whatever is queued or held by the export
    /// thread is lost; count it now.
    fn abandon(&self) {
        self.open.store(false, Ordering::Relaxed);
        // The lanes first: a span the export thread is taking from one
        // meanwhile is counted as held before the lane is free, so the
        // swap below counts it too.
        let discarded = self.lanes.discard();
        let mut lost = discarded + self.unresolved.swap(0, Ordering::AcqRel);
        while self.queue.pop().is_some() {
            lost += 1;
        }
        SPANS_DROPPED.fetch_add(lost, Ordering::Relaxed);
    }
}

/// Batching limits of the export thread.
#[derive(Debug, Clone)]
pub struct BatchLimits {
    /// Ended spans that may wait for export in the queue all threads share
    /// (8192 by default, in 96-byte slots: 768 KiB); more are dropped and
    /// counted. Besides, the first threads that end spans each get a lane
    /// of their own for 512 spans (40 KiB): one thread per 1,024 of this
    /// size (8 by default, none below 1,024), until one exits. A thread
    /// whose lane is full uses the shared queue.
    pub max_queue_size: usize,
    /// Most spans per export call.
    pub max_export_batch_size: usize,
    /// Longest a span waits before its batch is exported.
    pub scheduled_delay: Duration,
    /// Longest one export call may take.
    pub export_timeout: Duration,
    /// Most exports under way at once (OTLP export; an SDK exporter given
    /// to [`Traces::exporter`](super::Traces::exporter) exports one batch
    /// at a time). The export thread encodes the next batch while earlier
    /// ones are sent.
    pub max_concurrent_exports: usize,
}

impl BatchLimits {
    /// The defaults, with what the `OTEL_BSP_*` variables set:
    /// `OTEL_BSP_SCHEDULE_DELAY` and `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds),
    /// `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and
    /// `OTEL_BSP_MAX_CONCURRENT_EXPORTS`. A bad value is an error naming its
    /// variable.
    ///
    /// ```
    /// let limits = telemark_runtime::trace::BatchLimits::from_env().unwrap();
    /// assert!(limits.max_export_batch_size <= limits.max_queue_size);
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut limits = BatchLimits::default();
        let read = |name: &'static str| std::env::var(name).ok().map(|value| (name, value));
        if let Some((name, value)) = read("OTEL_BSP_SCHEDULE_DELAY") {
            limits.scheduled_delay = whole_milliseconds(name, &value)?;
        }
        if let Some((name, value)) = read("OTEL_BSP_EXPORT_TIMEOUT") {
            limits.export_timeout = whole_milliseconds(name, &value)?;
        }
        if let Some((name, value)) = read("OTEL_BSP_MAX_QUEUE_SIZE") {
            limits.max_queue_size = count(name, &value)?;
        }
        if let Some((name, value)) = read("OTEL_BSP_MAX_CONCURRENT_EXPORTS") {
            limits.max_concurrent_exports = count(name, &value)?;
        }
        if let Some((name, value)) = read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            limits.max_export_batch_size = count(name, &value)?;
            if limits.max_export_batch_size > limits.max_queue_size {
                return Err(ConfigError::new(
                    name,
                    value,
                    "a batch cannot be larger than the queue (OTEL_BSP_MAX_QUEUE_SIZE)",
                ));
            }
        }
        Ok(limits)
    }
}

/// Milliseconds, more than zero, as the OpenTelemetry specification writes
/// timeouts and delays in its environment variables.
pub(crate) fn whole_milliseconds(variable: &str, value: &str) -> Result<Duration, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(millis) if millis > 0 => Ok(Duration::from_millis(millis)),
        _ => Err(ConfigError::new(
            variable.to_owned(),
            value,
            "expected a whole number of milliseconds, more than zero",
        )),
    }
}

fn count(variable: &'static str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(count) if count > 0 => Ok(count),
        _ => Err(ConfigError::new(
            variable,
            value,
            "expected a whole number, more than zero",
        )),
    }
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_queue_size: 8192,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(500),
            export_timeout: Duration::from_secs(10),
            max_concurrent_exports: 4,
        }
    }
}

/// Controls a running pipeline: flush and shut down.
pub(crate) struct PipelineHandle {
    pipeline: &'static Pipeline,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PipelineHandle {
    /// Exports every span queued so far; waits at most `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = mpsc::channel();
        self.pipeline.request(Control::Flush(done));
        wait.recv_timeout(timeout).is_ok()
    }

    /// Uninstalls the pipeline (the newest other live one, if any, becomes
    /// current again), exports what is queued and shuts the exporter down,
    /// returning within `timeout`: spans not exported by then are counted
    /// as dropped.
    pub(crate) fn shutdown(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        {
            let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
            installed.retain(|other| !std::ptr::eq(*other, self.pipeline));
            let newest = installed.last().map_or(std::ptr::null_mut(), |pipeline| {
                *pipeline as *const Pipeline as *mut Pipeline
            });
            CURRENT.store(newest, Ordering::Release);
        }
        let (done, wait) = mpsc::channel();
        self.pipeline.request(Control::Shutdown(done, deadline));
        let finished = wait
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok();
        match (finished, self.thread.take()) {
            (true, Some(thread)) => {
                let _ = thread.join();
            }
            // The exporter hangs past the deadline: its spans are lost.
            _ => self.pipeline.abandon(),
        }
    }
}

impl Drop for PipelineHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown(Duration::from_secs(5));
        }
    }
}

/// Starts the export thread with `batcher` and installs the pipeline.
pub(crate) fn install<B: Batcher>(
    batcher: B,
    sampler: Sampler,
    limits: BatchLimits,
) -> Result<PipelineHandle, TraceError> {
    let capacity = limits.max_queue_size.max(1);
    let pipeline: &'static Pipeline = Box::leak(Box::new(Pipeline {
        roots: sampler.roots(),
        sampler,
        lanes: Lanes::new(lane::lanes_for(limits.max_queue_size)),
        queue: ArrayQueue::new(capacity),
        // Wake the exporter when a batch is ready, or the queue half full.
        control: Mutex::new(Vec::new()),
        worker: OnceLock::new(),
        wake_at: limits.max_export_batch_size.clamp(1, capacity.div_ceil(2)),
        parked: AtomicBool::new(false),
        open: AtomicBool::new(true),
        unresolved: AtomicU64::new(0),
    }));
    let thread = std::thread::Builder::new()
        .name("telemark-spans".into())
        .spawn(move || {
            let mut worker = Worker {
                batcher,
                limits,
                clock: WallClock::now(),
                lanes: Vec::new(),
            };
            worker.run(pipeline);
        })
        .map_err(TraceError::Thread)?;
    let _ = pipeline.worker.set(thread.thread().clone());
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    installed.push(pipeline);
    CURRENT.store(
        pipeline as *const Pipeline as *mut Pipeline,
        Ordering::Release,
    );
    Ok(PipelineHandle {
        pipeline,
        thread: Some(thread),
    })
}

/// What the export thread hands ended spans to: it builds a batch of them
/// and exports it.
pub(crate) trait Batcher: Send + 'static {
    /// Adds an ended span to the batch being built.
    fn add(&mut self, record: SpanRecord, clock: &WallClock);

    /// Spans in the batch being built.
    fn len(&self) -> usize;

    /// Exports the batch being built, within the export timeout and by
    /// `deadline` (a shutdown's); its spans are settled (see
    /// [`Pipeline::settle`]) once the export ends, which may be after this
    /// returns.
    fn export(&mut self, pipeline: &'static Pipeline, deadline: Option<Instant>);

    /// Waits, until `deadline`, for the exports under way to end.
    fn flush(&mut self, deadline: Instant);

    /// Ends exporting: the exports under way end by `deadline` or are
    /// abandoned, their spans settled as dropped.
    fn shutdown(&mut self, pipeline: &'static Pipeline, deadline: Instant);
}

/// Builds what exports (a transport, an exporter) inside `runtime`, which
/// gRPC channels need; a failure shuts the runtime down without blocking
/// (`start()` may be called in an async context).
pub(crate) fn build_in<T>(
    runtime: tokio::runtime::Runtime,
    build: impl FnOnce() -> Result<T, TraceError>,
) -> Result<(tokio::runtime::Runtime, T), TraceError> {
    let built = {
        let _context = runtime.enter();
        build()
    };
    match built {
        Ok(built) => Ok((runtime, built)),
        Err(error) => {
            runtime.shutdown_background();
            Err(error)
        }
    }
}

/// How long an export may take: the export timeout, cut short by a
/// shutdown's deadline.
pub(crate) fn export_limit(timeout: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(deadline) => timeout.min(deadline.saturating_duration_since(Instant::now())),
        None => timeout,
    }
}

/// Settles the `count` spans of an export that started at `started` and
/// ended with `result` (`Ok` holds how many spans the collector rejected):
/// exported or dropped, its time counted, a failure logged.
pub(crate) fn export_ended(
    pipeline: &Pipeline,
    count: u64,
    started: Instant,
    result: Result<u64, String>,
) {
    let spent = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
    EXPORT_NANOS.fetch_add(spent, Ordering::Relaxed);
    match result {
        Ok(0) => pipeline.settle(count, 0),
        Ok(rejected) => {
            pipeline.settle(count, rejected.min(count));
            report_failure(&format!("the collector rejected {rejected} span(s)"));
        }
        Err(error) => {
            pipeline.settle(count, count);
            report_failure(&error);
        }
    }
}

/// Logs a failed export at most once per interval (its spans are counted
/// as dropped already).
fn report_failure(error: &str) {
    struct Reported {
        failures: u64,
        last: Option<Instant>,
    }
    static REPORTED: Mutex<Reported> = Mutex::new(Reported {
        failures: 0,
        last: None,
    });
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    reported.failures += 1;
    if reported
        .last
        .is_none_or(|last| last.elapsed() >= Duration::from_secs(30))
    {
        eprintln!(
            "telemark: span export failed ({} failure(s) since the last report): {error}",
            reported.failures
        );
        reported.failures = 0;
        reported.last = Some(Instant::now());
    }
}

/// Spans handed to an OpenTelemetry SDK exporter as `SpanData`, one export
/// at a time.
pub(crate) struct SdkBatcher<E> {
    exporter: E,
    runtime: tokio::runtime::Runtime,
    export_timeout: Duration,
    converter: Converter,
    batch: Vec<SpanData>,
}

impl<E: SpanExporter + 'static> SdkBatcher<E> {
    /// Builds the exporter inside the export thread's tokio runtime (which
    /// gRPC channels need).
    pub(crate) fn new(
        build_exporter: impl FnOnce() -> Result<E, TraceError>,
        resource: &Resource,
        limits: &BatchLimits,
    ) -> Result<Self, TraceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(TraceError::Thread)?;
        let (runtime, mut exporter) = build_in(runtime, build_exporter)?;
        exporter.set_resource(resource);
        Ok(SdkBatcher {
            exporter,
            runtime,
            export_timeout: limits.export_timeout,
            converter: Converter::new(),
            batch: Vec::new(),
        })
    }
}

impl<E: SpanExporter + 'static> Batcher for SdkBatcher<E> {
    fn add(&mut self, record: SpanRecord, clock: &WallClock) {
        let span = self.converter.convert(record, clock);
        self.batch.push(span);
    }

    fn len(&self) -> usize {
        self.batch.len()
    }

    fn export(&mut self, pipeline: &'static Pipeline, deadline: Option<Instant>) {
        if self.batch.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.batch);
        let count = spans.len() as u64;
        let limit = export_limit(self.export_timeout, deadline);
        if limit.is_zero() {
            pipeline.settle(count, count);
            return;
        }
        let started = Instant::now();
        let export = self.exporter.export(spans);
        let result = match self
            .runtime
            .block_on(async { tokio::time::timeout(limit, export).await })
        {
            Ok(Ok(())) => Ok(0),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("export timed out".to_owned()),
        };
        export_ended(pipeline, count, started, result);
    }

    fn flush(&mut self, _deadline: Instant) {
        let _ = self.exporter.force_flush();
    }

    fn shutdown(&mut self, _pipeline: &'static Pipeline, _deadline: Instant) {
        let _ = self.exporter.shutdown();
    }
}

struct Worker<B> {
    batcher: B,
    limits: BatchLimits,
    /// Wall-clock times of the spans converted this round.
    clock: WallClock,
    /// The pipeline's lanes as of this round.
    lanes: Vec<Arc<Lane>>,
}

impl<B: Batcher> Worker<B> {
    fn run(&mut self, pipeline: &'static Pipeline) {
        let mut deadline = Instant::now() + self.limits.scheduled_delay;
        // Rounds in a row that found no span: a few mean the spans stopped.
        let mut empty_rounds = QUIET_ROUNDS;
        // Spans taken since the last nap began (they came during the nap
        // and the work after it), and when it began.
        let (mut arrived, mut nap_began) = (0u64, Instant::now());
        loop {
            // A fresh wall-clock anchor for the spans converted this round.
            self.clock = WallClock::now();
            let controls =
                std::mem::take(&mut *pipeline.control.lock().unwrap_or_else(|p| p.into_inner()));
            // Spans ended before a flush or shutdown was asked for wait
            // already: they are all taken, then exported now.
            let export_now = !controls.is_empty();
            let took = self.gather(pipeline, None);
            if export_now || Instant::now() >= deadline {
                self.batcher.export(pipeline, None);
                deadline = Instant::now() + self.limits.scheduled_delay;
            }
            for control in controls {
                match control {
                    Control::Flush(done) => {
                        let now = Instant::now();
                        let by = now
                            .checked_add(self.limits.export_timeout)
                            .unwrap_or(now + Duration::from_secs(3600));
                        self.batcher.flush(by);
                        let _ = done.send(());
                    }
                    Control::Shutdown(done, by) => {
                        pipeline.open.store(false, Ordering::Relaxed);
                        self.gather(pipeline, Some(by));
                        self.batcher.export(pipeline, Some(by));
                        self.batcher.shutdown(pipeline, by);
                        let _ = done.send(());
                        // Answer anyone still waiting, then stop.
                        for late in std::mem::take(
                            &mut *pipeline.control.lock().unwrap_or_else(|p| p.into_inner()),
                        ) {
                            let (Control::Flush(other) | Control::Shutdown(other, _)) = late;
                            let _ = other.send(());
                        }
                        return;
                    }
                }
            }
            arrived += took;
            if pipeline.queue.is_empty() && self.lanes.iter().all(|lane| lane.waiting() == 0) {
                // While spans come, poll again soon; once none came, sleep
                // until the batch is due (a first span after a quiet spell
                // leaves within the schedule delay; a burst wakes it).
                let now = Instant::now();
                let until_due = deadline.saturating_duration_since(now);
                empty_rounds = if arrived > 0 { 0 } else { empty_rounds + 1 };
                let nap = if empty_rounds < QUIET_ROUNDS {
                    // Back when about POLL_SPANS more will have come, at the
                    // rate they came since the last nap began.
                    let since = now.saturating_duration_since(nap_began);
                    let rate = arrived as f64 / since.as_secs_f64().max(1e-9);
                    let due = Duration::from_secs_f64(POLL_SPANS / rate.max(1.0));
                    until_due.min(due.clamp(MIN_POLL, BUSY_POLL))
                } else {
                    until_due
                };
                pipeline.parked.store(true, Ordering::Release);
                nap_began = now;
                arrived = 0;
                std::thread::park_timeout(nap);
                pipeline.parked.store(false, Ordering::Release);
            }
        }
    }
}

impl<B: Batcher> Worker<B> {
    /// Moves the spans waiting in every lane and in the shared queue into
    /// the batcher, exporting each full batch (by `deadline`, a shutdown's).
    /// One pass, taking from each at most what it held when the pass came
    /// to it (a lane holds at most its size), so that a thread ending spans
    /// faster than they are exported keeps no other thread's spans waiting.
    /// Returns how many it took.
    fn gather(&mut self, pipeline: &'static Pipeline, deadline: Option<Instant>) -> u64 {
        pipeline.lanes.snapshot(&mut self.lanes);
        let batch = self.limits.max_export_batch_size.max(1);
        let mut took = 0u64;
        for lane in &self.lanes {
            let mut left = LANE_SLOTS;
            while left > 0 {
                let room = batch.saturating_sub(self.batcher.len()).clamp(1, left);
                let (batcher, clock) = (&mut self.batcher, &self.clock);
                let taken = lane.take(room, |record| {
                    // Counted before it is added: a shutdown out of time
                    // counts what the export thread holds.
                    pipeline.unresolved.fetch_add(1, Ordering::AcqRel);
                    batcher.add(record, clock);
                });
                took += taken as u64;
                left -= taken;
                if self.batcher.len() >= batch {
                    self.batcher.export(pipeline, deadline);
                }
                if taken < room {
                    break;
                }
            }
        }
        for _ in 0..pipeline.queue.len() {
            let Some(record) = pipeline.queue.pop() else {
                break;
            };
            took += 1;
            pipeline.unresolved.fetch_add(1, Ordering::AcqRel);
            self.batcher.add(record, &self.clock);
            if self.batcher.len() >= batch {
                self.batcher.export(pipeline, deadline);
            }
        }
        took
    }
}

/// Turns span records into the SDK's `SpanData`.
pub(crate) struct Converter {
    scope: InstrumentationScope,
    /// `code.function.name` of each call site (by its address), made once
    /// and shared by its spans. Call sites are statics: as many entries as
    /// the program has traced functions.
    function_names: HashMap<usize, Arc<str>>,
}

impl Converter {
    pub(crate) fn new() -> Self {
        Converter {
            scope: InstrumentationScope::builder("telemark")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            function_names: HashMap::new(),
        }
    }

    pub(crate) fn convert(&mut self, record: SpanRecord, clock: &WallClock) -> SpanData {
        let site = record.site;
        let info = site.info;
        let mut extra = record.extra.map(|extra| *extra).unwrap_or_default();
        let status = match extra.final_status() {
            FinalStatus::Unset => Status::Unset,
            FinalStatus::Ok => Status::Ok,
            FinalStatus::Error(description) => Status::error(description.to_owned()),
        };
        // Where the span is, then its own attributes, in the record's
        // vector.
        let mut attributes = std::mem::take(&mut extra.attributes);
        // Spans of a function carry where it is; spans of a request made by
        // an integration (no source file) do not.
        if !info.file.is_empty() {
            let function: Value = if info.module.is_empty() {
                Value::from(info.function)
            } else {
                let name = self
                    .function_names
                    .entry(site as *const TraceSite as usize)
                    .or_insert_with(|| Arc::from(format!("{}::{}", info.module, info.function)));
                Value::String(Arc::clone(name).into())
            };
            let code = [
                KeyValue::new("code.function.name", function),
                KeyValue::new("code.file.path", info.file),
                KeyValue::new("code.line.number", i64::from(info.line)),
            ];
            attributes.splice(0..0, code);
        }
        let mut events = SpanEvents::default();
        events.events = extra
            .events
            .into_iter()
            .map(|event| {
                let time = match event.time {
                    EventTime::Ticks(ticks) => clock.time(ticks),
                    EventTime::Wall(time) => time,
                };
                Event::new(event.name, time, event.attributes, 0)
            })
            .collect();
        events.dropped_count = extra.dropped_events;
        let mut links = SpanLinks::default();
        links.links = extra.links;
        links.dropped_count = extra.dropped_links;
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(record.ids.trace_id),
                SpanId::from(record.ids.span_id),
                TraceFlags::SAMPLED,
                false,
                extra.trace_state,
            ),
            parent_span_id: SpanId::from(record.parent_span_id),
            parent_span_is_remote: record.parent_is_remote,
            span_kind: match site.kind {
                Kind::Internal => SpanKind::Internal,
                Kind::Server => SpanKind::Server,
                Kind::Client => SpanKind::Client,
                Kind::Producer => SpanKind::Producer,
                Kind::Consumer => SpanKind::Consumer,
            },
            name: extra.name.unwrap_or(Cow::Borrowed(site.name)),
            start_time: clock.time(record.start_ticks),
            end_time: clock.time(record.end_ticks),
            attributes,
            dropped_attributes_count: extra.dropped_attributes,
            events,
            links,
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpanRecord;

    #[test]
    fn a_queued_span_takes_a_96_byte_slot() {
        // What `BatchLimits` and the README say a queued span costs: the
        // record (aligned as its 128-bit trace id) after the queue's 8-byte
        // stamp, padded to that alignment.
        let record = std::mem::size_of::<SpanRecord>();
        let align = std::mem::align_of::<SpanRecord>();
        assert_eq!((record, align), (80, 16));
        assert_eq!(8usize.next_multiple_of(align) + record, 96);
    }
}
