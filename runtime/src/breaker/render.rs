//! The breakers' series on `/metrics`, and their part of `/status`.

use std::collections::HashMap;

use super::circuit::{CircuitBreaker, Outcome};
use super::core::BreakerState;
use super::site::breaker_sites;
use crate::metrics::exposition::{header, sample};

/// `breaker`, `service_name`, then `tail`.
fn labels<'a>(
    breaker: &'a str,
    service: &'a str,
    tail: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    [("breaker", breaker), ("service_name", service)]
        .into_iter()
        .chain(tail.iter().copied())
}

/// Renders every breaker's series (those declared by `#[circuit_breaker]`
/// functions at zero from the start) and the retry counters.
pub(crate) fn render_breaker_metrics(out: &mut String, service: &str) {
    let breakers = CircuitBreaker::all();
    if breakers.is_empty() {
        return;
    }
    let name = "circuit_breaker_calls_total";
    header(
        out,
        name,
        "counter",
        "Calls through each circuit breaker by outcome.",
    );
    for breaker in &breakers {
        for outcome in Outcome::ALL {
            let tail = [("outcome", outcome.label())];
            let count = breaker.outcome_count(outcome);
            sample(out, name, labels(breaker.name(), service, &tail), count);
        }
    }
    let name = "circuit_breaker_state";
    header(
        out,
        name,
        "gauge",
        "1 for each circuit breaker's current state, 0 for the others.",
    );
    for breaker in &breakers {
        let state = breaker.state();
        for candidate in BreakerState::ALL {
            let tail = [("state", candidate.label())];
            let active = u8::from(candidate == state);
            sample(out, name, labels(breaker.name(), service, &tail), active);
        }
    }
    let name = "circuit_breaker_transitions_total";
    header(
        out,
        name,
        "counter",
        "State changes of each circuit breaker.",
    );
    // The automatic edges always; changes made by run-time control once seen.
    const AUTOMATIC: [(BreakerState, BreakerState); 4] = [
        (BreakerState::Closed, BreakerState::Open),
        (BreakerState::Open, BreakerState::HalfOpen),
        (BreakerState::HalfOpen, BreakerState::Closed),
        (BreakerState::HalfOpen, BreakerState::Open),
    ];
    for breaker in &breakers {
        for from in BreakerState::ALL {
            for to in BreakerState::ALL {
                let count = breaker.transitions(from, to);
                if from == to || (count == 0 && !AUTOMATIC.contains(&(from, to))) {
                    continue;
                }
                let tail = [("from", from.label()), ("to", to.label())];
                sample(out, name, labels(breaker.name(), service, &tail), count);
            }
        }
    }
    let name = "circuit_breaker_slow_calls_total";
    header(
        out,
        name,
        "counter",
        "Calls through each circuit breaker at least as long as its slow-call threshold.",
    );
    for breaker in &breakers {
        let slow = breaker.stats().slow;
        sample(out, name, labels(breaker.name(), service, &[]), slow);
    }
    render_retries(out, service);
}

/// `retry_attempts_total{function, module, service_name, breaker}` of the
/// functions with `retry(...)`.
fn render_retries(out: &mut String, service: &str) {
    let mut series: Vec<(&str, &str, &str, u64)> = Vec::new();
    let mut index: HashMap<_, usize> = HashMap::new();
    for site in breaker_sites().filter(|site| site.retry_policy().is_some()) {
        let key = (site.info.function, site.info.module, site.breaker_name());
        match index.get(&key) {
            Some(&position) => series[position].3 += site.retries(),
            None => {
                index.insert(key, series.len());
                series.push((key.0, key.1, key.2, site.retries()));
            }
        }
    }
    if series.is_empty() {
        return;
    }
    let name = "retry_attempts_total";
    header(
        out,
        name,
        "counter",
        "Retries (attempts after the first) of functions with retry(...).",
    );
    for (function, module, breaker, retries) in series {
        let labels = [
            ("function", function),
            ("module", module),
            ("service_name", service),
            ("breaker", breaker),
        ];
        sample(out, name, labels, retries);
    }
}

/// `/status`'s view of every circuit breaker.
pub(crate) fn breakers_status() -> serde_json::Value {
    let breakers: Vec<_> = CircuitBreaker::all()
        .into_iter()
        .map(|breaker| {
            let stats = breaker.stats();
            serde_json::json!({
                "name": stats.name,
                "state": stats.state.label(),
                "successes": stats.successes,
                "failures": stats.failures,
                "rejected": stats.rejected,
                "timeouts": stats.timeouts,
                "ignored": stats.ignored,
                "slow": stats.slow,
                "consecutive_failures": stats.consecutive_failures,
                "window": {
                    "calls": stats.window_calls,
                    "failures": stats.window_failures,
                    "slow": stats.window_slow,
                },
                "half_open_trials": {
                    "admitted": stats.trials_admitted,
                    "succeeded": stats.trials_succeeded,
                },
                "next_trial_in_seconds": stats.next_trial_in.map(|d| d.as_secs_f64()),
            })
        })
        .collect();
    serde_json::Value::Array(breakers)
}
