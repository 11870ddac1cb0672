//! `#[counted]`: `function_calls_total{function, module, service_name, result}`.

use proc_macro2::TokenStream;
use syn::Path;

use super::{function_path, metric_name, unknown, Argument, Common, OBJECTIVE};
use crate::errors::Errors;

/// How a returned value is classified as `ok` or `error`.
#[derive(Clone)]
pub enum Classifier {
    /// `Err` of a `Result` is an error; any other type is ok.
    ByType,
    /// `ok_if = path`: ok when `path(&value)` is true.
    OkIf(Path),
    /// `error_if = path`: error when `path(&value)` is true.
    ErrorIf(Path),
}

#[derive(Clone)]
pub struct Counted {
    pub common: Common,
    /// The counter's name (family).
    pub metric: String,
    pub classifier: Classifier,
    /// `objective = PATH`: an `Objective` whose success-rate target the
    /// counter carries.
    pub objective: Option<Path>,
    /// The most series the computed labels may make.
    pub cardinality_limit: usize,
}

/// The cardinality limit of a counter that does not set one (the runtime's
/// `DEFAULT_CARDINALITY_LIMIT`).
const DEFAULT_CARDINALITY_LIMIT: usize = 100;

/// The highest `cardinality_limit` accepted: a call site's cells are
/// allocated for its limit.
const MAX_CARDINALITY_LIMIT: usize = 10_000;

const EXPECTED: &str =
    "`name`, `labels`, `cardinality_limit`, `ok_if`, `error_if`, `objective`, `self_type`, `crate`";

pub fn parse(args: TokenStream, common: &mut Common, errors: &mut Errors) -> Option<Counted> {
    let mut classifier = Classifier::ByType;
    let mut objective = None;
    let mut cardinality_limit: Option<(usize, proc_macro2::Span)> = None;
    let parser = syn::meta::parser(|meta| {
        let name = match common.argument(&meta, true, super::METRIC_NAME, errors)? {
            Argument::Done => return Ok(()),
            Argument::Own(name) => name,
        };
        match name.as_str() {
            "ok_if" | "error_if" => {
                let expected = format!(
                    "a path to a function taking a reference to the return value and \
                     returning bool, e.g. `{name} = Option::is_some`"
                );
                let path = function_path(&meta, &expected, errors)?;
                if !matches!(classifier, Classifier::ByType) {
                    errors.spanned(&meta.path, "`ok_if` and `error_if` cannot be combined");
                } else if let Some(path) = path {
                    classifier = if name == "ok_if" {
                        Classifier::OkIf(path)
                    } else {
                        Classifier::ErrorIf(path)
                    };
                }
                Ok(())
            }
            "objective" => {
                objective = function_path(&meta, OBJECTIVE, errors)?;
                Ok(())
            }
            "cardinality_limit" => {
                let expected = format!(
                    "the most series the computed labels may make, from 1 to \
                     {MAX_CARDINALITY_LIMIT}, e.g. `cardinality_limit = 50`"
                );
                match meta.value()?.parse::<syn::Expr>()? {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(int),
                        ..
                    }) => match int.base10_parse::<usize>() {
                        Ok(limit) if (1..=MAX_CARDINALITY_LIMIT).contains(&limit) => {
                            cardinality_limit = Some((limit, int.span()));
                        }
                        _ => errors.spanned(int, format!("expected {expected}")),
                    },
                    other => errors.spanned(other, format!("expected {expected}")),
                }
                Ok(())
            }
            _ => unknown(&meta, "counted", &name, EXPECTED, errors),
        }
    });
    let parsed = syn::parse::Parser::parse2(parser, args);
    errors.ok(parsed)?;
    let metric = match &common.name {
        None => "function_calls_total".to_owned(),
        Some(lit) => match metric_name(lit, errors) {
            Some(name) if name.ends_with("_total") => name,
            Some(name) => {
                errors.spanned(
                    lit,
                    format!("a counter's name must end in `_total`, e.g. `{name}_total`"),
                );
                name
            }
            None => lit.value(),
        },
    };
    if let (Some((_, span)), true) = (cardinality_limit, common.computed.is_empty()) {
        errors.at(
            span,
            "`cardinality_limit` bounds the series of labels computed on each call, and \
             this counter has none: add one (`labels(mode = mode)`) or remove the limit",
        );
    }
    Some(Counted {
        common: std::mem::take(common),
        metric,
        classifier,
        objective,
        cardinality_limit: cardinality_limit.map_or(DEFAULT_CARDINALITY_LIMIT, |(limit, _)| limit),
    })
}
