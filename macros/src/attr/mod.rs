//! Parsing: each attribute's arguments into a small typed model. Syntax
//! errors stop the attribute; every other mistake is collected in
//! [`Errors`] and parsing goes on, so all of them are reported together,
//! each spanned on its own token.
//!
//! The arguments every attribute shares (`crate`, `name`, `labels`) are
//! parsed here, once; each attribute's own arguments in its module.

pub mod breaker;
pub mod counted;
pub mod timed;
pub mod traced;
pub mod value;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Expr, LitStr, Path};

use crate::errors::Errors;

/// The attributes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counted,
    Timed,
    Traced,
    CircuitBreaker,
    Histogram,
    Gauge,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Counted,
        Kind::Timed,
        Kind::Traced,
        Kind::CircuitBreaker,
        Kind::Histogram,
        Kind::Gauge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Counted => "counted",
            Kind::Timed => "timed",
            Kind::Traced => "traced",
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::Histogram => "histogram",
            Kind::Gauge => "gauge",
        }
    }

    /// Whether it changes what the function does (then the
    /// `disable-instrumentation` feature keeps it, and it applies to single
    /// functions, not whole impl blocks).
    pub fn changes_behaviour(self) -> bool {
        self == Kind::CircuitBreaker
    }

    /// The telemark attribute `attr` is, if it is one: one of the
    /// names, written alone (imported), as `telemark::name` (`::` first or
    /// not), or under `krate`, the `crate = ...` path given. Another crate's
    /// `other::timed` is left alone.
    pub fn of(attr: &syn::Attribute, krate: Option<&Path>) -> Option<Kind> {
        let path = attr.path();
        let last = path.segments.last()?;
        let kind = Kind::ALL
            .into_iter()
            .find(|kind| last.ident == kind.name())?;
        let prefix: Vec<String> = path
            .segments
            .iter()
            .take(path.segments.len() - 1)
            .map(|segment| segment.ident.to_string())
            .collect();
        let ours = prefix.is_empty()
            || prefix == ["telemark"]
            || krate.is_some_and(|krate| {
                let krate: Vec<String> = krate
                    .segments
                    .iter()
                    .map(|segment| segment.ident.to_string())
                    .collect();
                prefix == krate
            });
        ours.then_some(kind)
    }
}

/// One parsed attribute.
#[derive(Clone)]
pub enum Attribute {
    Counted(counted::Counted),
    Timed(timed::Timed),
    Traced(traced::Traced),
    CircuitBreaker(Box<breaker::Breaker>),
    Histogram(value::ValueMetric),
    Gauge(value::ValueMetric),
}

impl Attribute {
    /// Parses `kind`'s arguments; `None` when their syntax is broken (the
    /// error is in `errors`).
    /// `span` is where the attribute is written, for mistakes that have no
    /// token of their own.
    pub fn parse(
        kind: Kind,
        args: TokenStream,
        span: proc_macro2::Span,
        errors: &mut Errors,
    ) -> Option<Attribute> {
        let mut common = Common::default();
        let attribute = match kind {
            Kind::Counted => Attribute::Counted(counted::parse(args, &mut common, errors)?),
            Kind::Timed => Attribute::Timed(timed::parse(args, &mut common, errors)?),
            Kind::Traced => Attribute::Traced(traced::parse(args, &mut common, errors)?),
            Kind::CircuitBreaker => Attribute::CircuitBreaker(Box::new(breaker::parse(
                args,
                &mut common,
                span,
                errors,
            )?)),
            Kind::Histogram => {
                Attribute::Histogram(value::parse(args, true, &mut common, span, errors)?)
            }
            Kind::Gauge => Attribute::Gauge(value::parse(args, false, &mut common, span, errors)?),
        };
        Some(attribute)
    }

    pub fn kind(&self) -> Kind {
        match self {
            Attribute::Counted(_) => Kind::Counted,
            Attribute::Timed(_) => Kind::Timed,
            Attribute::Traced(_) => Kind::Traced,
            Attribute::CircuitBreaker(_) => Kind::CircuitBreaker,
            Attribute::Histogram(_) => Kind::Histogram,
            Attribute::Gauge(_) => Kind::Gauge,
        }
    }

    fn common(&self) -> &Common {
        match self {
            Attribute::Counted(a) => &a.common,
            Attribute::Timed(a) => &a.common,
            Attribute::Traced(a) => &a.common,
            Attribute::CircuitBreaker(a) => &a.common,
            Attribute::Histogram(a) | Attribute::Gauge(a) => &a.common,
        }
    }

    pub fn krate(&self) -> Option<&Path> {
        self.common().krate.as_ref()
    }

    pub fn self_type(&self) -> Option<&Path> {
        self.common().self_type.as_ref()
    }

    /// Whether `self_type` was written, even with a value refused.
    pub fn names_self_type(&self) -> bool {
        self.common().seen.iter().any(|name| name == "self_type")
    }
}

