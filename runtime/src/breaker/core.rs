//! The breaker's state machine, on atomics and without a clock of its own:
//! every method that may need the time takes `now` (nanoseconds on any
//! monotonic scale), so tests drive it deterministically.
//!
//! One 64-bit word holds the state, the half-open trial counts and an epoch
//! that every transition increments. A permit remembers the epoch it was
//! granted in; a result whose epoch is no longer current is a late result
//! from an earlier state and leaves the state machine alone. Because the
//! trial counts live in the same word as the state, admitting a trial is one
//! compare-and-swap: however many callers race, half-open admits at most
//! `half_open_calls` of them.
//!
//! The closed state's hot path is one load of the word (admit) and, with the
//! default rules, one load of the consecutive-failure count (record).

#[cfg(feature = "loom")]
use loom::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
#[cfg(not(feature = "loom"))]
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::config::BreakerConfig;

/// The state of a circuit breaker.
///
/// ```
/// use telemark_runtime::breaker::BreakerState;
/// assert_eq!(BreakerState::HalfOpen.label(), "half_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; failures are counted against the trip rules.
    Closed,
    /// Calls are refused until the open duration has passed.
    Open,
    /// A limited number of trial calls decide between closing and reopening.
    HalfOpen,
    /// Refuses every call until reset (run-time control).
    ForcedOpen,
    /// Lets every call through and records nothing (run-time control).
    Disabled,
}

impl BreakerState {
    /// Every state, in the order of [`BreakerState::index`].
    pub const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
    ];

    /// The `state` label value in `circuit_breaker_state`.
    pub const fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }

    /// Position in [`BreakerState::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    const fn from_bits(bits: u64) -> BreakerState {
        match bits {
            0 => BreakerState::Closed,
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            _ => BreakerState::Disabled,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

// Layout of the state word.
const STATE_MASK: u64 = 0b111;
const COUNT_BITS: u32 = 10;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const ADMITTED_SHIFT: u32 = 3;
const SUCCEEDED_SHIFT: u32 = ADMITTED_SHIFT + COUNT_BITS;
const EPOCH_SHIFT: u32 = SUCCEEDED_SHIFT + COUNT_BITS;

use telemark_limits::MAX_HALF_OPEN_CALLS;
// Trials in flight and successes are counted in `COUNT_BITS` bits.
const _: () = assert!(MAX_HALF_OPEN_CALLS as u64 <= COUNT_MASK);

#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    const fn new(state: BreakerState, admitted: u64, succeeded: u64, epoch: u64) -> Word {
        Word(
            (state as u64)
                | (admitted << ADMITTED_SHIFT)
                | (succeeded << SUCCEEDED_SHIFT)
                | (epoch << EPOCH_SHIFT),
        )
    }
    const fn state(self) -> BreakerState {
        BreakerState::from_bits(self.0 & STATE_MASK)
    }
    const fn admitted(self) -> u64 {
        (self.0 >> ADMITTED_SHIFT) & COUNT_MASK
    }
    const fn succeeded(self) -> u64 {
        (self.0 >> SUCCEEDED_SHIFT) & COUNT_MASK
    }
    const fn epoch(self) -> u64 {
        self.0 >> EPOCH_SHIFT
    }
    /// The epoch of the next state (wrapping within its 41 bits).
    const fn next_epoch(self) -> u64 {
        (self.epoch() + 1) & ((1 << (64 - EPOCH_SHIFT)) - 1)
    }
}

// The deadline word: the low 24 bits of the epoch it belongs to, then the
// deadline in milliseconds (40 bits: 34 years).
const DEADLINE_BITS: u32 = 40;
const DEADLINE_MASK: u64 = (1 << DEADLINE_BITS) - 1;
const TAG_MASK: u64 = (1 << 24) - 1;
const NANOS_PER_MILLI: u64 = 1_000_000;

fn deadline_word(epoch: u64, at_nanos: u64) -> u64 {
    let millis = at_nanos.div_ceil(NANOS_PER_MILLI).min(DEADLINE_MASK);
    ((epoch & TAG_MASK) << DEADLINE_BITS) | millis
}

/// What a caller was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    /// Admitted while closed.
    Closed = 0,
    /// One of the half-open trials.
    Trial = 1,
    /// Admitted by a disabled breaker: nothing is recorded.
    Bypass = 2,
}

/// Admission to make one call; its result goes back through [`Core::record`].
/// One word (a permit, which futures of `async fn`s hold and move, stays
/// small): the epoch it was given in, and its kind in the top two bits,
/// which epochs never reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

