//! Model-based property test: random sequences of calls, outcomes, durations,
//! clock advances and run-time control, run against the breaker and against
//! a plain reference model of the rules; both must agree at every step.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    /// Ask for a permit and keep it.
    Acquire,
    /// Report the `n`th kept permit (modulo how many are kept).
    Report(usize, Verdict),
    /// Drop the `n`th kept permit without a report (a cancelled call).
    Cancel(usize),
    /// Let time pass.
    Advance(u64),
    ForceOpen,
    Disable,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let verdict = prop_oneof![
        4 => Just(Verdict::Failure),
        3 => Just(Verdict::Success),
        1 => Just(Verdict::Ignored),
    ];
    prop_oneof![
        10 => Just(Op::Acquire),
        12 => (0..8usize, verdict).prop_map(|(n, v)| Op::Report(n, v)),
        1 => (0..8usize).prop_map(Op::Cancel),
        6 => prop_oneof![0..20u64, 0..200u64].prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        0..5u32,
        prop_oneof![Just(0u8), 20..=100u8],
        prop_oneof![Just(0u8), 30..=100u8],
        1..12u32,
        1..12u32,
        1..100u64,
        0..4u32,
        1..4u32,
    )
        .prop_map(
            |(consecutive, failure_rate, slow_rate, window, min_calls, open, growth, trials)| {
                BreakerConfig::new()
                    .consecutive_failures(consecutive)
                    .failure_rate(failure_rate)
                    .slow_call(Duration::from_millis(25))
                    .slow_call_rate(slow_rate)
                    .window(window)
                    .min_calls(min_calls.min(window))
                    .open_for(Duration::from_millis(open))
                    .open_for_max(Duration::from_millis(open << growth))
                    .half_open_calls(trials)
            },
        )
        .prop_filter("needs a trip rule", |config| config.validate().is_ok())
}

/// The reference model: the rules written as directly as possible.
struct Model {
    config: BreakerConfig,
    state: BreakerState,
    epoch: u64,
    now: u64,
    consecutive: u32,
    /// (failed, slow) of the last `window` calls.
    window: VecDeque<(bool, bool)>,
    deadline: u64,
    reopens: u32,
    admitted: u32,
    succeeded: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Closed,
    Trial,
    Bypass,
}

#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    epoch: u64,
    kind: Kind,
    started: u64,
}

impl Model {
    fn new(config: BreakerConfig) -> Self {
        Model {
            config,
            state: BreakerState::Closed,
            epoch: 0,
            now: 0,
            consecutive: 0,
            window: VecDeque::new(),
            deadline: 0,
            reopens: 0,
            admitted: 0,
            succeeded: 0,
        }
    }

    fn open_for(&self) -> u64 {
        self.config.open_nanos
    }

    fn enter(&mut self, state: BreakerState) {
        self.state = state;
        self.epoch += 1;
        self.admitted = 0;
        self.succeeded = 0;
    }

    fn clear(&mut self) {
        self.consecutive = 0;
        self.window.clear();
    }

    fn start_trials(&mut self) -> ModelPermit {
        self.enter(BreakerState::HalfOpen);
        self.admitted = 1;
        self.deadline = self.now + self.open_for();
        self.trial()
    }

    fn trial(&self) -> ModelPermit {
        ModelPermit {
            epoch: self.epoch,
            kind: Kind::Trial,
            started: self.now,
        }
    }

    fn acquire(&mut self) -> Option<ModelPermit> {
        let now = self.now;
        let permit = |kind| ModelPermit {
            epoch: self.epoch,
            kind,
            started: now,
        };
        match self.state {
            BreakerState::Closed => Some(permit(Kind::Closed)),
            BreakerState::Disabled => Some(permit(Kind::Bypass)),
            BreakerState::ForcedOpen => None,
            BreakerState::Open if now < self.deadline => None,
            BreakerState::Open => Some(self.start_trials()),
            BreakerState::HalfOpen if self.admitted < self.config.half_open_calls => {
                self.admitted += 1;
                Some(self.trial())
            }
            BreakerState::HalfOpen if now >= self.deadline => Some(self.start_trials()),
            BreakerState::HalfOpen => None,
        }
    }

    fn trip(&mut self, reopen: bool) {
        if reopen {
            self.reopens += 1;
        }
        let grown = self
            .open_for()
            .checked_shl(self.reopens)
            .unwrap_or(u64::MAX);
        let grown = if grown >> self.reopens == self.open_for() {
            grown
        } else {
            u64::MAX
        };
        self.deadline = self.now + grown.min(self.config.open_max_nanos);
        self.enter(BreakerState::Open);
        self.clear();
    }