/// What `objective = ..` should look like.
pub const OBJECTIVE: &str =
    "a path to a `telemark::Objective` constant, e.g. `objective = API_SLO`";

/// What `name` of a metric should look like.
pub const METRIC_NAME: &str = "a metric name string, e.g. `name = \"jobs_total\"`";

/// The arguments every attribute may take, parsed the same way for all.
#[derive(Default, Clone)]
pub struct Common {
    /// `crate = path::to::telemark`.
    pub krate: Option<Path>,
    /// `name = "..."` (a metric, span or breaker name: checked by each
    /// attribute).
    pub name: Option<LitStr>,
    /// `labels(key = "value", ...)` (metrics only): the constant ones.
    pub labels: Vec<(String, String)>,
    /// The labels computed on each call (`key = expression` or
    /// `key = |returned| ...`), in the order written.
    pub computed: Vec<ComputedLabel>,
    /// `self_type = Type`: the type of a method annotated outside an
    /// annotated impl block, for `function="Type::method"`.
    pub self_type: Option<Path>,
    seen: Vec<String>,
}

/// What one argument turned out to be.
pub enum Argument {
    /// A shared argument, stored in [`Common`].
    Done,
    /// The attribute's own argument, by name.
    Own(String),
}

impl Common {
    /// Reads the argument's name (refusing duplicates) and the shared
    /// arguments; an attribute's own arguments come back by name.
    pub fn argument(
        &mut self,
        meta: &ParseNestedMeta,
        takes_labels: bool,
        name_hint: &str,
        errors: &mut Errors,
    ) -> syn::Result<Argument> {
        let name = path_name(&meta.path);
        if self.seen.contains(&name) {
            errors.push(meta.error(format!("duplicate argument `{name}`")));
            skip_value(meta)?;
            return Ok(Argument::Done);
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "crate" => {
                let expected = "a path to the telemark crate, e.g. `crate = ::telemark`";
                self.krate = function_path(meta, expected, errors)?;
                Ok(Argument::Done)
            }
            "name" => {
                self.name = string(meta, name_hint, errors)?;
                Ok(Argument::Done)
            }
            "labels" if takes_labels => {
                (self.labels, self.computed) = labels(meta, errors)?;
                Ok(Argument::Done)
            }
            "self_type" => {
                let expected = "the type the method belongs to, e.g. `self_type = Cart`";
                self.self_type = function_path(meta, expected, errors)?;
                Ok(Argument::Done)
            }
            _ => Ok(Argument::Own(name)),
        }
    }
}

fn path_name(path: &Path) -> String {
    path.segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Consumes an argument's value (`= expr` or `(...)`) after an error.
pub fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

/// `unknown argument` error listing what the attribute accepts; the value
/// is skipped so parsing goes on.
pub fn unknown(
    meta: &ParseNestedMeta,
    attribute: &str,
    name: &str,
    expected: &str,
    errors: &mut Errors,
) -> syn::Result<()> {
    errors.push(meta.error(format!(
        "unknown argument `{name}` for #[{attribute}]; expected one of: {expected}"
    )));
    skip_value(meta)
}

/// `= "..."`: the string, or `None` with an error at the value.
pub fn string(
    meta: &ParseNestedMeta,
    expected: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let value = meta.value()?;
    let expr: Expr = value.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(Some(lit)),
        other => {
            errors.spanned(other, format!("expected {expected}"));
            Ok(None)
        }
    }
}

/// `= path::to::function`: the path, or `None` with an error at the value.
pub fn function_path(
    meta: &ParseNestedMeta,
    expected: &str,
    errors: &mut Errors,
) -> syn::Result<Option<Path>> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Path(path) if path.qself.is_none() => Ok(Some(path.path)),
        other => {
            errors.spanned(other, format!("expected {expected}"));
            Ok(None)
        }
    }
}

/// Labels every function series already has, or that a family adds itself.
const RESERVED_LABELS: &[&str] = &[
    "function",
    "module",
    "service_name",
    "result",
    "le",
    "caller_function",
    "caller_module",
    "objective_name",
    "objective_percentile",
    "objective_latency_threshold",
    "otel_metric_overflow",
];

/// Labels with one value on every series: `(key, value)`.
type ConstantLabels = Vec<(String, String)>;

/// A label whose value is computed on each call.
#[derive(Clone)]
pub struct ComputedLabel {
    pub name: String,
    pub source: LabelSource,
}

/// Where a computed label's value comes from.
#[derive(Clone)]
pub enum LabelSource {
    /// An expression evaluated when the call starts (the arguments are
    /// still there): `mode = mode`, `tier = self.tier`.
    Call(Expr),
    /// A closure given a reference to the returned value:
    /// `reason = |result| kind(result)`.
    Returned(syn::ExprClosure),
}

impl quote::ToTokens for LabelSource {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            LabelSource::Call(expr) => expr.to_tokens(tokens),
            LabelSource::Returned(closure) => closure.to_tokens(tokens),
        }
    }
}

