//! The errors of the breaker subsystem: a refused or timed-out call, and a
//! configuration or retry policy that cannot work.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::core::BreakerState;

/// Why a call through a breaker did not produce the function's own result.
///
/// Functions under `#[circuit_breaker]` return `Err(E::from(error))` with
/// it, so their error type needs `From<BreakerError>` (`std::io::Error`,
/// `Box<dyn Error + Send + Sync>` and `anyhow::Error` already have it).
///
/// ```
/// use telemark_runtime::breaker::{BreakerError, BreakerState};
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

/// What a [`BreakerError`] says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerErrorKind {
    /// The breaker refused the call: it did not run.
    Rejected {
        /// The breaker's state when it refused.
        state: BreakerState,
        /// How long until an open breaker admits a trial call, when known.
        retry_after: Option<Duration>,
    },
    /// The call ran out of its `timeout` (it counts as a failure).
    Timeout {
        /// The timeout.
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

    /// What happened.
    pub fn kind(&self) -> BreakerErrorKind {
        self.kind
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

/// A breaker configuration that cannot work.
///
/// ```
/// use telemark_runtime::breaker::{BreakerConfig, BreakerConfigError};
///
/// let error = BreakerConfig::new().failure_rate(120).validate().unwrap_err();
/// assert_eq!(error, BreakerConfigError::RateOutOfRange { rule: "failure_rate", percent: 120 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerConfigError {
    /// `failure_rate` or `slow_call_rate` is not a percentage from 1 to 100.
    RateOutOfRange {
        /// The rule: `failure_rate` or `slow_call_rate`.
        rule: &'static str,
        /// The percentage given.
        percent: u8,
    },
    /// `slow_call_rate` without a `slow_call` threshold.
    SlowCallRateWithoutThreshold,
    /// No rule would ever open the breaker.
    NoTripRule,
    /// The window is empty or longer than [`MAX_WINDOW`](crate::limits::MAX_WINDOW).
    WindowOutOfRange {
        /// The window given, in calls.
        window: u32,
    },
    /// `min_calls` is zero or longer than the window.
    MinCallsOutOfRange {
        /// The minimum given.
        min_calls: u32,
        /// The window.
        window: u32,
    },
    /// `open_for` is zero.
    ZeroOpenDuration,
    /// `open_for_max` is shorter than `open_for`.
    OpenForMaxShorter,
    /// `half_open_calls` is zero or more than
    /// [`MAX_HALF_OPEN_CALLS`](crate::limits::MAX_HALF_OPEN_CALLS).
    HalfOpenCallsOutOfRange {
        /// The number given.
        calls: u32,
    },
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::limits::{MAX_HALF_OPEN_CALLS, MAX_WINDOW};
        f.write_str("invalid circuit breaker configuration: ")?;
        match self {
            BreakerConfigError::RateOutOfRange { rule, percent } => {
                write!(f, "{rule} is a percentage from 1 to 100, got {percent}")
            }
            BreakerConfigError::SlowCallRateWithoutThreshold => {
                f.write_str("slow_call_rate needs a slow_call threshold")
            }
            BreakerConfigError::NoTripRule => f.write_str(
                "no trip rule: set consecutive_failures, failure_rate or slow_call_rate",
            ),
            BreakerConfigError::WindowOutOfRange { window } => write!(
                f,
                "window must be from 1 to {MAX_WINDOW} calls, got {window}"
            ),
            BreakerConfigError::MinCallsOutOfRange { min_calls, window } => write!(
                f,
                "min_calls must be from 1 to the window ({window}), got {min_calls}"
            ),
            BreakerConfigError::ZeroOpenDuration => {
                f.write_str("open_for must be longer than zero")
            }
            BreakerConfigError::OpenForMaxShorter => {
                f.write_str("open_for_max must not be shorter than open_for")
            }
            BreakerConfigError::HalfOpenCallsOutOfRange { calls } => write!(
                f,
                "half_open_calls must be from 1 to {MAX_HALF_OPEN_CALLS}, got {calls}"
            ),
        }
    }
}

impl std::error::Error for BreakerConfigError {}

/// A breaker that cannot be registered under its name.
///
/// ```
/// use telemark_runtime::breaker::{BreakerConfig, BreakerRegistryError, CircuitBreaker};
///
/// CircuitBreaker::register(CircuitBreaker::new("geo", BreakerConfig::new()).unwrap()).unwrap();
/// let again = CircuitBreaker::register(CircuitBreaker::new("geo", BreakerConfig::new()).unwrap());
/// assert!(matches!(again, Err(BreakerRegistryError::NameTaken { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerRegistryError {
    /// [`CircuitBreaker::register`](super::CircuitBreaker::register): the name is taken.
    NameTaken {
        /// The breaker's name.
        name: String,
    },
    /// Two `#[circuit_breaker]` functions configure one breaker differently.
    Conflict {
        /// The breaker's name.
        breaker: String,
        /// The first function (`module::function`).
        first: String,
        /// The other function.
        second: String,
    },
}

impl fmt::Display for BreakerRegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerRegistryError::NameTaken { name } => {
                write!(f, "a circuit breaker named `{name}` is already registered")
            }
            BreakerRegistryError::Conflict {
                breaker,
                first,
                second,
            } => write!(
                f,
                "circuit breaker `{breaker}` is configured differently by `{first}` and \
                 `{second}`; configure it once and give the other functions only its name"
            ),
        }
    }
}

impl std::error::Error for BreakerRegistryError {}

/// A retry policy that cannot work.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::breaker::{Jitter, RetryPolicy, RetryPolicyError};
///
/// let policy = RetryPolicy::new(0, Duration::ZERO, Duration::ZERO, Jitter::None);
/// assert_eq!(policy.validate(), Err(RetryPolicyError::AttemptsOutOfRange { attempts: 0 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// Attempts must be from 1 to [`MAX_ATTEMPTS`](crate::limits::MAX_ATTEMPTS).
    AttemptsOutOfRange {
        /// The number given.
        attempts: u32,
    },
    /// The shortest backoff is longer than the longest.
    BackoffInverted {
        /// The shortest backoff given.
        min: Duration,
        /// The longest backoff given.
        max: Duration,
    },
}

impl fmt::Display for RetryPolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid retry policy: ")?;
        match self {
            RetryPolicyError::AttemptsOutOfRange { attempts } => write!(
                f,
                "attempts must be from 1 to {}, got {attempts}",
                crate::limits::MAX_ATTEMPTS
            ),
            RetryPolicyError::BackoffInverted { min, max } => write!(
                f,
                "the shortest backoff ({min:?}) is longer than the longest ({max:?})"
            ),
        }
    }
}

impl std::error::Error for RetryPolicyError {}
