//! `#[histogram]` and `#[gauge]`: a value the function sees (an argument,
//! something of `self`, or its returned value) recorded in a histogram or
//! set on a gauge.

use proc_macro2::TokenStream;
use syn::{Expr, Lit, LitStr};

use super::{
    bucket_count_ok, check_returned_closure, metric_name, skip_value, unknown, Argument, Common,
    LabelSource,
};
use crate::errors::Errors;

#[derive(Clone)]
pub enum ValueKind {
    /// Bucket upper bounds, sorted.
    Histogram {
        buckets: Vec<f64>,
    },
    Gauge,
}

#[derive(Clone)]
pub struct ValueMetric {
    pub common: Common,
    /// The family's name.
    pub metric: String,
    pub kind: ValueKind,
    /// Where the value comes from: an expression when the call starts, or
    /// a closure over the returned value.
    pub source: LabelSource,
    /// `unit = "bytes"`: the unit the name ends with.
    pub unit: Option<String>,
}

const VALUE: &str = "the value to record: an expression evaluated when the call starts \
                     (`value = request.len()`), or a closure over the returned value \
                     (`value = |hits| hits.len()`)";

pub fn parse(
    args: TokenStream,
    histogram: bool,
    common: &mut Common,
    span: proc_macro2::Span,
    errors: &mut Errors,
) -> Option<ValueMetric> {
    let attribute = if histogram { "histogram" } else { "gauge" };
    let expected = if histogram {
        "`name`, `value`, `buckets`, `unit`, `labels`, `self_type`, `crate`"
    } else {
        "`name`, `value`, `unit`, `labels`, `self_type`, `crate`"
    };
    let mut source: Option<LabelSource> = None;
    let mut buckets: Option<Vec<f64>> = None;
    let mut unit: Option<LitStr> = None;
    // Written, even if refused (then not reported missing as well).
    let (mut value_written, mut buckets_written) = (false, false);
    let parser = syn::meta::parser(|meta| {
        let hint = if histogram {
            "a metric name string, e.g. `name = \"request_body_bytes\"`"
        } else {
            "a metric name string, e.g. `name = \"queue_depth\"`"
        };
        let name = match common.argument(&meta, true, hint, errors)? {
            Argument::Done => return Ok(()),
            Argument::Own(name) => name,
        };
        match name.as_str() {
            "value" => {
                value_written = true;
                if !meta.input.peek(syn::Token![=]) {
                    errors.push(meta.error(format!("expected `value = ` and {VALUE}")));
                    return skip_value(&meta);
                }
                source = match meta.value()?.parse::<Expr>()? {
                    Expr::Closure(closure) => {
                        let example = "value = |hits| hits.len()";
                        check_returned_closure(&closure, "a value", example, errors);
                        Some(LabelSource::Returned(closure))
                    }
                    Expr::Lit(lit) => {
                        errors.spanned(
                            lit,
                            format!("a constant is the same on every call; expected {VALUE}"),
                        );
                        None
                    }
                    expr => Some(LabelSource::Call(expr)),
                };
                Ok(())
            }
            "buckets" if histogram => {
                buckets_written = true;
                let expected = "an array of bucket upper bounds, e.g. `buckets = [64, 256, 1024]`";
                if !meta.input.peek(syn::Token![=]) {
                    errors.push(meta.error(format!("expected {expected}")));
                    return skip_value(&meta);
                }
                match meta.value()?.parse::<Expr>()? {
                    Expr::Array(array) => buckets = bounds(&array, errors),
                    other => errors.spanned(other, format!("expected {expected}")),
                }
                Ok(())
            }
            "unit" => {
                let value: Expr = meta.value()?.parse()?;
                match value {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(lit), ..
                    }) if is_unit(&lit.value()) => unit = Some(lit),
                    other => errors.spanned(
                        other,
                        "expected a unit in Prometheus's style, lowercase letters and `_`, \
                         e.g. `unit = \"bytes\"`",
                    ),
                }
                Ok(())
            }
            _ => unknown(&meta, attribute, &name, expected, errors),
        }
    });
    let parsed = syn::parse::Parser::parse2(parser, args);
    errors.ok(parsed)?;
    for label in &common.computed {
        errors.spanned(
            &label.source,
            format!(
                "#[{attribute}] takes constant labels (`key = \"value\"`); labels computed on \
                 each call are supported by #[counted]"
            ),
        );
    }
    let metric = match &common.name {
        None => {
            errors.at(
                span,
                format!("#[{attribute}] needs a `name = \"...\"`: there is no default family"),
            );
            String::new()
        }
        Some(lit) => {
            let name = metric_name(lit, errors).unwrap_or_else(|| lit.value());
            let reserved_suffixes: &[&str] = if histogram {
                &["_total", "_bucket", "_sum", "_count"]
            } else {
                &["_total"]
            };
            if let Some(suffix) = reserved_suffixes.iter().find(|s| name.ends_with(**s)) {
                let why = if histogram {
                    "Prometheus adds `_bucket`, `_sum` and `_count` to a histogram's name"
                } else {
                    "`_total` names a counter"
                };
                errors.spanned(
                    lit,
                    format!("a {attribute}'s name must not end in `{suffix}`: {why}"),
                );
            } else if name.starts_with("function_calls") {
                errors.spanned(
                    lit,
                    "`function_calls*` names are the families of #[counted] and #[timed]; \
                     choose another name",
                );
            }
            if let Some(unit) = &unit {
                let suffix = format!("_{}", unit.value());
                if !name.ends_with(&suffix) {
                    errors.spanned(
                        lit,
                        format!(
                            "a metric's name ends with its unit: `{name}{suffix}` \
                             (Prometheus's naming rules)"
                        ),
                    );
                }
            }
            name
        }
    };
    if !value_written {
        errors.at(span, format!("#[{attribute}] needs {VALUE}"));
    }
    let kind = if histogram {
        match buckets {
            Some(buckets) => ValueKind::Histogram { buckets },
            None => {
                if !buckets_written {
                    errors.at(
                        span,
                        "#[histogram] needs `buckets = [...]`: a value has no default scale \
                         (e.g. `buckets = [64, 256, 1024, 4096]` for bytes)",
                    );
                }
                ValueKind::Histogram {
                    buckets: Vec::new(),
                }
            }
        }
    } else {
        ValueKind::Gauge
    };
    Some(ValueMetric {
        common: std::mem::take(common),
        metric,
        kind,
        source: source.unwrap_or_else(|| LabelSource::Call(syn::parse_quote!(0))),
        unit: unit.map(|lit| lit.value()),
    })
}