const KIND_SHIFT: u32 = 62;
const _: () = assert!(
    64 - EPOCH_SHIFT <= KIND_SHIFT,
    "epochs stay below the kind's bits"
);

impl Ticket {
    #[inline(always)]
    pub(crate) const fn new(epoch: u64, kind: PermitKind) -> Self {
        Ticket(epoch | (kind as u64) << KIND_SHIFT)
    }

    #[inline(always)]
    pub(crate) const fn epoch(self) -> u64 {
        self.0 & ((1 << KIND_SHIFT) - 1)
    }

    #[inline(always)]
    pub(crate) const fn kind(self) -> PermitKind {
        match self.0 >> KIND_SHIFT {
            0 => PermitKind::Closed,
            1 => PermitKind::Trial,
            _ => PermitKind::Bypass,
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub state: BreakerState,
    /// Nanoseconds until a trial may be admitted, when known.
    pub retry_after: Option<u64>,
}

/// How a call ended, as the trip rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counts for closing, against failure rates.
    Success,
    /// Counts toward tripping (an `Err` the classifier calls a failure, a
    /// timeout or a panic).
    Failure,
    /// Neither (an ignored error, a cancelled call): a half-open trial slot
    /// it held is given back.
    Ignored,
}

/// A state change made by a call.
pub(crate) type Change = (BreakerState, BreakerState);

/// The counters behind the trip rules.
pub(crate) struct Core {
    word: AtomicU64,
    deadline: AtomicU64,
    consecutive: AtomicU32,
    /// Half-open → open transitions since the breaker last closed.
    reopens: AtomicU32,
    /// Calls recorded in the window since it was last cleared.
    recorded: AtomicU64,
    /// The window's calls, two bits each (failure, slow), 32 to a word.
    window: Box<[AtomicU64]>,
}

const FAILURE_BITS: u64 = 0x5555_5555_5555_5555;
const SLOW_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// Counts in the sliding window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub calls: u64,
    pub failures: u64,
    pub slow: u64,
}