/// Checks a closure over the returned value (`what` computes it): one
/// argument, not `async`.
pub fn check_returned_closure(
    closure: &syn::ExprClosure,
    what: &str,
    example: &str,
    errors: &mut Errors,
) {
    if closure.inputs.len() != 1 || closure.asyncness.is_some() {
        errors.spanned(
            closure,
            format!(
                "{what} computed from the returned value is a closure of one argument, \
                 given a reference to the value: e.g. `{example}`"
            ),
        );
    }
}

/// The bucket bounds' count checked (1 to `MAX_BUCKETS`): whether to go on
/// reading them.
pub fn bucket_count_ok(array: &syn::ExprArray, errors: &mut Errors) -> bool {
    let given = array.elems.len();
    if given == 0 {
        errors.spanned(array, "`buckets` needs at least one bound");
    } else if given > telemark_limits::MAX_BUCKETS {
        let most = telemark_limits::MAX_BUCKETS;
        errors.spanned(
            array,
            format!("{given} buckets given; at most {most} are supported"),
        );
    }
    (1..=telemark_limits::MAX_BUCKETS).contains(&given)
}

/// What a label's value may be.
const LABEL_VALUE: &str = "a label value: a string (`team = \"payments\"`), an expression \
                           evaluated when the call starts (`mode = mode`), or a closure over \
                           the returned value (`reason = |result| kind(result)`)";

/// `labels(key = "value", key = expression, key = |returned| ...)`: the
/// constant labels, then the computed ones.
fn labels(
    meta: &ParseNestedMeta,
    errors: &mut Errors,
) -> syn::Result<(ConstantLabels, Vec<ComputedLabel>)> {
    let ahead = meta.input.fork();
    let content;
    syn::parenthesized!(content in ahead);
    if content.is_empty() {
        errors.push(meta.error("`labels(...)` needs at least one `key = \"value\"`"));
        skip_value(meta)?;
        return Ok((Vec::new(), Vec::new()));
    }
    let mut constant: Vec<(String, String)> = Vec::new();
    let mut computed: Vec<ComputedLabel> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    meta.parse_nested_meta(|label| {
        let Some(key) = label.path.get_ident() else {
            errors.push(label.error("a label name must be a plain identifier"));
            return skip_value(&label);
        };
        let key_text = key.to_string();
        let key_text = key_text.trim_start_matches("r#").to_owned();
        if !key_text.is_ascii() {
            errors.push(label.error("Prometheus label names are ASCII letters, digits and `_`"));
        } else if key_text.starts_with("__") {
            errors.push(label.error("label names starting with `__` are reserved by Prometheus"));
        } else if RESERVED_LABELS.contains(&key_text.as_str()) {
            errors.push(label.error(format!(
                "label `{key_text}` is set by telemark and cannot be overridden"
            )));
        } else if seen.contains(&key_text) {
            errors.push(label.error(format!("duplicate label `{key_text}`")));
        }
        seen.push(key_text.clone());
        if !label.input.peek(syn::Token![=]) {
            errors.push(label.error(format!("expected `{key_text} = ` and {LABEL_VALUE}")));
            return skip_value(&label);
        }
        match label.value()?.parse::<Expr>()? {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => constant.push((key_text, lit.value())),
            Expr::Lit(other) => errors.spanned(other, format!("expected {LABEL_VALUE}")),
            Expr::Closure(closure) => {
                check_returned_closure(
                    &closure,
                    "a label",
                    "reason = |result| kind(result)",
                    errors,
                );
                computed.push(ComputedLabel {
                    name: key_text,
                    source: LabelSource::Returned(closure),
                });
            }
            expr => computed.push(ComputedLabel {
                name: key_text,
                source: LabelSource::Call(expr),
            }),
        }
        Ok(())
    })?;
    Ok((constant, computed))
}

/// Families telemark renders itself, which no attribute may take over.
const RESERVED_NAMES: &[&str] = &[
    "function_calls_concurrent",
    "build_info",
    "telemark_spans_exported_total",
    "telemark_spans_dropped_total",
    "telemark_span_updates_dropped_total",
    "telemark_render_seconds_total",
    "telemark_span_export_seconds_total",
    "telemark_metric_exports_total",
    "telemark_metric_exports_failed_total",
    "telemark_metric_points_dropped_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_threads",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
];

/// Checks a metric name against Prometheus's syntax and telemark's own
/// families; `Some(name)` when it is usable.
pub fn metric_name(lit: &LitStr, errors: &mut Errors) -> Option<String> {
    let value = lit.value();
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        errors.spanned(
            lit,
            format!(
                "`{value}` is not a valid Prometheus metric name \
                 (letters, digits, `_` and `:`, not starting with a digit)"
            ),
        );
        return None;
    }
    if RESERVED_NAMES.contains(&value.as_str()) {
        errors.spanned(
            lit,
            format!("`{value}` is a metric telemark exports itself; choose another name"),
        );
        return None;
    }
    Some(value)
}