fn is_unit(unit: &str) -> bool {
    !unit.is_empty()
        && unit
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        && unit.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Literal bucket bounds: numbers, finite, strictly increasing, at most
/// `MAX_BUCKETS`.
fn bounds(array: &syn::ExprArray, errors: &mut Errors) -> Option<Vec<f64>> {
    if !bucket_count_ok(array, errors) {
        return None;
    }
    let mut bounds = Vec::new();
    for element in &array.elems {
        let (negative, literal) = match element {
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                ..
            }) => (true, &**expr),
            other => (false, other),
        };
        let value = match literal {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(int), ..
            }) => int.base10_parse::<f64>().ok(),
            Expr::Lit(syn::ExprLit {
                lit: Lit::Float(float),
                ..
            }) => float.base10_parse::<f64>().ok(),
            _ => None,
        };
        match value.filter(|value| value.is_finite()) {
            Some(value) => {
                let value = if negative { -value } else { value };
                if bounds.last().is_some_and(|last| *last >= value) {
                    errors.spanned(element, "bucket bounds must be strictly increasing");
                    return None;
                }
                bounds.push(value);
            }
            None => {
                errors.spanned(element, "a bucket bound is a number literal, e.g. `1024`");
                return None;
            }
        }
    }
    Some(bounds)
}