impl Core {
    pub fn new(config: &BreakerConfig) -> Core {
        let words = if config.uses_window() {
            (config.window as usize).div_ceil(32)
        } else {
            0
        };
        Core {
            word: AtomicU64::new(Word::new(BreakerState::Closed, 0, 0, 0).0),
            deadline: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            reopens: AtomicU32::new(0),
            recorded: AtomicU64::new(0),
            window: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        Word(self.word.load(Acquire)).state()
    }

    /// The epoch, if the breaker is closed.
    #[inline(always)]
    pub fn closed_epoch(&self) -> Option<u64> {
        let word = Word(self.word.load(Acquire));
        (word.state() == BreakerState::Closed).then_some(word.epoch())
    }

    /// Admits a call or refuses it. `now` is read only outside the closed
    /// state.
    #[inline]
    pub fn acquire(
        &self,
        config: &BreakerConfig,
        now: impl FnOnce() -> u64,
    ) -> Result<(Ticket, Option<Change>), Refusal> {
        let word = Word(self.word.load(Acquire));
        if word.state() == BreakerState::Closed {
            return Ok((Ticket::new(word.epoch(), PermitKind::Closed), None));
        }
        self.acquire_slow(config, word, now())
    }

    #[cold]
    fn acquire_slow(
        &self,
        config: &BreakerConfig,
        mut word: Word,
        now: u64,
    ) -> Result<(Ticket, Option<Change>), Refusal> {
        loop {
            match word.state() {
                BreakerState::Closed => {
                    let ticket = Ticket::new(word.epoch(), PermitKind::Closed);
                    return Ok((ticket, None));
                }
                BreakerState::Disabled => {
                    let ticket = Ticket::new(word.epoch(), PermitKind::Bypass);
                    return Ok((ticket, None));
                }
                BreakerState::ForcedOpen => {
                    return Err(Refusal {
                        state: BreakerState::ForcedOpen,
                        retry_after: None,
                    })
                }
                BreakerState::Open => {
                    let Some(at) = self.deadline_of(word) else {
                        // The opener has not published the deadline yet.
                        return Err(Refusal {
                            state: BreakerState::Open,
                            retry_after: Some(config.open_nanos()),
                        });
                    };
                    if now < at {
                        return Err(Refusal {
                            state: BreakerState::Open,
                            retry_after: Some(at - now),
                        });
                    }
                    // The open duration is over: this caller takes the first trial.
                    match self.start_round(config, word, now) {
                        Ok(ticket) => {
                            let change = (BreakerState::Open, BreakerState::HalfOpen);
                            return Ok((ticket, Some(change)));
                        }
                        Err(current) => word = current,
                    }
                }
                BreakerState::HalfOpen => {
                    if word.admitted() < u64::from(config.half_open_calls) {
                        let admitted = Word::new(
                            BreakerState::HalfOpen,
                            word.admitted() + 1,
                            word.succeeded(),
                            word.epoch(),
                        );
                        match self.swap(word, admitted) {
                            Ok(()) => {
                                let ticket = Ticket::new(word.epoch(), PermitKind::Trial);
                                return Ok((ticket, None));
                            }
                            Err(current) => {
                                word = current;
                                continue;
                            }
                        }
                    }
                    // Every trial slot is taken. Trials that have not reported
                    // within the open duration are abandoned (their late
                    // results are ignored) so the breaker cannot stay stuck.
                    match self.deadline_of(word) {
                        Some(at) if now >= at => match self.start_round(config, word, now) {
                            Ok(ticket) => return Ok((ticket, None)),
                            Err(current) => word = current,
                        },
                        _ => {
                            return Err(Refusal {
                                state: BreakerState::HalfOpen,
                                retry_after: None,
                            })
                        }
                    }
                }
            }
        }
    }

    /// Starts a half-open round from `word` (open, or half-open with
    /// abandoned trials): fresh trial counts with this caller's trial taken,
    /// and `open_for` for the trials to report. `Err` if the state changed.
    fn start_round(&self, config: &BreakerConfig, word: Word, now: u64) -> Result<Ticket, Word> {
        let epoch = word.next_epoch();
        self.swap(word, Word::new(BreakerState::HalfOpen, 1, 0, epoch))?;
        self.publish_deadline(epoch, now.saturating_add(config.open_nanos()));
        Ok(Ticket::new(epoch, PermitKind::Trial))
    }

    /// Records the result of an admitted call. `slow` is whether it took at
    /// least the slow-call threshold; `now` is read only if the call trips
    /// the breaker.
    #[inline]
    pub fn record(
        &self,
        config: &BreakerConfig,
        ticket: Ticket,
        verdict: Verdict,
        slow: bool,
        now: impl FnOnce() -> u64,
    ) -> Option<Change> {
        match ticket.kind() {
            PermitKind::Bypass => None,
            PermitKind::Closed => self.record_closed(config, ticket, verdict, slow, now),
            PermitKind::Trial => self.record_trial(config, ticket, verdict, slow, now()),
        }
    }

    #[inline]
    fn record_closed(
        &self,
        config: &BreakerConfig,
        ticket: Ticket,
        verdict: Verdict,
        slow: bool,
        now: impl FnOnce() -> u64,
    ) -> Option<Change> {
        let word = Word(self.word.load(Acquire));
        if word.epoch() != ticket.epoch() || word.state() != BreakerState::Closed {
            return None; // a late result from an earlier closed period
        }
        let failed = match verdict {
            Verdict::Ignored => return None,
            Verdict::Failure => true,
            Verdict::Success => false,
        };
        if config.consecutive_failures > 0 {
            if failed {
                let count = self.consecutive.fetch_add(1, AcqRel).saturating_add(1);
                if count >= config.consecutive_failures {
                    return self.open(config, word, now(), false);
                }
            } else if self.consecutive.load(Relaxed) != 0 {
                self.consecutive.store(0, Relaxed);
            }
        }
        if config.uses_window() {
            return self.record_in_window(config, word, failed, slow, now);
        }
        None
    }

    fn record_in_window(
        &self,
        config: &BreakerConfig,
        word: Word,
        failed: bool,
        slow: bool,
        now: impl FnOnce() -> u64,
    ) -> Option<Change> {
        let window = u64::from(config.window);
        let index = self.recorded.fetch_add(1, Relaxed);
        let slot = index % window;
        let cell = &self.window[(slot / 32) as usize];
        let shift = (slot % 32) * 2;
        let bits = u64::from(failed) | (u64::from(slow) << 1);
        if (cell.load(Relaxed) >> shift) & 0b11 != bits {
            cell.fetch_and(!(0b11 << shift), Relaxed);
            if bits != 0 {
                cell.fetch_or(bits << shift, Relaxed);
            }
        }
        let calls = (index + 1).min(window);
        if !(failed || slow) || calls < u64::from(config.min_calls) {
            return None;
        }
        let counts = self.window_counts_of(calls);
        let over =
            |count: u64, percent: u8| percent > 0 && count * 100 >= u64::from(percent) * calls;
        if (failed && over(counts.failures, config.failure_rate))
            || (slow && over(counts.slow, config.slow_call_rate))
        {
            return self.open(config, word, now(), false);
        }
        None
    }

    fn window_counts_of(&self, calls: u64) -> WindowCounts {
        let mut counts = WindowCounts {
            calls,
            ..WindowCounts::default()
        };
        for cell in self.window.iter() {
            let bits = cell.load(Relaxed);
            counts.failures += u64::from((bits & FAILURE_BITS).count_ones());
            counts.slow += u64::from((bits & SLOW_BITS).count_ones());
        }
        counts
    }

    /// The sliding window's counts now.
    pub fn window_counts(&self, config: &BreakerConfig) -> WindowCounts {
        if !config.uses_window() {
            return WindowCounts::default();
        }
        let calls = self.recorded.load(Relaxed).min(u64::from(config.window));
        self.window_counts_of(calls)
    }

    /// Failures in a row while closed.
    #[inline(always)]
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive.load(Relaxed)
    }

