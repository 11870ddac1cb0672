//! `#[timed]`: the `function_calls_duration_seconds` histogram and the
//! `function_calls_concurrent` gauge.

use proc_macro2::TokenStream;
use syn::{Expr, Lit};

use super::{function_path, metric_name, skip_value, unknown, Argument, Common, OBJECTIVE};
use crate::errors::Errors;
use telemark_limits::{bucket_bound_nanos, MAX_BUCKET_SECONDS, MIN_BUCKET_SECONDS};

#[derive(Clone)]
pub struct Timed {
    pub common: Common,
    /// The histogram's name (family).
    pub metric: String,
    /// This function's own bucket bounds in nanoseconds.
    pub buckets: Option<Vec<u64>>,
    /// `objective = PATH`: an `Objective` whose latency target the
    /// histogram carries.
    pub objective: Option<syn::Path>,
}

const EXPECTED: &str = "`name`, `buckets`, `labels`, `objective`, `self_type`, `crate`";

pub fn parse(args: TokenStream, common: &mut Common, errors: &mut Errors) -> Option<Timed> {
    let mut buckets = None;
    let mut objective = None;
    let parser = syn::meta::parser(|meta| {
        let name = match common.argument(&meta, true, super::METRIC_NAME, errors)? {
            Argument::Done => return Ok(()),
            Argument::Own(name) => name,
        };
        match name.as_str() {
            "buckets" => {
                if !meta.input.peek(syn::Token![=]) {
                    errors.push(meta.error(
                        "expected an array of bucket bounds in seconds, \
                         e.g. `buckets = [0.01, 0.1, 1.0]`",
                    ));
                    return skip_value(&meta);
                }
                match meta.value()?.parse::<Expr>()? {
                    Expr::Array(array) => buckets = bucket_nanos(&array, errors),
                    other => errors.spanned(
                        other,
                        "expected an array of bucket bounds in seconds, \
                         e.g. `buckets = [0.01, 0.1, 1.0]`",
                    ),
                }
                Ok(())
            }
            "objective" => {
                objective = function_path(&meta, OBJECTIVE, errors)?;
                Ok(())
            }
            _ => unknown(&meta, "timed", &name, EXPECTED, errors),
        }
    });
    let parsed = syn::parse::Parser::parse2(parser, args);
    errors.ok(parsed)?;
    let metric = match &common.name {
        None => "function_calls_duration_seconds".to_owned(),
        Some(lit) => {
            let name = metric_name(lit, errors).unwrap_or_else(|| lit.value());
            if let Some(suffix) = ["_total", "_bucket", "_sum", "_count"]
                .into_iter()
                .find(|suffix| name.ends_with(suffix))
            {
                errors.spanned(
                    lit,
                    format!(
                        "a histogram's name must not end in `{suffix}`: Prometheus adds \
                         `_bucket`, `_sum` and `_count` to it"
                    ),
                );
            }
            name
        }
    };
    for label in &common.computed {
        errors.spanned(
            &label.source,
            "#[timed] takes constant labels (`key = \"value\"`); labels computed on each \
             call are supported by #[counted]",
        );
    }
    Some(Timed {
        common: std::mem::take(common),
        metric,
        buckets,
        objective,
    })
}

/// Checks literal bucket bounds (seconds) and converts them to nanoseconds,
/// by the rules the runtime checks too.
fn bucket_nanos(array: &syn::ExprArray, errors: &mut Errors) -> Option<Vec<u64>> {
    if !super::bucket_count_ok(array, errors) {
        return None;
    }
    let mut nanos: Vec<u64> = Vec::with_capacity(array.elems.len());
    let mut valid = true;
    for element in &array.elems {
        let seconds = match element {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Float(float) => errors.ok(float.base10_parse::<f64>()),
                Lit::Int(int) => errors.ok(int.base10_parse::<u64>()).map(|n| n as f64),
                other => {
                    errors.spanned(other, "a bucket bound must be a number of seconds");
                    None
                }
            },
            Expr::Unary(_) => {
                errors.spanned(element, "bucket bounds must be positive");
                None
            }
            other => {
                errors.spanned(other, "a bucket bound must be a number literal (seconds)");
                None
            }
        };
        let Some(seconds) = seconds else {
            valid = false;
            continue;
        };
        let Some(bound) = bucket_bound_nanos(seconds) else {
            errors.spanned(
                element,
                format!(
                    "bucket bounds must be positive, between {MIN_BUCKET_SECONDS:e} and \
                     {MAX_BUCKET_SECONDS:e} seconds"
                ),
            );
            valid = false;
            continue;
        };
        if nanos.last().is_some_and(|&previous| bound <= previous) {
            errors.spanned(
                element,
                "bucket bounds must be sorted in increasing order, without repeats",
            );
            valid = false;
        }
        nanos.push(bound);
    }
    valid.then_some(nanos)
}
