//! The breakers' series on `/metrics`, and their part of `/status`.

use std::collections::HashMap;

use std::fmt::Write;

use super::circuit::{CircuitBreaker, Outcome};
use super::core::BreakerState;
use super::site::breaker_sites;
use crate::metrics::exposition::{
    escape_label_value, header, json_key, json_string, push_u64, sample,
};

/// Writes one sample of a breaker's series: `name{<labels>,tail} value`,
/// where `labels` (the breaker and service, escaped once per breaker) is
/// shared by all its lines.
fn breaker_sample(out: &mut String, name: &str, labels: &str, tail: &[(&str, &str)], value: u64) {
    out.push_str(name);
    out.push('{');
    out.push_str(labels);
    for (key, label) in tail {
        out.push(',');
        out.push_str(key);
        out.push_str("=\"");
        out.push_str(label);
        out.push('"');
    }
    out.push_str("} ");
    push_u64(out, value);
    out.push('\n');
}

/// The automatic edges: always rendered; changes made by run-time control
/// only once seen.
const AUTOMATIC: [(BreakerState, BreakerState); 4] = [
    (BreakerState::Closed, BreakerState::Open),
    (BreakerState::Open, BreakerState::HalfOpen),
    (BreakerState::HalfOpen, BreakerState::Closed),
    (BreakerState::HalfOpen, BreakerState::Open),
];

/// Renders every breaker's series (those declared by `#[circuit_breaker]`
/// functions at zero from the start) and the retry counters.
pub(crate) fn render_breaker_metrics(out: &mut String, service: &str) {
    let breakers = CircuitBreaker::all();
    if breakers.is_empty() {
        return;
    }
    struct Snapshot<'a> {
        labels: String,
        breaker: &'a CircuitBreaker,
        outcomes: [u64; 5],
        slow: u64,
        state: BreakerState,
    }
    let mut service_label = String::new();
    escape_label_value(service, &mut service_label);
    let snapshots: Vec<Snapshot> = breakers
        .iter()
        .map(|breaker| {
            let mut labels = String::from("breaker=\"");
            escape_label_value(breaker.name(), &mut labels);
            labels.push_str("\",service_name=\"");
            labels.push_str(&service_label);
            labels.push('"');
            let (outcomes, slow) = breaker.outcome_counts();
            Snapshot {
                labels,
                breaker,
                outcomes,
                slow,
                state: breaker.state(),
            }
        })
        .collect();
    out.reserve(snapshots.len() * 1500);

    let name = "circuit_breaker_calls_total";
    header(
        out,
        name,
        "counter",
        "Calls through each circuit breaker by outcome.",
    );
    for snapshot in &snapshots {
        for (outcome, count) in Outcome::ALL.iter().zip(snapshot.outcomes) {
            breaker_sample(
                out,
                name,
                &snapshot.labels,
                &[("outcome", outcome.label())],
                count,
            );
        }
    }
    let name = "circuit_breaker_state";
    header(
        out,
        name,
        "gauge",
        "1 for each circuit breaker's current state, 0 for the others.",
    );
    for snapshot in &snapshots {
        for candidate in BreakerState::ALL {
            let active = u64::from(candidate == snapshot.state);
            breaker_sample(
                out,
                name,
                &snapshot.labels,
                &[("state", candidate.label())],
                active,
            );
        }
    }
    let name = "circuit_breaker_transitions_total";
    header(
        out,
        name,
        "counter",
        "State changes of each circuit breaker.",
    );
    for snapshot in &snapshots {
        for from in BreakerState::ALL {
            for to in BreakerState::ALL {
                let count = snapshot.breaker.transitions(from, to);
                if from == to || (count == 0 && !AUTOMATIC.contains(&(from, to))) {
                    continue;
                }
                let tail = [("from", from.label()), ("to", to.label())];
                breaker_sample(out, name, &snapshot.labels, &tail, count);
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
    for snapshot in &snapshots {
        breaker_sample(out, name, &snapshot.labels, &[], snapshot.slow);
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

/// `/status`'s view of every circuit breaker: a JSON array, written out.
pub(crate) fn write_breakers_status(out: &mut String) {
    out.push('[');
    for (i, breaker) in CircuitBreaker::all().into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let stats = breaker.stats();
        out.push('{');
        json_key(out, "name");
        json_string(out, &stats.name);
        out.push(',');
        json_key(out, "state");
        json_string(out, stats.state.label());
        let counts = [
            ("successes", stats.successes),
            ("failures", stats.failures),
            ("rejected", stats.rejected),
            ("timeouts", stats.timeouts),
            ("ignored", stats.ignored),
            ("slow", stats.slow),
            (
                "consecutive_failures",
                u64::from(stats.consecutive_failures),
            ),
        ];
        for (key, value) in counts {
            out.push(',');
            json_key(out, key);
            let _ = write!(out, "{value}");
        }
        let _ = write!(
            out,
            ",\"window\":{{\"calls\":{},\"failures\":{},\"slow\":{}}}",
            stats.window_calls, stats.window_failures, stats.window_slow
        );
        let _ = write!(
            out,
            ",\"half_open_trials\":{{\"admitted\":{},\"succeeded\":{}}}",
            stats.trials_admitted, stats.trials_succeeded
        );
        out.push(',');
        json_key(out, "next_trial_in_seconds");
        match stats.next_trial_in {
            Some(wait) => {
                let _ = write!(out, "{}", wait.as_secs_f64());
            }
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push(']');
}