    fn record_trial(
        &self,
        config: &BreakerConfig,
        ticket: Ticket,
        verdict: Verdict,
        slow: bool,
        now: u64,
    ) -> Option<Change> {
        // A slow trial fails only if it answered: an ignored or cancelled
        // one gives its slot back like any other.
        let failed = verdict == Verdict::Failure
            || (verdict == Verdict::Success && slow && config.slow_call_rate > 0);
        let mut word = Word(self.word.load(Acquire));
        loop {
            if word.epoch() != ticket.epoch() || word.state() != BreakerState::HalfOpen {
                return None; // the trial was abandoned or the state moved on
            }
            if failed {
                match self.open(config, word, now, true) {
                    Some(change) => return Some(change),
                    None => {
                        word = Word(self.word.load(Acquire));
                        continue;
                    }
                }
            }
            let next = match verdict {
                Verdict::Ignored => Word::new(
                    BreakerState::HalfOpen,
                    word.admitted().saturating_sub(1),
                    word.succeeded(),
                    word.epoch(),
                ),
                _ if word.succeeded() + 1 >= u64::from(config.half_open_calls) => {
                    // Nothing records into the window or the consecutive count
                    // while half-open, so they can be cleared before closing.
                    self.clear_counts();
                    Word::new(BreakerState::Closed, 0, 0, word.next_epoch())
                }
                _ => Word::new(
                    BreakerState::HalfOpen,
                    word.admitted(),
                    word.succeeded() + 1,
                    word.epoch(),
                ),
            };
            match self.swap(word, next) {
                Ok(()) if next.state() == BreakerState::Closed => {
                    self.reopens.store(0, Relaxed);
                    return Some((BreakerState::HalfOpen, BreakerState::Closed));
                }
                Ok(()) => return None,
                Err(current) => word = current,
            }
        }
    }

    /// Opens the breaker from `word`; `None` if another caller changed the
    /// state first.
    fn open(&self, config: &BreakerConfig, word: Word, now: u64, reopen: bool) -> Option<Change> {
        let epoch = word.next_epoch();
        self.swap(word, Word::new(BreakerState::Open, 0, 0, epoch))
            .ok()?;
        let reopens = if reopen {
            self.reopens.fetch_add(1, Relaxed).saturating_add(1)
        } else {
            self.reopens.load(Relaxed)
        };
        let duration = config.open_nanos_after(reopens);
        self.publish_deadline(epoch, now.saturating_add(duration));
        self.clear_counts();
        Some((word.state(), BreakerState::Open))
    }

    /// Moves to `state` whatever the current state (run-time control).
    pub fn force(&self, state: BreakerState) -> Option<Change> {
        let mut word = Word(self.word.load(Acquire));
        loop {
            if word.state() == state {
                if state == BreakerState::Closed {
                    // Resetting a closed breaker still starts its counts over.
                    self.clear_counts();
                }
                return None;
            }
            if state == BreakerState::Closed {
                self.clear_counts();
                self.reopens.store(0, Relaxed);
            }
            match self.swap(word, Word::new(state, 0, 0, word.next_epoch())) {
                Ok(()) => return Some((word.state(), state)),
                Err(current) => word = current,
            }
        }
    }

