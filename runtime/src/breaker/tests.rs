//! Deterministic transition tests: every edge of the state machine, driven
//! by a manual clock.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use super::*;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("test", config)
        .unwrap()
        .with_manual_clock(clock.clone());
    (breaker, clock)
}

fn fail(breaker: &CircuitBreaker, times: usize) {
    for _ in 0..times {
        breaker.acquire().unwrap().failure();
    }
}

fn succeed(breaker: &CircuitBreaker, times: usize) {
    for _ in 0..times {
        breaker.acquire().unwrap().success();
    }
}

#[test]
fn closed_opens_after_consecutive_failures_and_a_success_starts_the_count_again() {
    let (breaker, _) = breaker(BreakerConfig::new().consecutive_failures(3));
    fail(&breaker, 2);
    succeed(&breaker, 1);
    fail(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().consecutive_failures, 2);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        breaker.transitions(BreakerState::Closed, BreakerState::Open),
        1
    );
}

#[test]
fn closed_opens_on_the_failure_rate_once_the_window_has_min_calls() {
    let config = BreakerConfig::new()
        .consecutive_failures(0)
        .failure_rate(50)
        .window(10)
        .min_calls(6);
    let (breaker, _) = breaker(config);
    // 3 failures in 5 calls is 60%, but fewer than min_calls.
    for outcome in [false, true, false, true, true] {
        let permit = breaker.acquire().unwrap();
        if outcome {
            permit.failure()
        } else {
            permit.success()
        }
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    // 6th call a success: 50% but a success never trips.
    succeed(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // 7th call a failure: 4 of 7.
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn the_failure_rate_only_sees_the_last_window_of_calls() {
    let config = BreakerConfig::new()
        .consecutive_failures(0)
        .failure_rate(50)
        .window(4)
        .min_calls(4);
    let (breaker, _) = breaker(config);
    // F F S S S S: the failures slide out of the window of 4.
    fail(&breaker, 1);
    succeed(&breaker, 1);
    fail(&breaker, 1);
    succeed(&breaker, 4);
    let stats = breaker.stats();
    assert_eq!((stats.window_calls, stats.window_failures), (4, 0));
    // S S S F: 25%.
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
    // S S F F: 50%.
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[test]
fn closed_opens_on_the_slow_call_rate() {
    let config = BreakerConfig::new()
        .consecutive_failures(0)
        .slow_call(ms(100))
        .slow_call_rate(50)
        .window(4)
        .min_calls(4);
    let (breaker, clock) = breaker(config);
    let slow_call = || {
        let permit = breaker.acquire().unwrap();
        clock.advance(ms(100));
        permit.success();
    };
    slow_call();
    succeed(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
    slow_call();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.stats().slow, 2);
}

#[test]
fn open_refuses_until_the_open_duration_has_passed_then_admits_a_trial() {
    let (breaker, clock) = breaker(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(ms(1000)),
    );
    fail(&breaker, 1);
    clock.advance(ms(400));
    let refusal = breaker.acquire().unwrap_err();
    assert!(refusal.is_rejected());
    assert_eq!(refusal.state(), Some(BreakerState::Open));
    assert_eq!(refusal.retry_after(), Some(ms(600)));
    assert_eq!(breaker.stats().next_trial_in, Some(ms(600)));
    clock.advance(ms(599));
    assert!(breaker.acquire().is_err());
    clock.advance(ms(1));
    let trial = breaker.acquire().unwrap();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(
        breaker.transitions(BreakerState::Open, BreakerState::HalfOpen),
        1
    );
    trial.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().rejected, 2);
}

#[test]
fn half_open_admits_exactly_its_trials_and_closes_when_all_succeed() {
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .open_for(ms(10))
        .half_open_calls(3);
    let (breaker, clock) = breaker(config);
    fail(&breaker, 1);
    clock.advance(ms(10));
    let trials: Vec<_> = (0..3).map(|_| breaker.acquire().unwrap()).collect();
    let refusal = breaker.acquire().unwrap_err();
    assert_eq!(refusal.state(), Some(BreakerState::HalfOpen));
    let mut trials = trials.into_iter();
    trials.next().unwrap().success();
    trials.next().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(breaker.stats().trials_succeeded, 2);
    trials.next().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(
        breaker.transitions(BreakerState::HalfOpen, BreakerState::Closed),
        1
    );
    // Closed again with a fresh count.
    assert_eq!(breaker.stats().consecutive_failures, 0);
    succeed(&breaker, 5);
}

#[test]
fn a_failed_trial_reopens_for_longer_each_time_up_to_the_cap() {
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .open_for(ms(100))
        .open_for_max(ms(350));
    let (breaker, clock) = breaker(config);
    fail(&breaker, 1);
    for expected in [200, 350, 350] {
        clock.advance(breaker.stats().next_trial_in.unwrap());
        breaker.acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.stats().next_trial_in, Some(ms(expected)));
    }
    assert_eq!(
        breaker.transitions(BreakerState::HalfOpen, BreakerState::Open),
        3
    );
    // Closing starts the open duration over.
    clock.advance(ms(350));
    breaker.acquire().unwrap().success();
    fail(&breaker, 1);
    assert_eq!(breaker.stats().next_trial_in, Some(ms(100)));
}

#[test]
fn an_ignored_or_cancelled_trial_gives_its_slot_back() {
    let (breaker, clock) = breaker(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(ms(10)),
    );
    fail(&breaker, 1);
    clock.advance(ms(10));
    breaker.acquire().unwrap().ignored();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    drop(breaker.acquire().unwrap()); // a cancelled future drops its permit
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker.acquire().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.stats().ignored, 2);
}

#[test]
fn trials_that_never_report_are_abandoned_after_the_open_duration() {
    let (breaker, clock) = breaker(
        BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(ms(50)),
    );
    fail(&breaker, 1);
    clock.advance(ms(50));
    let stuck = breaker.acquire().unwrap();
    clock.advance(ms(49));
    assert!(breaker.acquire().is_err());
    clock.advance(ms(1));
    let fresh = breaker.acquire().unwrap();
    // The abandoned trial's late failure changes nothing.
    stuck.failure();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    fresh.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn late_results_from_an_earlier_state_are_ignored() {
    let (breaker, clock) = breaker(
        BreakerConfig::new()
            .consecutive_failures(2)
            .open_for(ms(10)),
    );
    let late_success = breaker.acquire().unwrap();
    let late_failure = breaker.acquire().unwrap();
    fail(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Open);
    // A success from the closed period does not close an open breaker.
    late_success.success();
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(ms(10));
    let trial = breaker.acquire().unwrap();
    // A failure from the closed period does not reopen a half-open one.
    late_failure.failure();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let before_close = breaker.acquire();
    assert!(before_close.is_err());
    trial.success();
    // Nor does it count against the next closed period.
    let from_old_closed = {
        let (fresh, _) = self::breaker(BreakerConfig::new().consecutive_failures(2));
        let permit = fresh.acquire().unwrap();
        fresh.force_open();
        fresh.reset();
        permit.failure();
        fresh.stats().consecutive_failures
    };
    assert_eq!(from_old_closed, 0);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn forced_open_refuses_disabled_admits_and_reset_closes() {
    let (breaker, _) = breaker(BreakerConfig::new().consecutive_failures(1));
    breaker.force_open();
    let refusal = breaker.acquire().unwrap_err();
    assert_eq!(refusal.state(), Some(BreakerState::ForcedOpen));
    assert_eq!(refusal.retry_after(), None);
    breaker.disable();
    fail(&breaker, 10);
    assert_eq!(breaker.state(), BreakerState::Disabled);
    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), BreakerState::Open);
    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(
        breaker.transitions(BreakerState::Closed, BreakerState::ForcedOpen),
        1
    );
    assert_eq!(
        breaker.transitions(BreakerState::ForcedOpen, BreakerState::Disabled),
        1
    );
    assert_eq!(
        breaker.transitions(BreakerState::Open, BreakerState::Closed),
        1
    );
}

#[test]
fn listeners_see_every_transition_and_their_panics_stay_inside() {
    let (breaker, clock) = breaker(BreakerConfig::new().consecutive_failures(1).open_for(ms(5)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    breaker.on_transition(move |t| log.lock().unwrap().push((t.from, t.to)));
    breaker.on_transition(|_| panic!("a listener bug"));
    fail(&breaker, 1);
    clock.advance(ms(5));
    breaker.acquire().unwrap().success();
    breaker.force_open();
    use BreakerState::*;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, ForcedOpen)
        ]
    );
}

