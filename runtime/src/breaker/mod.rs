//! Circuit breakers: the state machine ([`core`]), its rules ([`config`]),
//! retry with backoff ([`retry`]), the named registry and what generated
//! code calls ([`site`]).

pub(crate) mod config;
pub(crate) mod core;
#[cfg(test)]
mod model_tests;
pub(crate) mod retry;
pub(crate) mod site;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use opentelemetry::KeyValue;

pub use self::config::{BreakerConfig, BreakerConfigError, MAX_WINDOW};
pub use self::core::{BreakerState, Verdict, MAX_HALF_OPEN_CALLS};
use self::core::{Change, Core, PermitKind, Refusal, Ticket};
pub use self::retry::{Jitter, RetryPolicy};
use crate::shard::{shard_index, SHARDS};
use crate::switch::is_enabled;
use crate::trace::span::event_on_current_span;

/// Where a breaker reads the time.
///
/// The system clock is monotonic; a [`ManualClock`] moves only when a test
/// moves it, which makes every transition deterministic.
#[derive(Clone, Debug, Default)]
pub enum BreakerClock {
    /// The process's monotonic clock.
    #[default]
    System,
    /// A clock under the caller's control.
    Manual(ManualClock),
}

impl BreakerClock {
    /// Nanoseconds since an arbitrary origin.
    pub fn now_nanos(&self) -> u64 {
        match self {
            BreakerClock::System => {
                static ORIGIN: OnceLock<quanta::Instant> = OnceLock::new();
                let now = crate::site::clock().now();
                let origin = *ORIGIN.get_or_init(|| now);
                u64::try_from(now.duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
            }
            BreakerClock::Manual(clock) => clock.now_nanos(),
        }
    }
}

/// A clock that stands still until advanced, for deterministic tests of
/// breaker timings.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::ManualClock;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now_nanos(), 1_500_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Relaxed);
    }

    /// The time in nanoseconds since the clock was made.
    pub fn now_nanos(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Why a call through a breaker did not produce the function's own result.
///
/// Functions under `#[circuit_breaker]` return `Err(E::from(error))` with
/// it, so their error type needs `From<BreakerError>` (`std::io::Error`,
/// `Box<dyn Error + Send + Sync>` and `anyhow::Error` already have it).
///
/// ```
/// use telemark_runtime::{BreakerError, BreakerState};
///
/// let refusal = BreakerError::rejected("payments", BreakerState::Open, None);
/// assert!(refusal.is_rejected());
/// assert_eq!(refusal.breaker(), "payments");
/// let error: std::io::Error = refusal.into();
/// assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerError {
    breaker: Cow<'static, str>,
    kind: BreakerErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BreakerErrorKind {
    Rejected {
        state: BreakerState,
        retry_after: Option<Duration>,
    },
    Timeout {
        after: Duration,
    },
}

impl BreakerError {
    /// A refusal by a breaker in `state`.
    pub fn rejected(
        breaker: impl Into<Cow<'static, str>>,
        state: BreakerState,
        retry_after: Option<Duration>,
    ) -> Self {
        BreakerError {
            breaker: breaker.into(),
            kind: BreakerErrorKind::Rejected { state, retry_after },
        }
    }

    /// A call that ran out of time.
    pub fn timeout(breaker: impl Into<Cow<'static, str>>, after: Duration) -> Self {
        BreakerError {
            breaker: breaker.into(),
            kind: BreakerErrorKind::Timeout { after },
        }
    }

    /// The breaker's name.
    pub fn breaker(&self) -> &str {
        &self.breaker
    }

    /// Whether the breaker refused the call (it did not run).
    pub fn is_rejected(&self) -> bool {
        matches!(self.kind, BreakerErrorKind::Rejected { .. })
    }

    /// Whether the call ran out of its `timeout` (it counts as a failure).
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, BreakerErrorKind::Timeout { .. })
    }

    /// The breaker's state when it refused the call.
    pub fn state(&self) -> Option<BreakerState> {
        match self.kind {
            BreakerErrorKind::Rejected { state, .. } => Some(state),
            BreakerErrorKind::Timeout { .. } => None,
        }
    }

    /// How long until an open breaker admits a trial call, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            BreakerErrorKind::Rejected { retry_after, .. } => retry_after,
            BreakerErrorKind::Timeout { .. } => None,
        }
    }
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.breaker;
        match &self.kind {
            BreakerErrorKind::Rejected {
                state: BreakerState::HalfOpen,
                ..
            } => write!(
                f,
                "circuit breaker `{name}` refused the call: its half-open trial calls are taken"
            ),
            BreakerErrorKind::Rejected {
                state,
                retry_after: Some(after),
            } => write!(
                f,
                "circuit breaker `{name}` is {state}; trial calls in {after:?}"
            ),
            BreakerErrorKind::Rejected { state, .. } => {
                write!(f, "circuit breaker `{name}` is {state}")
            }
            BreakerErrorKind::Timeout { after } => {
                write!(
                    f,
                    "call through circuit breaker `{name}` timed out after {after:?}"
                )
            }
        }
    }
}

impl std::error::Error for BreakerError {}