    /// Nanoseconds (on the caller's scale) until an open breaker admits a
    /// trial, or `None` when it is not open.
    pub fn next_trial_in(&self, now: u64) -> Option<u64> {
        let word = Word(self.word.load(Acquire));
        if word.state() != BreakerState::Open {
            return None;
        }
        Some(
            self.deadline_of(word)
                .map_or(0, |at| at.saturating_sub(now)),
        )
    }

    /// Half-open trials admitted and succeeded so far.
    pub fn trials(&self) -> (u32, u32) {
        let word = Word(self.word.load(Acquire));
        if word.state() != BreakerState::HalfOpen {
            return (0, 0);
        }
        (word.admitted() as u32, word.succeeded() as u32)
    }

    fn swap(&self, from: Word, to: Word) -> Result<(), Word> {
        self.word
            .compare_exchange(from.0, to.0, AcqRel, Acquire)
            .map(drop)
            .map_err(Word)
    }

    /// Publishes the deadline of the state with `epoch`, unless a later
    /// state has taken over: a writer delayed between its transition and
    /// this store must not replace a newer state's deadline (which would
    /// leave that state without one, refusing calls until reset).
    fn publish_deadline(&self, epoch: u64, at_nanos: u64) {
        let new = deadline_word(epoch, at_nanos);
        let mut current = self.deadline.load(Acquire);
        loop {
            if Word(self.word.load(Acquire)).epoch() != epoch {
                return;
            }
            match self
                .deadline
                .compare_exchange_weak(current, new, AcqRel, Acquire)
            {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The deadline published for `word`'s epoch, in nanoseconds.
    fn deadline_of(&self, word: Word) -> Option<u64> {
        let deadline = self.deadline.load(Acquire);
        ((deadline >> DEADLINE_BITS) == (word.epoch() & TAG_MASK))
            .then(|| (deadline & DEADLINE_MASK) * NANOS_PER_MILLI)
    }

    fn clear_counts(&self) {
        self.consecutive.store(0, Relaxed);
        for cell in self.window.iter() {
            cell.store(0, Relaxed);
        }
        self.recorded.store(0, Relaxed);
    }
}

/// Model-checked with loom: `cargo test -p telemark-runtime --features loom --lib loom`.
#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use std::sync::Arc;

    use loom::thread;

    use super::*;

    const MS: u64 = 1_000_000;

    fn config(trials: u32) -> BreakerConfig {
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(std::time::Duration::from_millis(10))
            .half_open_calls(trials)
    }

    /// An open breaker whose open duration is over at `10 * MS`.
    fn opened(config: &BreakerConfig) -> Arc<Core> {
        let core = Arc::new(Core::new(config));
        let (ticket, _) = core.acquire(config, || 0).unwrap();
        core.record(config, ticket, Verdict::Failure, false, || 0);
        assert_eq!(core.state(), BreakerState::Open);
        core
    }

    #[test]
    fn racing_callers_after_the_open_duration_get_one_trial() {
        loom::model(|| {
            let config = config(1);
            let core = opened(&config);
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let core = Arc::clone(&core);
                    thread::spawn(move || core.acquire(&config, || 10 * MS).is_ok())
                })
                .collect();
            let admitted = racers
                .into_iter()
                .map(|racer| racer.join().unwrap())
                .filter(|admitted| *admitted)
                .count();
            assert_eq!(admitted, 1);
            assert_eq!(core.state(), BreakerState::HalfOpen);
            assert_eq!(core.trials(), (1, 0));
        });
    }

