//! Head sampling, as the OpenTelemetry samplers define it.

use crate::error::ConfigError;

/// Which calls get a span.
///
/// ```
/// use telemark_runtime::trace::Sampler;
/// assert_eq!(Sampler::from_env_values(Some("traceidratio"), Some("0.25")), Ok(Sampler::TraceIdRatio(0.25)));
/// assert!(Sampler::from_env_values(Some("sometimes"), None).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// Every span.
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// A fixed fraction of traces, decided from the trace id (from 0 to 1:
    /// another value is an error when telemetry starts).
    TraceIdRatio(f64),
    /// Follow the parent's decision; decide roots with the inner sampler.
    /// (The default: parent-based, always on.)
    ParentBased(Root),
}

/// The root decision of [`Sampler::ParentBased`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// Sample every root.
    AlwaysOn,
    /// Sample no root.
    AlwaysOff,
    /// Sample this fraction of roots (from 0 to 1).
    TraceIdRatio(f64),
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::ParentBased(Root::AlwaysOn)
    }
}

fn ratio_arg(arg: Option<&str>) -> Result<f64, ConfigError> {
    let Some(text) = arg.filter(|t| !t.trim().is_empty()) else {
        return Ok(1.0);
    };
    match text.trim().parse::<f64>() {
        Ok(ratio) if is_ratio(ratio) => Ok(ratio),
        _ => Err(ConfigError::new(
            "OTEL_TRACES_SAMPLER_ARG",
            text,
            "expected a ratio from 0 to 1",
        )),
    }
}

impl Sampler {
    /// A sampler from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`
    /// values (`None`: unset, giving the default).
    pub fn from_env_values(name: Option<&str>, arg: Option<&str>) -> Result<Self, ConfigError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(Sampler::default());
        };
        Ok(match name {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio_arg(arg)?),
            "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
            "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
            "parentbased_traceidratio" => Sampler::ParentBased(Root::TraceIdRatio(ratio_arg(arg)?)),
            other => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_SAMPLER",
                    other,
                    "expected one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
                ))
            }
        })
    }

    /// Reads `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let name = std::env::var("OTEL_TRACES_SAMPLER").ok();
        let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok();
        Self::from_env_values(name.as_deref(), arg.as_deref())
    }

    /// A sampler set in code: an error if its ratio is not from 0 to 1 (or
    /// NaN), as `OTEL_TRACES_SAMPLER_ARG` would be.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        match *self {
            Sampler::TraceIdRatio(ratio) | Sampler::ParentBased(Root::TraceIdRatio(ratio))
                if !is_ratio(ratio) =>
            {
                Err(ConfigError::new(
                    "sampler",
                    format!("{self:?}"),
                    "a ratio must be from 0 to 1",
                ))
            }
            _ => Ok(()),
        }
    }

    /// How this sampler decides roots, worked out once per pipeline so the
    /// hot path compares one byte.
    pub(crate) fn roots(&self) -> Roots {
        let ratio = |ratio: f64, none: Roots| {
            if ratio >= 1.0 {
                Roots::Sampled
            } else if ratio > 0.0 {
                Roots::ByTraceId
            } else {
                none
            }
        };
        match *self {
            Sampler::AlwaysOff => Roots::NothingSampled,
            Sampler::AlwaysOn | Sampler::ParentBased(Root::AlwaysOn) => Roots::Sampled,
            Sampler::ParentBased(Root::AlwaysOff) => Roots::Unsampled,
            // Not parent-based: no span at all, with or without a parent.
            Sampler::TraceIdRatio(r) => ratio(r, Roots::NothingSampled),
            Sampler::ParentBased(Root::TraceIdRatio(r)) => ratio(r, Roots::Unsampled),
        }
    }

    /// Decides a span of `trace_id`; `parent_sampled` is `Some` when the span
    /// has a (local or remote) parent.
    #[inline]
    pub(crate) fn decide(&self, parent_sampled: Option<bool>, trace_id: u128) -> bool {
        match (self, parent_sampled) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::TraceIdRatio(ratio), _) => ratio_keeps(*ratio, trace_id),
            (Sampler::ParentBased(_), Some(parent)) => parent,
            (Sampler::ParentBased(Root::AlwaysOn), None) => true,
            (Sampler::ParentBased(Root::AlwaysOff), None) => false,
            (Sampler::ParentBased(Root::TraceIdRatio(ratio)), None) => {
                ratio_keeps(*ratio, trace_id)
            }
        }
    }
}

