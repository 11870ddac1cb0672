//! Service-level objectives: declared once as a `const`, attached to
//! functions with `#[counted(objective = ..)]` and `#[timed(objective = ..)]`,
//! and exported as the Autometrics labels `objective_name`,
//! `objective_percentile` and `objective_latency_threshold`, which SLO
//! recording rules and alerts select on.

use std::time::Duration;

/// The share of calls an objective expects to succeed (or to finish within
/// its latency threshold).
///
/// Only the four values Autometrics' rules and telemark's shipped rules know
/// are offered, so no objective can be declared that no rule evaluates.
///
/// ```
/// use telemark_runtime::metrics::ObjectivePercentile;
/// assert_eq!(ObjectivePercentile::P99_9.label(), "99.9");
/// assert_eq!(ObjectivePercentile::P95.error_budget(), 0.05);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectivePercentile {
    /// 90 % of calls.
    P90,
    /// 95 % of calls.
    P95,
    /// 99 % of calls.
    P99,
    /// 99.9 % of calls.
    P99_9,
}

impl ObjectivePercentile {
    /// The `objective_percentile` label value: `"90"`, `"95"`, `"99"` or `"99.9"`.
    pub const fn label(self) -> &'static str {
        match self {
            ObjectivePercentile::P90 => "90",
            ObjectivePercentile::P95 => "95",
            ObjectivePercentile::P99 => "99",
            ObjectivePercentile::P99_9 => "99.9",
        }
    }

    /// The share of calls allowed to miss the objective (0.1 for 90 %).
    pub const fn error_budget(self) -> f64 {
        match self {
            ObjectivePercentile::P90 => 0.1,
            ObjectivePercentile::P95 => 0.05,
            ObjectivePercentile::P99 => 0.01,
            ObjectivePercentile::P99_9 => 0.001,
        }
    }
}

/// A latency target: `percentile` of calls finish within `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LatencyTarget {
    /// The threshold in nanoseconds; one of the function's bucket bounds.
    pub threshold_nanos: u64,
    /// The share of calls expected within the threshold.
    pub percentile: ObjectivePercentile,
}

/// A service-level objective: a name, the share of calls that must succeed
/// and/or the share that must finish within a latency threshold.
///
/// Declare it once as a `const` and attach it to the functions it covers:
/// `#[counted(objective = ..)]` exports its success-rate target on the call
/// counter, `#[timed(objective = ..)]` its latency target on the duration
/// histogram (the threshold must be one of the histogram's bucket bounds:
/// checked when the program is compiled). The shipped Prometheus rules
/// (`assets/prometheus/alerts.yml`) compute each objective's error-budget
/// burn rate from these labels and alert on it.
///
/// ```
/// use std::time::Duration;
/// use telemark_runtime::metrics::{Objective, ObjectivePercentile};
///
/// const CHECKOUT: Objective = Objective::new("checkout")
///     .success_rate(ObjectivePercentile::P99_9)
///     .latency(Duration::from_millis(250), ObjectivePercentile::P99);
///
/// // On functions: #[counted(objective = CHECKOUT)] #[timed(objective = CHECKOUT)]
/// assert_eq!(CHECKOUT.name(), "checkout");
/// assert_eq!(CHECKOUT.latency_target().unwrap().threshold_nanos, 250_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Objective {
    name: &'static str,
    success_rate: Option<ObjectivePercentile>,
    latency: Option<LatencyTarget>,
}

impl Objective {
    /// An objective named `name` (the `objective_name` label), with no
    /// target yet: add [`success_rate`](Self::success_rate) and/or
    /// [`latency`](Self::latency).
    ///
    /// The name must be ASCII letters, digits, `_`, `-` and spaces (what
    /// the Autometrics specification asks for), and not empty: anything
    /// else fails the build (in a `const`).
    pub const fn new(name: &'static str) -> Objective {
        assert!(!name.is_empty(), "an objective needs a non-empty name");
        let bytes = name.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            assert!(
                byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || byte == b' ',
                "an objective's name may hold ASCII letters, digits, `_`, `-` and spaces only"
            );
            i += 1;
        }
        Objective {
            name,
            success_rate: None,
            latency: None,
        }
    }

    /// `percentile` of the calls must succeed (not return `Err`, or as the
    /// function's `ok_if` / `error_if` says).
    pub const fn success_rate(mut self, percentile: ObjectivePercentile) -> Objective {
        self.success_rate = Some(percentile);
        self
    }

    /// `percentile` of the calls must finish within `threshold`, which must
    /// be one of the bucket bounds of the functions it is attached to (the
    /// defaults: 5, 10, 25, 50, 75, 100, 250, 500, 750 ms, 1, 2.5, 5, 7.5,
    /// 10 s). A zero threshold fails the build (in a `const`).
    pub const fn latency(
        mut self,
        threshold: Duration,
        percentile: ObjectivePercentile,
    ) -> Objective {
        let nanos = threshold.as_nanos();
        assert!(
            nanos > 0 && nanos <= u64::MAX as u128,
            "an objective's latency threshold must be positive"
        );
        self.latency = Some(LatencyTarget {
            threshold_nanos: nanos as u64,
            percentile,
        });
        self
    }

    /// The `objective_name` label.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The success-rate target, if any.
    pub const fn success_rate_target(&self) -> Option<ObjectivePercentile> {
        self.success_rate
    }

    /// The latency target, if any.
    pub const fn latency_target(&self) -> Option<LatencyTarget> {
        self.latency
    }
}

/// Whether `bounds` (sorted, nanoseconds) contain `nanos`; for `const`
/// checks of an objective against a histogram's bounds.
pub(crate) const fn bounds_contain(bounds: &[u64], nanos: u64) -> bool {
    let mut i = 0;
    while i < bounds.len() {
        if bounds[i] == nanos {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objective_keeps_what_it_was_given() {
        const API: Objective = Objective::new("api")
            .success_rate(ObjectivePercentile::P99)
            .latency(Duration::from_millis(250), ObjectivePercentile::P95);
        assert_eq!(API.name(), "api");
        assert_eq!(API.success_rate_target(), Some(ObjectivePercentile::P99));
        let latency = API.latency_target().unwrap();
        assert_eq!(latency.threshold_nanos, 250_000_000);
        assert_eq!(latency.percentile.label(), "95");
    }

    #[test]
    fn bounds_are_searched_exactly() {
        assert!(bounds_contain(&[5, 10, 25], 10));
        assert!(!bounds_contain(&[5, 10, 25], 11));
        assert!(!bounds_contain(&[], 1));
    }
}