    #[test]
    fn half_open_never_admits_more_than_its_trials() {
        loom::model(|| {
            let config = config(2);
            let core = opened(&config);
            let (first, _) = core.acquire(&config, || 10 * MS).unwrap();
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let core = Arc::clone(&core);
                    thread::spawn(move || core.acquire(&config, || 10 * MS).ok())
                })
                .collect();
            let tickets: Vec<Ticket> = racers
                .into_iter()
                .filter_map(|racer| racer.join().unwrap())
                .map(|(ticket, _)| ticket)
                .collect();
            assert_eq!(tickets.len(), 1);
            assert_eq!(core.trials(), (2, 0));
            core.record(&config, first, Verdict::Success, false, || 10 * MS);
            core.record(&config, tickets[0], Verdict::Success, false, || 10 * MS);
            assert_eq!(core.state(), BreakerState::Closed);
        });
    }

    #[test]
    fn a_late_closed_failure_racing_the_closing_trial_leaves_a_consistent_state() {
        loom::model(|| {
            let config = BreakerConfig::new()
                .consecutive_failures(2)
                .open_for(std::time::Duration::from_millis(10));
            let core = Arc::new(Core::new(&config));
            let (late, _) = core.acquire(&config, || 0).unwrap();
            for _ in 0..2 {
                let (ticket, _) = core.acquire(&config, || 0).unwrap();
                core.record(&config, ticket, Verdict::Failure, false, || 0);
            }
            let (trial, _) = core.acquire(&config, || 10 * MS).unwrap();
            let closer = {
                let core = Arc::clone(&core);
                thread::spawn(move || {
                    core.record(&config, trial, Verdict::Success, false, || 10 * MS)
                })
            };
            let stale = {
                let core = Arc::clone(&core);
                thread::spawn(move || {
                    core.record(&config, late, Verdict::Failure, false, || 10 * MS)
                })
            };
            assert_eq!(
                closer.join().unwrap(),
                Some((BreakerState::HalfOpen, BreakerState::Closed))
            );
            assert_eq!(stale.join().unwrap(), None);
            assert_eq!(core.state(), BreakerState::Closed);
            assert_eq!(core.consecutive_failures(), 0);
        });
    }

    #[test]
    fn two_failures_racing_to_trip_open_the_breaker_once() {
        loom::model(|| {
            let config = BreakerConfig::new()
                .consecutive_failures(1)
                .open_for(std::time::Duration::from_millis(10));
            let core = Arc::new(Core::new(&config));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let core = Arc::clone(&core);
                    let (ticket, _) = core.acquire(&config, || 0).unwrap();
                    thread::spawn(move || {
                        core.record(&config, ticket, Verdict::Failure, false, || 0)
                    })
                })
                .collect();
            let changes = racers
                .into_iter()
                .filter_map(|racer| racer.join().unwrap())
                .count();
            assert_eq!(changes, 1);
            assert_eq!(core.state(), BreakerState::Open);
            // The deadline is published for the open state's epoch.
            assert_eq!(core.next_trial_in(0), Some(10 * MS));
        });
    }

    #[test]
    fn a_delayed_deadline_write_never_hides_a_later_states_deadline() {
        loom::model(|| {
            let config = config(2);
            let core = opened(&config);
            // One caller starts the half-open round (and publishes its
            // deadline); another takes the second trial and fails it,
            // reopening the breaker, possibly before the first publishes.
            let starter = {
                let core = Arc::clone(&core);
                thread::spawn(move || core.acquire(&config, || 10 * MS).ok().map(|(t, _)| t))
            };
            let failer = {
                let core = Arc::clone(&core);
                thread::spawn(move || {
                    if let Ok((ticket, _)) = core.acquire(&config, || 10 * MS) {
                        core.record(&config, ticket, Verdict::Failure, false, || 10 * MS);
                    }
                })
            };
            starter.join().unwrap();
            failer.join().unwrap();
            let word = Word(core.word.load(Acquire));
            if matches!(word.state(), BreakerState::Open | BreakerState::HalfOpen) {
                assert!(
                    core.deadline_of(word).is_some(),
                    "the current state has its deadline"
                );
            }
        });
    }

    #[test]
    fn a_caller_never_sees_an_open_state_without_refusing_or_trying() {
        loom::model(|| {
            let config = config(1);
            let core = Arc::new(Core::new(&config));
            let (ticket, _) = core.acquire(&config, || 0).unwrap();
            let opener = {
                let core = Arc::clone(&core);
                thread::spawn(move || core.record(&config, ticket, Verdict::Failure, false, || 0))
            };
            // Concurrently, a caller long after the open duration: it is
            // admitted (closed, or a trial) or refused while the deadline is
            // unpublished, never stuck.
            let caller = {
                let core = Arc::clone(&core);
                thread::spawn(move || core.acquire(&config, || 20 * MS).map(|(t, _)| t.kind()))
            };
            opener.join().unwrap();
            match caller.join().unwrap() {
                Ok(PermitKind::Closed) | Ok(PermitKind::Trial) => {}
                Ok(PermitKind::Bypass) => panic!("nothing disabled the breaker"),
                Err(refusal) => assert_eq!(refusal.state, BreakerState::Open),
            }
            // Afterwards the breaker admits a trial: not stuck.
            assert!(
                core.acquire(&config, || 20 * MS).is_ok() || core.state() == BreakerState::HalfOpen
            );
        });
    }
}
