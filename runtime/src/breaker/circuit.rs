//! The breaker itself: admitting calls, recording their outcomes, counts,
//! transitions and listeners.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use opentelemetry::KeyValue;

use super::clock::{BreakerClock, ManualClock};
use super::config::BreakerConfig;
use super::core::{BreakerState, Change, Core, PermitKind, Refusal, Ticket, Verdict};
use super::error::{BreakerConfigError, BreakerError};
use crate::metrics::shard::{shard_index, SHARDS};
use crate::switch::is_enabled;
use crate::trace::event_on_current_span;

/// One state change of a breaker, as listeners see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<'a> {
    /// The breaker's name.
    pub breaker: &'a str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
}

/// The `outcome` label values of `circuit_breaker_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Rejected,
    Timeout,
    Ignored,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Rejected,
        Outcome::Timeout,
        Outcome::Ignored,
    ];

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Rejected => "rejected",
            Outcome::Timeout => "timeout",
            Outcome::Ignored => "ignored",
        }
    }
}

#[repr(align(128))]
#[derive(Default)]
struct OutcomeShard {
    outcomes: [AtomicU64; 5],
    slow: AtomicU64,
}

type Listener = Arc<dyn Fn(&Transition<'_>) + Send + Sync>;

/// A circuit breaker: closed, it lets calls through and counts failures;
/// open, it refuses them for a while; half-open, it admits a few trial
/// calls that decide whether it closes or opens again.
///
/// Breakers made by `#[circuit_breaker(name = "...")]` live in a registry and
/// can be looked up by name with [`CircuitBreaker::named`]; one can also be
/// made and used directly:
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker, ManualClock};
///
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::new("inventory", BreakerConfig::new().consecutive_failures(2))
///     .unwrap()
///     .with_manual_clock(clock.clone());
/// for _ in 0..2 {
///     breaker.acquire().unwrap().failure();
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.acquire().unwrap_err().is_rejected());
/// clock.advance(Duration::from_secs(30));
/// breaker.acquire().unwrap().success(); // the trial call
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
pub struct CircuitBreaker {
    name: Cow<'static, str>,
    config: BreakerConfig,
    core: Core,
    clock: BreakerClock,
    /// No slow-call rule: admitting and recording need no clock.
    timeless: bool,
    shards: Box<[OutcomeShard; SHARDS]>,
    transitions: [[AtomicU64; 5]; 5],
    listeners: RwLock<Vec<Listener>>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Permission to make one call; report how it went with
/// [`Permit::success`], [`Permit::failure`] or [`Permit::ignored`]. A permit
/// dropped without a report counts as a failure while a panic unwinds, and
/// as ignored otherwise (a cancelled future).
#[must_use = "report the call's result on the permit"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
    /// When the call started (the breaker's clock), for its slow-call
    /// rule, or [`UNTIMED`]: three words in all.
    started: u64,
}

/// `Permit::started` of a call that is not timed.
const UNTIMED: u64 = u64::MAX;

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("trial", &(self.ticket.kind() == PermitKind::Trial))
            .finish()
    }
}

impl Permit<'_> {
    #[inline(always)]
    fn started(&self) -> Option<u64> {
        (self.started != UNTIMED).then_some(self.started)
    }

    /// The call succeeded.
    pub fn success(self) {
        self.report(Verdict::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.report(Verdict::Failure);
    }

    /// The call's result says nothing about the dependency's health.
    pub fn ignored(self) {
        self.report(Verdict::Ignored);
    }

    /// Reports `verdict`.
    #[inline(always)]
    pub fn report(self, verdict: Verdict) {
        let permit = std::mem::ManuallyDrop::new(self);
        // The common case, a success while closed without a slow-call rule,
        // is inlined; everything else goes out of line.
        if verdict == Verdict::Success
            && permit.ticket.kind() == PermitKind::Closed
            && permit.started == UNTIMED
        {
            permit.breaker.closed_success(permit.ticket);
        } else {
            let outcome = match verdict {
                Verdict::Success => Outcome::Success,
                Verdict::Failure => Outcome::Failure,
                Verdict::Ignored => Outcome::Ignored,
            };
            permit
                .breaker
                .finish(permit.ticket, permit.started(), verdict, outcome);
        }
    }

    /// Reports a call that ran out of time: a failure.
    pub(crate) fn timed_out(self) {
        let permit = std::mem::ManuallyDrop::new(self);
        permit.breaker.finish(
            permit.ticket,
            permit.started(),
            Verdict::Failure,
            Outcome::Timeout,
        );
    }
}

