//! What `#[circuit_breaker]` generates code against (hidden API).

#![allow(missing_docs)] // hidden API for generated code

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use opentelemetry::KeyValue;

use linkme::distributed_slice;

use super::circuit::{CircuitBreaker, Permit};
use super::config::BreakerConfig;
use super::core::Verdict;
use super::error::{BreakerError, BreakerRegistryError};
use super::registry::get_or_register;
use super::retry::RetryPolicy;
use crate::clock::clock;
use crate::rng::random_u64;
use crate::site::SiteInfo;
use crate::switch::is_enabled;
use crate::trace::event_on_current_span;

/// Every `#[circuit_breaker]` function linked into the program.
#[doc(hidden)]
#[distributed_slice]
pub static BREAKER_SITES: [&'static BreakerSite];

/// One `#[circuit_breaker]` function.
pub struct BreakerSite {
    pub info: SiteInfo,
    name: &'static str,
    /// `None` when the attribute set no rule and follows the other
    /// functions sharing the name.
    config: Option<BreakerConfig>,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    breaker: OnceLock<&'static CircuitBreaker>,
    retries: AtomicU64,
}

impl BreakerSite {
    pub const fn new(
        info: SiteInfo,
        name: &'static str,
        config: Option<BreakerConfig>,
        retry: Option<RetryPolicy>,
        timeout: Option<Duration>,
    ) -> Self {
        // In a `static`'s initialiser, a configuration or policy outside
        // the runtime's limits fails the build.
        if let Some(config) = &config {
            assert!(
                config.is_valid(),
                "#[circuit_breaker] configuration outside telemark's limits"
            );
        }
        if let Some(retry) = &retry {
            assert!(
                retry.validate().is_ok(),
                "#[circuit_breaker] retry policy outside telemark's limits"
            );
        }
        BreakerSite {
            info,
            name,
            config,
            retry,
            timeout,
            breaker: OnceLock::new(),
            retries: AtomicU64::new(0),
        }
    }

    /// The breaker this function calls through.
    #[inline(always)]
    pub fn breaker(&'static self) -> &'static CircuitBreaker {
        match self.breaker.get() {
            Some(breaker) => breaker,
            None => self.resolve(),
        }
    }

    #[cold]
    #[inline(never)]
    fn resolve(&'static self) -> &'static CircuitBreaker {
        let breaker = get_or_register(self.name, || shared_config(self.name));
        self.breaker.get_or_init(|| breaker)
    }

    /// Asks the breaker to admit a call.
    #[inline(always)]
    pub fn enter(&'static self) -> Result<Permit<'static>, BreakerError> {
        self.breaker().acquire()
    }

    pub fn breaker_name(&self) -> &'static str {
        self.name
    }

    pub fn retry_policy(&self) -> Option<RetryPolicy> {
        self.retry
    }

    /// Retries made so far (attempts after the first).
    pub fn retries(&self) -> u64 {
        self.retries.load(Relaxed)
    }
}

/// Every `#[circuit_breaker]` function linked into the program.
pub(crate) fn breaker_sites() -> impl Iterator<Item = &'static BreakerSite> {
    BREAKER_SITES.iter().copied()
}

/// The configuration functions sharing `name` agree on: the one set by the
/// first function (by module and name) that sets one, else the default.
fn shared_config(name: &str) -> BreakerConfig {
    let mut configured: Vec<&BreakerSite> = breaker_sites()
        .filter(|site| site.name == name && site.config.is_some())
        .collect();
    configured.sort_by_key(|site| (site.info.module, site.info.function));
    configured
        .first()
        .and_then(|site| site.config)
        .unwrap_or_default()
}

/// Checks that functions sharing a breaker name do not configure it
/// differently (`Telemetry` start-up runs this).
pub fn check_breaker_sites() -> Result<(), BreakerRegistryError> {
    let all: Vec<&BreakerSite> = breaker_sites().collect();
    for (i, site) in all.iter().enumerate() {
        let Some(config) = site.config else { continue };
        for other in &all[i + 1..] {
            if other.name == site.name && other.config.is_some_and(|c| c != config) {
                return Err(BreakerRegistryError::Conflict {
                    breaker: site.name.to_owned(),
                    first: format!("{}::{}", site.info.module, site.info.function),
                    second: format!("{}::{}", other.info.module, other.info.function),
                });
            }
        }
    }
    Ok(())
}

/// A function's `Result` return type, whose `Err` the breaker judges.
pub trait BreakerResult {
    type Error;
    fn breaker_error(&self) -> Option<&Self::Error>;
}

impl<T, E> BreakerResult for Result<T, E> {
    type Error = E;

    #[inline(always)]
    fn breaker_error(&self) -> Option<&E> {
        self.as_ref().err()
    }
}

/// Turns a refusal into the function's `Err(E)`: `Refusal::<E>::NEW.result(error)`.
/// Through `E: From<BreakerError>` when it holds; otherwise method
/// resolution reaches [`CannotCarry`]'s `result`, whose bound
/// [`CarriesRefusal`] names the problem in the compiler's error.
pub struct Refusal<E>(PhantomData<E>);

impl<E> Refusal<E> {
    pub const NEW: Self = Refusal(PhantomData);
}

impl<E: From<BreakerError>> Refusal<E> {
    #[inline]
    pub fn result<T>(&self, error: BreakerError) -> Result<T, E> {
        Err(E::from(error))
    }
}

/// Where a [`Refusal`] of an error type without `From<BreakerError>` leads.
pub struct CannotCarry<E>(PhantomData<E>);

impl<E> std::ops::Deref for Refusal<E> {
    type Target = CannotCarry<E>;

    fn deref(&self) -> &CannotCarry<E> {
        &CannotCarry(PhantomData)
    }
}

impl<E> CannotCarry<E> {
    pub fn result<T>(&self, error: BreakerError) -> Result<T, E>
    where
        E: CarriesRefusal,
    {
        Err(E::carry(error))
    }
}

/// An error type that can carry a breaker's refusal other than through
/// `From<BreakerError>` (telemark implements it for no type: its purpose is
/// the message below, when `From<BreakerError>` is missing).
#[diagnostic::on_unimplemented(
    message = "`#[circuit_breaker]` cannot return a refusal as `{Self}`: `{Self}` does not implement `From<telemark::BreakerError>`",
    label = "the error type must implement `From<telemark::BreakerError>`",
    note = "implement `From<telemark::BreakerError>` for it, or use an error type that has it: `Box<dyn std::error::Error + Send + Sync>`, `std::io::Error`, `anyhow::Error`"
)]
pub trait CarriesRefusal {
    fn carry(error: BreakerError) -> Self;
}