#[test]
fn a_permit_dropped_by_a_panic_counts_as_a_failure() {
    let (breaker, _) = breaker(BreakerConfig::new().consecutive_failures(1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = breaker.acquire().unwrap();
        panic!("the call panicked");
    }));
    assert!(result.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(breaker.stats().failures, 1);
}

#[test]
fn eight_threads_racing_in_half_open_never_get_more_than_the_permitted_trials() {
    const THREADS: usize = 8;
    for half_open_calls in [1, 2, 5] {
        let config = BreakerConfig::new()
            .consecutive_failures(1)
            .open_for(ms(10))
            .half_open_calls(half_open_calls);
        let (breaker, clock) = breaker(config);
        for round in 0..50 {
            fail(&breaker, 1);
            clock.advance(ms(10));
            let barrier = Barrier::new(THREADS);
            let admitted: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            // Each thread keeps what it was given until all have tried.
                            (0..20)
                                .filter_map(|_| breaker.acquire().ok())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(
                admitted.len(),
                half_open_calls as usize,
                "round {round}: {} trials admitted",
                admitted.len()
            );
            for permit in admitted {
                permit.success();
            }
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
    }
}

#[test]
fn resetting_a_closed_breaker_starts_its_counts_over() {
    let (breaker, _) = breaker(BreakerConfig::new().consecutive_failures(3));
    fail(&breaker, 2);
    breaker.reset();
    assert_eq!(breaker.stats().consecutive_failures, 0);
    fail(&breaker, 2);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn a_slow_trial_that_is_cancelled_gives_its_slot_back_instead_of_reopening() {
    let config = BreakerConfig::new()
        .consecutive_failures(1)
        .slow_call(ms(100))
        .slow_call_rate(50)
        .window(10)
        .min_calls(10)
        .open_for(ms(10));
    let (breaker, clock) = breaker(config);
    fail(&breaker, 1);
    clock.advance(ms(10));
    let trial = breaker.acquire().unwrap();
    clock.advance(ms(500));
    drop(trial); // cancelled after a long wait
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker.acquire().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// A permit is 24 bytes (futures of `async fn`s hold it across their body
/// and move it), and its ticket keeps any epoch and kind apart.
#[test]
fn permits_stay_small() {
    use super::core::{PermitKind, Ticket};
    assert!(std::mem::size_of::<Permit<'_>>() <= 24);
    assert_eq!(
        std::mem::size_of::<Option<Permit<'_>>>(),
        std::mem::size_of::<Permit<'_>>()
    );
    for epoch in [0, 1, (1 << 41) - 1] {
        for kind in [PermitKind::Closed, PermitKind::Trial, PermitKind::Bypass] {
            let ticket = Ticket::new(epoch, kind);
            assert_eq!((ticket.epoch(), ticket.kind()), (epoch, kind));
        }
    }
}
