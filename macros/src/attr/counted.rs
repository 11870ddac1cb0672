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
}

const EXPECTED: &str = "`name`, `labels`, `ok_if`, `error_if`, `objective`, `self_type`, `crate`";

pub fn parse(args: TokenStream, common: &mut Common, errors: &mut Errors) -> Option<Counted> {
    let mut classifier = Classifier::ByType;
    let mut objective = None;
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
    Some(Counted {
        common: std::mem::take(common),
        metric,
        classifier,
        objective,
    })
}