/// Reports a finished call on its permit; `classify` judges an `Err`.
#[inline(always)]
pub fn finish<R: BreakerResult>(
    permit: Permit<'_>,
    value: &R,
    classify: impl FnOnce(&R::Error) -> Verdict,
) -> Verdict {
    let verdict = match value.breaker_error() {
        None => Verdict::Success,
        Some(error) => classify(error),
    };
    permit.report(verdict);
    verdict
}

/// The default judgement: every `Err` is a failure.
#[inline(always)]
pub fn every_error_fails<E>(_: &E) -> Verdict {
    Verdict::Failure
}

/// `ignore_if` / `failure_if` as a judgement.
#[inline(always)]
pub fn judge<E>(
    error: &E,
    ignore_if: Option<fn(&E) -> bool>,
    failure_if: Option<fn(&E) -> bool>,
) -> Verdict {
    if ignore_if.is_some_and(|ignore| ignore(error)) {
        Verdict::Ignored
    } else if failure_if.is_none_or(|fails| fails(error)) {
        Verdict::Failure
    } else {
        Verdict::Success
    }
}

/// One attempt of an `async fn` under its breaker: the body's future,
/// bounded by the function's `timeout`, counted from now.
#[inline(always)]
pub fn attempt<F: Future>(
    site: &'static BreakerSite,
    permit: Permit<'static>,
    future: F,
) -> Attempt<F> {
    Attempt {
        future,
        timer: None,
        started: clock().raw(),
        permit: Some(permit),
        site,
    }
}

pin_project_lite::pin_project! {
    /// Resolves to the body's output with the permit to report it on, or to
    /// the timeout error (already reported as a failure). Dropped before
    /// that (cancelled), its permit counts the call as ignored.
    pub struct Attempt<F> {
        #[pin]
        future: F,
        // The timeout's tokio timer, made (boxed) only when the body's
        // future first waits: an attempt that completes in its first poll
        // makes none, and the call's future carries a pointer, not a timer.
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        // When the attempt started, in clock ticks.
        started: u64,
        permit: Option<Permit<'static>>,
        site: &'static BreakerSite,
    }
}