/// Reached only for a permit dropped without a report. A panic in an
/// `async fn` drops the permit while unwinding too (the future's live
/// locals are dropped as the panic leaves its poll), so it counts as a
/// failure even when the executor catches the panic.
impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let (verdict, outcome) = if std::thread::panicking() {
            (Verdict::Failure, Outcome::Failure)
        } else {
            (Verdict::Ignored, Outcome::Ignored)
        };
        self.breaker
            .finish(self.ticket, self.started(), verdict, outcome);
    }
}

/// A breaker's counts, as `/status` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStats {
    /// The breaker's name.
    pub name: String,
    /// Its state now.
    pub state: BreakerState,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed (timeouts not included).
    pub failures: u64,
    /// Calls refused.
    pub rejected: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls whose error was ignored, or that were cancelled.
    pub ignored: u64,
    /// Calls at least as long as the slow-call threshold.
    pub slow: u64,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Calls in the sliding window (0 without rate rules).
    pub window_calls: u64,
    /// Failures in the sliding window.
    pub window_failures: u64,
    /// Slow calls in the sliding window.
    pub window_slow: u64,
    /// Half-open trial calls admitted so far.
    pub trials_admitted: u32,
    /// Half-open trial calls that succeeded so far.
    pub trials_succeeded: u32,
    /// While open: how long until a trial call is admitted.
    pub next_trial_in: Option<Duration>,
}

