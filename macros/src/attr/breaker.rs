//! `#[circuit_breaker]`: calls through a named breaker, with optional
//! timeout, retry with backoff, error classification and fallback.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Error, LitInt, LitStr, Path, Result};

use super::{function_path, skip_value, unknown, Argument, Common};
use crate::errors::Errors;
use telemark_limits::{MAX_ATTEMPTS, MAX_HALF_OPEN_CALLS, MAX_WINDOW};

const EXPECTED: &str = "`name`, `consecutive_failures`, `failure_rate`, `window`, `min_calls`, \
     `slow_call`, `slow_call_rate`, `open_for`, `open_for_max`, `half_open_calls`, `failure_if`, \
     `ignore_if`, `fallback`, `timeout`, `retry`, `self_type`, `crate`";

/// A literal argument with the span to report it at.
#[derive(Clone)]
pub struct Given<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Default, Clone)]
pub struct Rules {
    consecutive_failures: Option<Given<u64>>,
    failure_rate: Option<Given<u64>>,
    window: Option<Given<u64>>,
    min_calls: Option<Given<u64>>,
    slow_call: Option<Given<u64>>,
    slow_call_rate: Option<Given<u64>>,
    open_for: Option<Given<u64>>,
    open_for_max: Option<Given<u64>>,
    half_open_calls: Option<Given<u64>>,
}

#[derive(Clone)]
pub struct Retry {
    pub attempts: u64,
    pub min_nanos: u64,
    pub max_nanos: u64,
    pub jitter: &'static str,
}

#[derive(Clone)]
pub struct Breaker {
    pub common: Common,
    /// The breaker's name, when not `module::function`.
    pub name: Option<String>,
    pub rules: Rules,
    pub failure_if: Option<Path>,
    pub ignore_if: Option<Path>,
    pub fallback: Option<Path>,
    /// Reported at `timeout` itself if the function is not async.
    pub timeout: Option<Given<u64>>,
    pub retry: Option<Retry>,
}

fn integer(meta: &ParseNestedMeta, what: &str) -> Result<Given<u64>> {
    let expected = || format!("expected an integer from 0 to {} ({what})", u32::MAX);
    let lit: LitInt = meta
        .value()?
        .parse()
        .map_err(|err| Error::new(err.span(), expected()))?;
    let value = lit
        .base10_parse::<u32>()
        .map(u64::from)
        .map_err(|_| Error::new(lit.span(), expected()))?;
    Ok(Given {
        value,
        span: lit.span(),
    })
}

fn percentage(meta: &ParseNestedMeta) -> Result<Given<u64>> {
    let given = integer(meta, "a percentage from 1 to 100")?;
    if !(1..=100).contains(&given.value) {
        return Err(Error::new(
            given.span,
            format!("expected a percentage from 1 to 100, got {}", given.value),
        ));
    }
    Ok(given)
}

/// `"250ms"`, `"2s"`, `"1.5s"`, `"5m"`: a duration in nanoseconds.
fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let unit_nanos: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let nanos = number.parse::<f64>().ok()? * unit_nanos;
    (nanos.is_finite() && nanos < u64::MAX as f64).then_some(nanos.round() as u64)
}

const DURATION_HELP: &str =
    "expected a duration such as \"250ms\", \"2s\", \"1.5s\" or \"5m\" (units: ns, us, ms, s, m, h)";

fn duration(meta: &ParseNestedMeta) -> Result<Given<u64>> {
    let lit: LitStr = meta
        .value()?
        .parse()
        .map_err(|err| Error::new(err.span(), DURATION_HELP))?;
    let value =
        parse_duration(&lit.value()).ok_or_else(|| Error::new(lit.span(), DURATION_HELP))?;
    Ok(Given {
        value,
        span: lit.span(),
    })
}

fn positive_duration(meta: &ParseNestedMeta, name: &str) -> Result<Given<u64>> {
    let given = duration(meta)?;
    if given.value == 0 {
        return Err(Error::new(
            given.span,
            format!("`{name}` must be longer than zero"),
        ));
    }
    Ok(given)
}

