//! `timeout` and retry delays in a tokio runtime built without timers: no
//! panic reaches the caller; the call runs unbounded and retries at once
//! (its own test binary: the first such runtime switches timers off for the
//! whole process).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[telemark::circuit_breaker(
    name = "timerless",
    consecutive_failures = 100,
    timeout = "10ms",
    retry(attempts = 3, backoff = "1s..1s")
)]
async fn flaky() -> Result<u32, std::io::Error> {
    let attempt = ATTEMPTS.fetch_add(1, SeqCst) + 1;
    if attempt < 3 {
        return Err(std::io::Error::other("not yet"));
    }
    Ok(attempt)
}

#[test]
fn a_runtime_without_timers_gets_no_timeout_and_no_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(runtime.block_on(flaky()).unwrap(), 3);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "no delay was applied"
    );
}
