//! A circuit breaker in front of a flaky dependency.
//!
//! A simulated pricing service is healthy, then goes down, then hangs, then
//! recovers. Calls go through `#[circuit_breaker]` with a timeout and retry;
//! every state change is printed as it happens, and the breaker's metrics at
//! the end.
//!
//! ```text
//! cargo run --example breaker
//! ```

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

use telemark::{circuit_breaker, BreakerError, CircuitBreaker};

/// What the simulated dependency does now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Health {
    Healthy = 0,
    Failing = 1,
    Hanging = 2,
}

static HEALTH: AtomicU8 = AtomicU8::new(Health::Healthy as u8);

fn health() -> Health {
    match HEALTH.load(Relaxed) {
        0 => Health::Healthy,
        1 => Health::Failing,
        _ => Health::Hanging,
    }
}

#[derive(Debug)]
enum PriceError {
    /// The breaker refused the call or it timed out.
    Breaker(BreakerError),
    /// The dependency answered with an error.
    Unavailable,
    /// There is no such item: an answer, not a failure of the dependency.
    UnknownItem,
}

impl From<BreakerError> for PriceError {
    fn from(error: BreakerError) -> Self {
        PriceError::Breaker(error)
    }
}

fn is_unknown_item(error: &PriceError) -> bool {
    matches!(error, PriceError::UnknownItem)
}

/// The remote call: fast when healthy, an error when failing, a hang when
/// hanging.
async fn remote_price(item: u32) -> Result<u32, PriceError> {
    match health() {
        Health::Healthy if item == 0 => Err(PriceError::UnknownItem),
        Health::Healthy => {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(item * 100)
        }
        Health::Failing => {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err(PriceError::Unavailable)
        }
        Health::Hanging => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(item * 100)
        }
    }
}

#[circuit_breaker(
    name = "pricing",
    consecutive_failures = 3,
    open_for = "400ms",
    open_for_max = "1200ms",
    half_open_calls = 2,
    timeout = "50ms",
    ignore_if = is_unknown_item,
    retry(attempts = 2, backoff = "10ms..40ms", jitter = "full")
)]
async fn price(item: u32) -> Result<u32, PriceError> {
    remote_price(item).await
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let breaker = CircuitBreaker::named("pricing").expect("declared by #[circuit_breaker]");
    breaker.on_transition(move |change| {
        println!(
            "{:>6} ms  breaker {}: {} -> {}",
            started.elapsed().as_millis(),
            change.breaker,
            change.from,
            change.to
        );
    });

    let phases = [
        (Health::Healthy, 300),
        (Health::Failing, 900),
        (Health::Hanging, 600),
        (Health::Healthy, 2000),
    ];
    for (phase, millis) in phases {
        println!(
            "{:>6} ms  dependency is now {phase:?}",
            started.elapsed().as_millis()
        );
        HEALTH.store(phase as u8, Relaxed);
        let (mut ok, mut failed, mut refused) = (0, 0, 0);
        let phase_end = Instant::now() + Duration::from_millis(millis);
        let mut item = 0;
        while Instant::now() < phase_end {
            item = (item + 1) % 10;
            match price(item).await {
                Ok(_) | Err(PriceError::UnknownItem) => ok += 1,
                Err(PriceError::Breaker(error)) if error.is_rejected() => refused += 1,
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("          answered {ok}, failed {failed}, refused {refused}");
    }

    let stats = breaker.stats();
    println!(
        "\nbreaker `{}` ends {}: {} successes, {} failures, {} timeouts, {} refused, {} ignored",
        stats.name,
        stats.state,
        stats.successes,
        stats.failures,
        stats.timeouts,
        stats.rejected,
        stats.ignored
    );
    let telemetry = telemark::builder!()
        .without_server()
        .start()
        .expect("telemetry starts");
    println!("\nIts series, as /metrics serves them:");
    for line in telemetry.render_metrics().lines() {
        if (line.starts_with("circuit_breaker_") || line.starts_with("retry_attempts"))
            && !line.ends_with(" 0")
        {
            println!("  {line}");
        }
    }
    assert_eq!(
        stats.state,
        telemark::breaker::BreakerState::Closed,
        "the breaker closes once the dependency has recovered"
    );
}