fn parse_retry(meta: &ParseNestedMeta, errors: &mut Errors) -> Result<Retry> {
    let mut retry = Retry {
        attempts: 3,
        min_nanos: 100_000_000,
        max_nanos: 2_000_000_000,
        jitter: "Full",
    };
    let mut seen: Vec<String> = Vec::new();
    meta.parse_nested_meta(|inner| {
        let name = inner
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if seen.contains(&name) {
            errors.push(inner.error(format!("duplicate argument `{name}`")));
            return skip_value(&inner);
        }
        seen.push(name.clone());
        match name.as_str() {
            "attempts" => {
                let given = integer(&inner, "calls in all, the first included")?;
                if !(1..=u64::from(MAX_ATTEMPTS)).contains(&given.value) {
                    errors.at(
                        given.span,
                        format!(
                            "`attempts` must be from 1 to {MAX_ATTEMPTS}, got {}",
                            given.value
                        ),
                    );
                }
                retry.attempts = given.value;
            }
            "backoff" => {
                let lit: LitStr = inner.value()?.parse()?;
                let text = lit.value();
                let bounds = text
                    .split_once("..")
                    .and_then(|(min, max)| Some((parse_duration(min)?, parse_duration(max)?)));
                match bounds {
                    None => errors.at(
                        lit.span(),
                        "expected `backoff = \"MIN..MAX\"`, e.g. \"100ms..2s\"",
                    ),
                    Some((min, max)) if min > max => errors.at(
                        lit.span(),
                        "the shortest backoff is longer than the longest",
                    ),
                    Some((min, max)) => {
                        retry.min_nanos = min;
                        retry.max_nanos = max;
                    }
                }
            }
            "jitter" => {
                let lit: LitStr = inner.value()?.parse()?;
                match lit.value().as_str() {
                    "full" => retry.jitter = "Full",
                    "equal" => retry.jitter = "Equal",
                    "none" => retry.jitter = "None",
                    _ => errors.at(
                        lit.span(),
                        "expected `jitter = \"full\"`, `\"equal\"` or `\"none\"`",
                    ),
                }
            }
            _ => {
                return unknown(
                    &inner,
                    "circuit_breaker(retry(...))",
                    &name,
                    "`attempts`, `backoff`, `jitter`",
                    errors,
                )
            }
        }
        Ok(())
    })?;
    Ok(retry)
}

impl Rules {
    fn any(&self) -> bool {
        self.consecutive_failures.is_some()
            || self.failure_rate.is_some()
            || self.window.is_some()
            || self.min_calls.is_some()
            || self.slow_call.is_some()
            || self.slow_call_rate.is_some()
            || self.open_for.is_some()
            || self.open_for_max.is_some()
            || self.half_open_calls.is_some()
    }

    /// The checks of `BreakerConfig::validate`, each reported at its argument.
    fn validate(&self, call_site: Span, errors: &mut Errors) {
        let value =
            |given: &Option<Given<u64>>, default: u64| given.as_ref().map_or(default, |g| g.value);
        let span = |given: &Option<Given<u64>>| given.as_ref().map_or(call_site, |g| g.span);
        let uses_window = self.failure_rate.is_some() || self.slow_call_rate.is_some();
        if self.slow_call_rate.is_some() && self.slow_call.is_none() {
            errors.at(
                span(&self.slow_call_rate),
                "`slow_call_rate` needs `slow_call = \"...\"`, the duration from which a call is slow",
            );
        }
        if value(&self.consecutive_failures, 5) == 0 && !uses_window {
            errors.at(
                span(&self.consecutive_failures),
                "no trip rule left: with `consecutive_failures = 0`, set `failure_rate` or `slow_call_rate`",
            );
        }
        for (given, name) in [(&self.window, "window"), (&self.min_calls, "min_calls")] {
            if given.is_some() && !uses_window {
                errors.at(
                    span(given),
                    format!("`{name}` only matters with `failure_rate` or `slow_call_rate`"),
                );
            }
        }
        let window = value(&self.window, 100);
        if window == 0 || window > u64::from(MAX_WINDOW) {
            errors.at(
                span(&self.window),
                format!("`window` must be from 1 to {MAX_WINDOW} calls, got {window}"),
            );
        }
        let min_calls = value(&self.min_calls, 10.min(window));
        if min_calls == 0 || min_calls > window {
            errors.at(
                span(&self.min_calls),
                format!("`min_calls` must be from 1 to the window ({window}), got {min_calls}"),
            );
        }
        if let (Some(max), open) = (&self.open_for_max, value(&self.open_for, 30_000_000_000)) {
            if max.value < open {
                errors.at(max.span, "`open_for_max` is shorter than `open_for`");
            }
        }
        let trials = value(&self.half_open_calls, 1);
        if trials == 0 || trials > u64::from(MAX_HALF_OPEN_CALLS) {
            errors.at(
                span(&self.half_open_calls),
                format!("`half_open_calls` must be from 1 to {MAX_HALF_OPEN_CALLS}, got {trials}"),
            );
        }
    }