    fn report(&mut self, permit: ModelPermit, verdict: Verdict) {
        let slow = self.config.slow_call_nanos > 0
            && permit.kind != Kind::Bypass
            && self.now - permit.started >= self.config.slow_call_nanos;
        if permit.kind == Kind::Bypass || permit.epoch != self.epoch {
            return;
        }
        match permit.kind {
            Kind::Closed => {
                if self.state != BreakerState::Closed || verdict == Verdict::Ignored {
                    return;
                }
                let failed = verdict == Verdict::Failure;
                if self.config.consecutive_failures > 0 {
                    if failed {
                        self.consecutive += 1;
                        if self.consecutive >= self.config.consecutive_failures {
                            return self.trip(false);
                        }
                    } else {
                        self.consecutive = 0;
                    }
                }
                if !self.config.uses_window() {
                    return;
                }
                self.window.push_back((failed, slow));
                if self.window.len() > self.config.window as usize {
                    self.window.pop_front();
                }
                let calls = self.window.len() as u64;
                if !(failed || slow) || calls < u64::from(self.config.min_calls) {
                    return;
                }
                let failures = self.window.iter().filter(|(f, _)| *f).count() as u64;
                let slows = self.window.iter().filter(|(_, s)| *s).count() as u64;
                let over = |count: u64, percent: u8| {
                    percent > 0 && count * 100 >= u64::from(percent) * calls
                };
                if (failed && over(failures, self.config.failure_rate))
                    || (slow && over(slows, self.config.slow_call_rate))
                {
                    self.trip(false);
                }
            }
            Kind::Trial => {
                if self.state != BreakerState::HalfOpen {
                    return;
                }
                let failed = verdict == Verdict::Failure
                    || (verdict == Verdict::Success && slow && self.config.slow_call_rate > 0);
                if failed {
                    self.trip(true);
                } else if verdict == Verdict::Ignored {
                    self.admitted = self.admitted.saturating_sub(1);
                } else {
                    self.succeeded += 1;
                    if self.succeeded >= self.config.half_open_calls {
                        self.enter(BreakerState::Closed);
                        self.clear();
                        self.reopens = 0;
                    }
                }
            }
            Kind::Bypass => {}
        }
    }

    fn force(&mut self, state: BreakerState) {
        if self.state == state {
            if state == BreakerState::Closed {
                self.clear();
            }
            return;
        }
        if state == BreakerState::Closed {
            self.clear();
            self.reopens = 0;
        }
        self.enter(state);
    }
}

fn run(config: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::new("model", config)
        .unwrap()
        .with_manual_clock(clock.clone());
    let mut model = Model::new(config);
    let mut kept: Vec<(Permit<'_>, ModelPermit)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Acquire => {
                let real = breaker.acquire();
                let expected = model.acquire();
                prop_assert_eq!(
                    real.is_ok(),
                    expected.is_some(),
                    "step {}: admission differs (real {:?})",
                    step,
                    real.as_ref().err()
                );
                if let (Ok(permit), Some(model_permit)) = (real, expected) {
                    kept.push((permit, model_permit));
                }
            }
            Op::Report(n, verdict) if !kept.is_empty() => {
                let (permit, model_permit) = kept.remove(n % kept.len());
                permit.report(verdict);
                model.report(model_permit, verdict);
            }
            Op::Cancel(n) if !kept.is_empty() => {
                let (permit, model_permit) = kept.remove(n % kept.len());
                drop(permit);
                model.report(model_permit, Verdict::Ignored);
            }
            Op::Report(..) | Op::Cancel(_) => {}
            Op::Advance(millis) => {
                clock.advance(Duration::from_millis(millis));
                model.now += millis * 1_000_000;
            }
            Op::ForceOpen => {
                breaker.force_open();
                model.force(BreakerState::ForcedOpen);
            }
            Op::Disable => {
                breaker.disable();
                model.force(BreakerState::Disabled);
            }
            Op::Reset => {
                breaker.reset();
                model.force(BreakerState::Closed);
            }
        }
        let stats = breaker.stats();
        prop_assert_eq!(stats.state, model.state, "step {}: state", step);
        prop_assert_eq!(
            stats.consecutive_failures,
            model.consecutive,
            "step {}: consecutive failures",
            step
        );
        if config.uses_window() {
            let failures = model.window.iter().filter(|(f, _)| *f).count() as u64;
            let slow = model.window.iter().filter(|(_, s)| *s).count() as u64;
            prop_assert_eq!(
                (stats.window_calls, stats.window_failures, stats.window_slow),
                (model.window.len() as u64, failures, slow),
                "step {}: window",
                step
            );
        }
        if model.state == BreakerState::HalfOpen {
            prop_assert_eq!(
                (stats.trials_admitted, stats.trials_succeeded),
                (model.admitted, model.succeeded),
                "step {}: trials",
                step
            );
            prop_assert!(stats.trials_admitted <= config.half_open_calls);
        }
        if model.state == BreakerState::Open {
            prop_assert_eq!(
                stats.next_trial_in,
                Some(Duration::from_nanos(
                    model.deadline.saturating_sub(model.now)
                )),
                "step {}: next trial",
                step
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_breaker_behaves_like_the_reference_model(
        config in config(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        run(config, ops)?;
    }
}