impl<F: Future> Future for Attempt<F> {
    type Output = Result<(Permit<'static>, F::Output), BreakerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.permit.is_none() {
            return Poll::Pending; // finished: polled again by mistake
        }
        if let Poll::Ready(output) = this.future.poll(cx) {
            let permit = this.permit.take().expect("checked above");
            return Poll::Ready(Ok((permit, output)));
        }
        let site = *this.site;
        let Some(limit) = site.timeout else {
            return Poll::Pending;
        };
        if this.timer.is_none() {
            // What is left of the timeout since the attempt started, in
            // whole milliseconds (tokio's timers' resolution: on a paused
            // tokio clock, a first poll shorter than a millisecond of real
            // time leaves the whole timeout). Without a tokio runtime with
            // timers here, no timeout applies.
            let nanos = clock().delta_as_nanos(*this.started, clock().raw());
            let elapsed = Duration::from_millis(nanos / 1_000_000);
            *this.timer = tokio_timer(limit.saturating_sub(elapsed)).map(Box::pin);
        }
        let Some(timer) = this.timer.as_mut() else {
            return Poll::Pending;
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(permit) = this.permit.take() {
            permit.timed_out();
        }
        if is_enabled() {
            event_on_current_span(
                "circuit_breaker.timeout",
                vec![
                    KeyValue::new("circuit_breaker.name", site.name),
                    KeyValue::new("circuit_breaker.timeout_ms", limit.as_millis() as i64),
                ],
            );
        }
        Poll::Ready(Err(BreakerError::timeout(site.name, limit)))
    }
}

/// One attempt of an `async fn` whose breaker has no `timeout`: the body's
/// future and the permit, with no timer, so that the function's future
/// stays small (a tokio timer is larger than most bodies' futures, and the
/// whole attempt is moved into the caller's future on every call).
pub fn attempt_untimed<F: Future>(permit: Permit<'static>, future: F) -> UntimedAttempt<F> {
    UntimedAttempt {
        future,
        permit: Some(permit),
    }
}

pin_project_lite::pin_project! {
    /// Resolves to the permit to report on, with the body's output (it
    /// cannot time out). Dropped before that (cancelled), its permit counts
    /// the call as ignored.
    pub struct UntimedAttempt<F> {
        #[pin]
        future: F,
        permit: Option<Permit<'static>>,
    }
}

impl<F: Future> Future for UntimedAttempt<F> {
    type Output = (Permit<'static>, F::Output);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.permit.is_none() {
            return Poll::Pending; // finished: polled again by mistake
        }
        let output = std::task::ready!(this.future.poll(cx));
        match this.permit.take() {
            Some(permit) => Poll::Ready((permit, output)),
            None => Poll::Pending, // unreachable: checked above
        }
    }
}

/// Set once a tokio runtime without timers was met: from then on, timeouts
/// and retry delays are skipped instead of panicking again.
static TIMERS_MISSING: AtomicBool = AtomicBool::new(false);

/// A tokio sleep, if this thread runs in a tokio runtime with timers.
fn tokio_timer(duration: Duration) -> Option<tokio::time::Sleep> {
    if TIMERS_MISSING.load(Relaxed) || tokio::runtime::Handle::try_current().is_err() {
        return None;
    }
    // A runtime built without `enable_time()` panics when a timer is made.
    match std::panic::catch_unwind(|| tokio::time::sleep(duration)) {
        Ok(sleep) => Some(sleep),
        Err(_) => {
            if !TIMERS_MISSING.swap(true, Relaxed) {
                eprintln!(
                    "telemark: this tokio runtime has no timers (enable_time): \
                     #[circuit_breaker] timeouts and retry delays are not applied"
                );
            }
            None
        }
    }
}

/// Counts the attempts of one call with `retry(...)`.
pub struct Attempts {
    site: &'static BreakerSite,
    made: u32,
}

impl Attempts {
    #[inline(always)]
    pub fn new(site: &'static BreakerSite) -> Self {
        Attempts { site, made: 1 }
    }

    /// After an attempt that ended with `verdict`: how long to wait before
    /// the next one, or `None` to return this attempt's result. Only
    /// failures are retried, while attempts remain.
    #[inline]
    pub fn next(&mut self, verdict: Verdict) -> Option<Duration> {
        let policy = self.site.retry?;
        if verdict != Verdict::Failure || self.made >= policy.attempts() {
            return None;
        }
        let delay = policy.delay(self.made, random_u64());
        self.made += 1;
        if is_enabled() {
            self.site.retries.fetch_add(1, Relaxed);
            event_on_current_span(
                "circuit_breaker.retry",
                vec![
                    KeyValue::new("circuit_breaker.name", self.site.name),
                    KeyValue::new("retry.attempt", i64::from(self.made)),
                    KeyValue::new("retry.delay_ms", delay.as_millis() as i64),
                ],
            );
        }
        Some(delay)
    }
}

/// Waits before a retry in a synchronous function.
pub fn sleep_blocking(delay: Duration) {
    std::thread::sleep(delay);
}

/// Waits before a retry in an `async fn`, on tokio's timer (which tests can
/// pause); outside a tokio runtime with timers it does not wait.
pub async fn sleep(delay: Duration) {
    if let Some(timer) = tokio_timer(delay) {
        timer.await;
    }
}