    /// `Some(BreakerConfig::new().x(..)...)`, or `None` with no rule set.
    pub fn config(&self, private: &proc_macro2::Ident) -> TokenStream {
        if !self.any() {
            return quote!(::core::option::Option::None);
        }
        let mut chain = quote!(#private::BreakerConfig::new());
        let duration = |nanos: u64| quote!(::core::time::Duration::from_nanos(#nanos));
        if let Some(given) = &self.consecutive_failures {
            let n = given.value as u32;
            chain.extend(quote!(.consecutive_failures(#n)));
        }
        if let Some(given) = &self.failure_rate {
            let n = given.value as u8;
            chain.extend(quote!(.failure_rate(#n)));
        }
        if let Some(given) = &self.slow_call {
            let d = duration(given.value);
            chain.extend(quote!(.slow_call(#d)));
        }
        if let Some(given) = &self.slow_call_rate {
            let n = given.value as u8;
            chain.extend(quote!(.slow_call_rate(#n)));
        }
        if let Some(given) = &self.window {
            let n = given.value as u32;
            chain.extend(quote!(.window(#n)));
        }
        let min_calls = match (&self.min_calls, &self.window) {
            (Some(given), _) => Some(given.value),
            // The default minimum (10) must fit a smaller window.
            (None, Some(window)) if window.value < 10 => Some(window.value),
            _ => None,
        };
        if let Some(n) = min_calls {
            let n = n as u32;
            chain.extend(quote!(.min_calls(#n)));
        }
        if let Some(given) = &self.open_for {
            let d = duration(given.value);
            chain.extend(quote!(.open_for(#d)));
        }
        if let Some(given) = &self.open_for_max {
            let d = duration(given.value);
            chain.extend(quote!(.open_for_max(#d)));
        }
        if let Some(given) = &self.half_open_calls {
            let n = given.value as u32;
            chain.extend(quote!(.half_open_calls(#n)));
        }
        quote!(::core::option::Option::Some(#chain))
    }
}

pub fn parse(
    args: TokenStream,
    common: &mut Common,
    span: Span,
    errors: &mut Errors,
) -> Option<Breaker> {
    let mut breaker = Breaker {
        common: Common::default(),
        name: None,
        rules: Rules::default(),
        failure_if: None,
        ignore_if: None,
        fallback: None,
        timeout: None,
        retry: None,
    };
    let parser = syn::meta::parser(|meta| {
        let hint = "the breaker's name as a string";
        let name = match common.argument(&meta, false, hint, errors)? {
            Argument::Done => return Ok(()),
            Argument::Own(name) => name,
        };
        let rules = &mut breaker.rules;
        let classifier = "a path to a function taking a reference to the error and returning bool";
        let value = match name.as_str() {
            "consecutive_failures" => {
                integer(&meta, "failures in a row").map(|v| rules.consecutive_failures = Some(v))
            }
            "failure_rate" => percentage(&meta).map(|v| rules.failure_rate = Some(v)),
            "slow_call_rate" => percentage(&meta).map(|v| rules.slow_call_rate = Some(v)),
            "window" => integer(&meta, "calls").map(|v| rules.window = Some(v)),
            "min_calls" => integer(&meta, "calls").map(|v| rules.min_calls = Some(v)),
            "half_open_calls" => {
                integer(&meta, "trial calls").map(|v| rules.half_open_calls = Some(v))
            }
            "slow_call" => positive_duration(&meta, "slow_call").map(|v| rules.slow_call = Some(v)),
            "open_for" => positive_duration(&meta, "open_for").map(|v| rules.open_for = Some(v)),
            "open_for_max" => {
                positive_duration(&meta, "open_for_max").map(|v| rules.open_for_max = Some(v))
            }
            "timeout" => positive_duration(&meta, "timeout").map(|mut given| {
                given.span = meta.path.span();
                breaker.timeout = Some(given);
            }),
            "failure_if" => {
                breaker.failure_if = function_path(&meta, classifier, errors)?;
                Ok(())
            }
            "ignore_if" => {
                breaker.ignore_if = function_path(&meta, classifier, errors)?;
                Ok(())
            }
            "fallback" => {
                let expected = "a path to a function taking the `telemark::BreakerError` and \
                                returning the function's type";
                breaker.fallback = function_path(&meta, expected, errors)?;
                Ok(())
            }
            "retry" => parse_retry(&meta, errors).map(|retry| breaker.retry = Some(retry)),
            _ => return unknown(&meta, "circuit_breaker", &name, EXPECTED, errors),
        };
        // A value that is not what the argument takes: reported, and the
        // rest of the arguments still parsed.
        if let Err(error) = value {
            errors.push(error);
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                skip_value(&meta)?;
            }
        }
        Ok(())
    });
    let parsed = syn::parse::Parser::parse2(parser, args);
    errors.ok(parsed)?;
    if let Some(lit) = &common.name {
        if lit.value().trim().is_empty() {
            errors.spanned(lit, "the breaker's name is empty");
        }
        breaker.name = Some(lit.value());
    }
    breaker.rules.validate(span, errors);
    breaker.common = std::mem::take(common);
    Some(breaker)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("2s"), Some(2_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("5m"), Some(300_000_000_000));
        assert_eq!(parse_duration(" 100us "), Some(100_000));
        for bad in ["", "ms", "10", "10 parsecs", ".5s", "5.s", "1..2s", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