impl From<BreakerError> for std::io::Error {
    fn from(error: BreakerError) -> Self {
        let kind = if error.is_timeout() {
            std::io::ErrorKind::TimedOut
        } else {
            std::io::ErrorKind::ConnectionRefused
        };
        std::io::Error::new(kind, error)
    }
}

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
/// use telemark_runtime::{BreakerConfig, BreakerState, CircuitBreaker, ManualClock};
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
    started: Option<u64>,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("trial", &(self.ticket.kind == PermitKind::Trial))
            .finish()
    }
}

impl Permit<'_> {
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
            && permit.ticket.kind == PermitKind::Closed
            && permit.started.is_none()
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
                .finish(permit.ticket, permit.started, verdict, outcome);
        }
    }

    /// Reports a call that ran out of time: a failure.
    pub(crate) fn timed_out(self) {
        let permit = std::mem::ManuallyDrop::new(self);
        permit.breaker.finish(
            permit.ticket,
            permit.started,
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
            .finish(self.ticket, self.started, verdict, outcome);
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

    /// Registers a breaker under its name, so `#[circuit_breaker(name = ...)]`
    /// functions with that name use it (their own options are then not
    /// used) and [`CircuitBreaker::named`] finds it. Fails if the name is
    /// taken: register before the first call.
    ///
    /// ```
    /// use telemark_runtime::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("search-index", BreakerConfig::new()).unwrap();
    /// let registered = CircuitBreaker::register(breaker).unwrap();
    /// assert!(std::ptr::eq(registered, CircuitBreaker::named("search-index").unwrap()));
    /// ```
    pub fn register(
        breaker: CircuitBreaker,
    ) -> Result<&'static CircuitBreaker, BreakerConfigError> {
        let mut registry = registry().lock().unwrap_or_else(|e| e.into_inner());
        if registry.iter().any(|known| known.name == breaker.name) {
            return Err(BreakerConfigError(format!(
                "a circuit breaker named `{}` is already registered",
                breaker.name
            )));
        }
        let registered: &'static CircuitBreaker = Box::leak(Box::new(breaker));
        registry.push(registered);
        Ok(registered)
    }

    /// The registered breaker with this name: one registered in code, or
    /// one that `#[circuit_breaker]` functions of this program declare
    /// (created on first use, before their first call if need be).
    pub fn named(name: &str) -> Option<&'static CircuitBreaker> {
        if let Some(found) = lookup(name) {
            return Some(found);
        }
        let site = site::sites().find(|site| site.breaker_name() == name)?;
        Some(site.breaker())
    }

    /// Every registered breaker, sorted by name (those declared by
    /// `#[circuit_breaker]` functions included).
    pub fn all() -> Vec<&'static CircuitBreaker> {
        for site in site::sites() {
            site.breaker();
        }
        let mut all = registry().lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
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
                    ticket: Ticket {
                        epoch,
                        kind: PermitKind::Closed,
                    },
                    started: None,
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
                let started = (!self.timeless).then(|| self.clock.now_nanos());
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
    /// use telemark_runtime::{BreakerConfig, CircuitBreaker};
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
        BreakerError {
            breaker: self.name.clone(),
            kind: BreakerErrorKind::Rejected {
                state: refusal.state,
                retry_after: refusal.retry_after.map(Duration::from_nanos),
            },
        }
    }

    #[inline(never)]
    fn finish(&self, ticket: Ticket, started: Option<u64>, verdict: Verdict, outcome: Outcome) {
        let slow = started.is_some_and(|started| {
            ticket.kind != PermitKind::Bypass
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
    /// use telemark_runtime::{BreakerConfig, CircuitBreaker};
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
        let mut outcomes = [0u64; 5];
        let mut slow = 0;
        for shard in self.shards.iter() {
            for (total, cell) in outcomes.iter_mut().zip(&shard.outcomes) {
                *total += cell.load(Relaxed);
            }
            slow += shard.slow.load(Relaxed);
        }
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

    pub(crate) fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.outcomes[outcome as usize].load(Relaxed))
            .sum()
    }
}

fn registry() -> &'static Mutex<Vec<&'static CircuitBreaker>> {
    static REGISTRY: Mutex<Vec<&'static CircuitBreaker>> = Mutex::new(Vec::new());
    &REGISTRY
}

fn lookup(name: &str) -> Option<&'static CircuitBreaker> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .find(|breaker| breaker.name == name)
}

/// Registers the breaker `name` from `config` unless it exists.
pub(crate) fn get_or_register(
    name: &'static str,
    config: impl FnOnce() -> BreakerConfig,
) -> &'static CircuitBreaker {
    let mut registry = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = registry.iter().copied().find(|b| b.name == name) {
        return found;
    }
    let config = config();
    // Generated code only passes configurations the macro validated.
    let breaker = CircuitBreaker::new(name, config).unwrap_or_else(|_| {
        CircuitBreaker::new(name, BreakerConfig::new()).expect("the default configuration is valid")
    });
    let registered: &'static CircuitBreaker = Box::leak(Box::new(breaker));
    registry.push(registered);
    registered
}