impl CircuitBreaker {
    /// A breaker outside the registry, on the system clock.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        config: BreakerConfig,
    ) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        Ok(CircuitBreaker {
            name: name.into(),
            config,
            core: Core::new(&config),
            clock: BreakerClock::System,
            timeless: config.slow_call_nanos == 0,
            shards: Box::default(),
            transitions: Default::default(),
            listeners: RwLock::new(Vec::new()),
        })
    }

    /// The same breaker reading time from `clock`.
    pub fn with_manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = BreakerClock::Manual(clock);
        self
    }

    /// The name (`breaker` label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules it follows.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Its state now.
    pub fn state(&self) -> BreakerState {
        self.core.state()
    }

    /// Asks to make a call: a [`Permit`] to report the result on, or the
    /// refusal.
    #[inline(always)]
    pub fn acquire(&self) -> Result<Permit<'_>, BreakerError> {
        // Closed without a slow-call rule: one load, no clock.
        if self.timeless {
            if let Some(epoch) = self.core.closed_epoch() {
                return Ok(Permit {
                    breaker: self,
                    ticket: Ticket::new(epoch, PermitKind::Closed),
                    started: UNTIMED,
                });
            }
        }
        self.acquire_slow()
    }

    #[inline(never)]
    fn acquire_slow(&self) -> Result<Permit<'_>, BreakerError> {
        match self.core.acquire(&self.config, || self.clock.now_nanos()) {
            Ok((ticket, change)) => {
                if let Some(change) = change {
                    self.transitioned(change);
                }
                let started = if self.timeless {
                    UNTIMED
                } else {
                    self.clock.now_nanos().min(UNTIMED - 1)
                };
                Ok(Permit {
                    breaker: self,
                    ticket,
                    started,
                })
            }
            Err(refusal) => Err(self.refused(refusal)),
        }
    }

    /// A success while closed: counted, and the failure streak (if any)
    /// ended out of line.
    #[inline(always)]
    fn closed_success(&self, ticket: Ticket) {
        if is_enabled() {
            self.shards[shard_index()].outcomes[Outcome::Success as usize].fetch_add(1, Relaxed);
        }
        if self.config.uses_window() || self.core.consecutive_failures() != 0 {
            self.record_closed_success(ticket);
        }
    }

    #[inline(never)]
    fn record_closed_success(&self, ticket: Ticket) {
        if let Some(change) =
            self.core
                .record(&self.config, ticket, Verdict::Success, false, || {
                    self.clock.now_nanos()
                })
        {
            self.transitioned(change);
        }
    }

    /// Calls `call` through the breaker: refused calls return the
    /// [`BreakerError`], others return `call`'s result, whose `Err` counts
    /// as a failure.
    ///
    /// ```
    /// use telemark_runtime::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("dns", BreakerConfig::new()).unwrap();
    /// let answer: Result<Result<u8, ()>, _> = breaker.call(|| Ok(42));
    /// assert_eq!(answer, Ok(Ok(42)));
    /// ```
    pub fn call<T, E>(
        &self,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, BreakerError> {
        let permit = self.acquire()?;
        let result = call();
        permit.report(if result.is_ok() {
            Verdict::Success
        } else {
            Verdict::Failure
        });
        Ok(result)
    }

    #[cold]
    #[inline(never)]
    fn refused(&self, refusal: Refusal) -> BreakerError {
        self.count(Outcome::Rejected);
        if is_enabled() {
            event_on_current_span(
                "circuit_breaker.rejected",
                vec![
                    KeyValue::new("circuit_breaker.name", self.name.to_string()),
                    KeyValue::new("circuit_breaker.state", refusal.state.label()),
                ],
            );
        }
        BreakerError::rejected(
            self.name.clone(),
            refusal.state,
            refusal.retry_after.map(Duration::from_nanos),
        )
    }

    #[inline(never)]
    fn finish(&self, ticket: Ticket, started: Option<u64>, verdict: Verdict, outcome: Outcome) {
        let slow = started.is_some_and(|started| {
            ticket.kind() != PermitKind::Bypass
                && self.clock.now_nanos().saturating_sub(started) >= self.config.slow_call_nanos
        });
        if is_enabled() {
            let shard = &self.shards[shard_index()];
            shard.outcomes[outcome as usize].fetch_add(1, Relaxed);
            if slow {
                shard.slow.fetch_add(1, Relaxed);
            }
        }
        if let Some(change) = self.core.record(&self.config, ticket, verdict, slow, || {
            self.clock.now_nanos()
        }) {
            self.transitioned(change);
        }
    }

    fn count(&self, outcome: Outcome) {
        if is_enabled() {
            self.shards[shard_index()].outcomes[outcome as usize].fetch_add(1, Relaxed);
        }
    }

    #[cold]
    fn transitioned(&self, (from, to): Change) {
        self.transitions[from.index()][to.index()].fetch_add(1, Relaxed);
        if is_enabled() {
            event_on_current_span(
                "circuit_breaker.transition",
                vec![
                    KeyValue::new("circuit_breaker.name", self.name.to_string()),
                    KeyValue::new("circuit_breaker.from", from.label()),
                    KeyValue::new("circuit_breaker.to", to.label()),
                ],
            );
        }
        let listeners: Vec<Listener> = self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let transition = Transition {
            breaker: &self.name,
            from,
            to,
        };
        for listener in listeners {
            // A listener's panic must not reach the caller of the function.
            let _ =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&transition)));
        }
    }

    /// Calls `listener` on every state change, on the thread that made it.
    /// A panicking listener is ignored.
    ///
    /// ```
    /// use telemark_runtime::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("mail", BreakerConfig::new()).unwrap();
    /// breaker.on_transition(|t| println!("{}: {} -> {}", t.breaker, t.from, t.to));
    /// breaker.force_open();
    /// ```
    pub fn on_transition(&self, listener: impl Fn(&Transition<'_>) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
    }

    /// Refuses every call until [`CircuitBreaker::reset`].
    pub fn force_open(&self) {
        self.force(BreakerState::ForcedOpen);
    }

    /// Lets every call through, recording nothing for the trip rules, until
    /// [`CircuitBreaker::reset`].
    pub fn disable(&self) {
        self.force(BreakerState::Disabled);
    }

    /// Closes the breaker and clears its failure counts.
    pub fn reset(&self) {
        self.force(BreakerState::Closed);
    }

    fn force(&self, state: BreakerState) {
        if let Some(change) = self.core.force(state) {
            self.transitioned(change);
        }
    }

    /// State changes from `from` to `to` so far.
    pub fn transitions(&self, from: BreakerState, to: BreakerState) -> u64 {
        self.transitions[from.index()][to.index()].load(Relaxed)
    }

    /// Its counts now.
    pub fn stats(&self) -> BreakerStats {
        let (outcomes, slow) = self.outcome_counts();
        let window = self.core.window_counts(&self.config);
        let (trials_admitted, trials_succeeded) = self.core.trials();
        BreakerStats {
            name: self.name.to_string(),
            state: self.state(),
            successes: outcomes[Outcome::Success as usize],
            failures: outcomes[Outcome::Failure as usize],
            rejected: outcomes[Outcome::Rejected as usize],
            timeouts: outcomes[Outcome::Timeout as usize],
            ignored: outcomes[Outcome::Ignored as usize],
            slow,
            consecutive_failures: self.core.consecutive_failures(),
            window_calls: window.calls,
            window_failures: window.failures,
            window_slow: window.slow,
            trials_admitted,
            trials_succeeded,
            next_trial_in: self
                .core
                .next_trial_in(self.clock.now_nanos())
                .map(Duration::from_nanos),
        }
    }

    /// Calls by outcome (in `Outcome::ALL` order) and slow calls, summed
    /// over the shards in one pass.
    pub(crate) fn outcome_counts(&self) -> ([u64; 5], u64) {
        let mut outcomes = [0u64; 5];
        let mut slow = 0;
        for shard in self.shards.iter() {
            for (total, cell) in outcomes.iter_mut().zip(&shard.outcomes) {
                *total += cell.load(Relaxed);
            }
            slow += shard.slow.load(Relaxed);
        }
        (outcomes, slow)
    }
}
