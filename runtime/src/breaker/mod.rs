//! Circuit breakers: what `#[circuit_breaker]` calls through, and breakers
//! made and used directly.
//!
//! This folder owns:
//! - `core`: the lock-free state machine (closed, open, half-open, forced
//!   open, disabled) in one 64-bit word;
//! - `config`: the trip rules and timings, validated;
//! - `circuit`: [`CircuitBreaker`] itself: admitting calls, recording their
//!   outcomes, counts, transitions and listeners;
//! - `registry`: breakers by name;
//! - `retry`: backoff with jitter;
//! - `clock`: the system clock or a [`ManualClock`] for tests;
//! - `error`: [`BreakerError`] (a refused or timed-out call) and the
//!   configuration errors;
//! - `site`: what generated code calls, and the link-time slice of every
//!   `#[circuit_breaker]` function;
//! - `render`: the breakers' series on `/metrics` and their `/status`.
//!
//! ```
//! use telemark_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
//!
//! let breaker = CircuitBreaker::new("ledger", BreakerConfig::new().consecutive_failures(1)).unwrap();
//! breaker.acquire().unwrap().failure();
//! assert_eq!(breaker.state(), BreakerState::Open);
//! ```

mod circuit;
mod clock;
mod config;
pub(crate) mod core;
mod error;
mod registry;
pub(crate) mod render;
mod retry;
pub(crate) mod site;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use self::circuit::{BreakerStats, CircuitBreaker, Permit, Transition};
pub use self::clock::{BreakerClock, ManualClock};
pub use self::config::BreakerConfig;
pub use self::core::{BreakerState, Verdict};
pub use self::error::{
    BreakerConfigError, BreakerError, BreakerErrorKind, BreakerRegistryError, RetryPolicyError,
};
pub use self::retry::{Jitter, RetryPolicy};