/// A sampling ratio: from 0 to 1 (NaN is not).
fn is_ratio(ratio: f64) -> bool {
    (0.0..=1.0).contains(&ratio)
}

/// How a sampler decides root spans (no span in the current context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roots {
    /// No span is sampled, root or child.
    NothingSampled,
    /// Roots are not sampled (children follow their parents).
    Unsampled,
    /// Roots are sampled.
    Sampled,
    /// A root is decided by its trace id (a ratio).
    ByTraceId,
}

/// Keeps `ratio` of all trace ids, deterministically per trace id (its low
/// 64 bits are random), so every service sampling by ratio agrees.
fn ratio_keeps(ratio: f64, trace_id: u128) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let threshold = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_parse() {
        assert_eq!(Sampler::from_env_values(None, None), Ok(Sampler::default()));
        assert_eq!(
            Sampler::from_env_values(Some("parentbased_traceidratio"), Some("0.5")),
            Ok(Sampler::ParentBased(Root::TraceIdRatio(0.5)))
        );
        assert!(Sampler::from_env_values(Some("traceidratio"), Some("2")).is_err());
        assert!(Sampler::from_env_values(Some("traceidratio"), Some("x")).is_err());
    }

    #[test]
    fn ratio_keeps_about_the_ratio() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let kept = (0..100_000)
            .filter(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ratio_keeps(0.25, u128::from(state))
            })
            .count();
        assert!((23_000..27_000).contains(&kept), "{kept}");
        assert!(ratio_keeps(1.0, 0));
        assert!(!ratio_keeps(0.0, 0));
    }

    #[test]
    fn parent_based_follows_the_parent() {
        let sampler = Sampler::ParentBased(Root::AlwaysOff);
        assert!(sampler.decide(Some(true), 1));
        assert!(!sampler.decide(Some(false), 1));
        assert!(!sampler.decide(None, 1));
    }

    #[test]
    fn the_root_rule_agrees_with_decide() {
        let samplers = [
            Sampler::AlwaysOn,
            Sampler::AlwaysOff,
            Sampler::TraceIdRatio(0.0),
            Sampler::TraceIdRatio(0.3),
            Sampler::TraceIdRatio(1.0),
            Sampler::ParentBased(Root::AlwaysOn),
            Sampler::ParentBased(Root::AlwaysOff),
            Sampler::ParentBased(Root::TraceIdRatio(0.0)),
            Sampler::ParentBased(Root::TraceIdRatio(0.3)),
            Sampler::ParentBased(Root::TraceIdRatio(1.0)),
        ];
        for sampler in samplers {
            let roots: Vec<bool> = (0..200u128)
                .map(|n| sampler.decide(None, n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)))
                .collect();
            let children = [true, false].map(|parent| sampler.decide(Some(parent), 7));
            match sampler.roots() {
                Roots::NothingSampled => {
                    assert!(
                        !roots.contains(&true) && children == [false, false],
                        "{sampler:?}"
                    )
                }
                Roots::Unsampled => assert!(!roots.contains(&true), "{sampler:?}"),
                Roots::Sampled => assert!(!roots.contains(&false), "{sampler:?}"),
                Roots::ByTraceId => {
                    assert!(
                        roots.contains(&true) && roots.contains(&false),
                        "{sampler:?}"
                    )
                }
            }
        }
    }
}
