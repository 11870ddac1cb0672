//! What one function gets: every telemark attribute on it (and on its impl
//! block), parsed and validated against its signature, ready to expand into
//! one wrapper.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Path, ReturnType, Signature, Type};

use crate::attr::breaker::Breaker;
use crate::attr::counted::Counted;
use crate::attr::timed::Timed;
use crate::attr::traced::Traced;
use crate::attr::value::ValueMetric;
use crate::attr::{Attribute, Kind, LabelSource};
use crate::errors::Errors;

pub struct Plan {
    /// The telemark crate path (`::telemark` unless `crate = ...`).
    pub krate: Path,
    /// `function` label: `name` or `Type::name`.
    pub function: String,
    /// Whether the method's type is known: passed down by an annotated impl
    /// block, given with `self_type = ..`, or read off a typed receiver.
    pub in_annotated_impl: bool,
    pub counted: Option<Counted>,
    pub timed: Option<Timed>,
    pub traced: Option<Traced>,
    pub breaker: Option<Breaker>,
    /// `#[histogram]`: a value recorded in a histogram.
    pub histogram: Option<ValueMetric>,
    /// `#[gauge]`: a value set on a gauge.
    pub gauge: Option<ValueMetric>,
}

impl Plan {
    /// The plan of a function with these attributes, in any order.
    pub fn new(
        attributes: Vec<Attribute>,
        sig: &Signature,
        impl_type: Option<&str>,
        errors: &mut Errors,
    ) -> Plan {
        let mut krate: Option<Path> = None;
        for attribute in &attributes {
            if let Some(path) = attribute.krate() {
                match &krate {
                    Some(first)
                        if first.to_token_stream().to_string()
                            != path.to_token_stream().to_string() =>
                    {
                        errors.spanned(path, "stacked telemark attributes name different crates");
                    }
                    _ => krate = Some(path.clone()),
                }
            }
        }
        let mut given: Option<&Path> = None;
        for attribute in &attributes {
            if let Some(path) = attribute.self_type() {
                match given {
                    Some(first) if !same_path(first, path) => {
                        errors.spanned(path, "stacked telemark attributes name different types");
                    }
                    _ => given = Some(path),
                }
            }
        }
        let owner = given
            .and_then(|path| path.segments.last())
            .map(|segment| unraw(&segment.ident))
            .or_else(|| impl_type.map(str::to_owned))
            .or_else(|| receiver_type(sig));
        let name = unraw(&sig.ident);
        let mut plan = Plan {
            krate: krate.unwrap_or_else(default_crate),
            function: match &owner {
                Some(type_name) => format!("{type_name}::{name}"),
                None => name,
            },
            in_annotated_impl: owner.is_some() || attributes.iter().any(Attribute::names_self_type),
            counted: None,
            timed: None,
            traced: None,
            breaker: None,
            histogram: None,
            gauge: None,
        };
        for attribute in attributes {
            match attribute {
                Attribute::Counted(counted) => plan.counted = Some(counted),
                Attribute::Timed(timed) => plan.timed = Some(timed),
                Attribute::Traced(traced) => plan.traced = Some(traced),
                Attribute::CircuitBreaker(breaker) => plan.breaker = Some(*breaker),
                Attribute::Histogram(histogram) => plan.histogram = Some(histogram),
                Attribute::Gauge(gauge) => plan.gauge = Some(gauge),
            }
        }
        plan
    }

    /// Drops the instrumentation under the `disable-instrumentation`
    /// feature (a circuit breaker is protection and stays).
    pub fn without_instrumentation(mut self) -> Plan {
        self.counted = None;
        self.timed = None;
        self.traced = None;
        self.histogram = None;
        self.gauge = None;
        self
    }

    /// The objectives the attributes name, which the expansion mentions
    /// even when instrumentation is compiled out (so they stay in use).
    pub fn objectives(&self) -> Vec<Path> {
        let counted = self.counted.as_ref().and_then(|c| c.objective.clone());
        let timed = self.timed.as_ref().and_then(|t| t.objective.clone());
        counted.into_iter().chain(timed).collect()
    }

    /// The expressions computed when a call starts (computed labels and
    /// recorded values), which the expansion mentions (in dead code) when
    /// instrumentation is compiled out, so the arguments they read stay in
    /// use.
    pub fn start_expressions(&self) -> Vec<syn::Expr> {
        let labels = self
            .counted
            .iter()
            .flat_map(|counted| &counted.common.computed);
        let sources = labels
            .map(|label| &label.source)
            .chain(self.value_metrics().map(|(_, metric)| &metric.source));
        sources
            .filter_map(|source| match source {
                LabelSource::Call(expr) => Some(expr.clone()),
                LabelSource::Returned(_) => None,
            })
            .collect()
    }

    /// `#[histogram]` and `#[gauge]`, those given.
    pub fn value_metrics(&self) -> impl Iterator<Item = (Kind, &ValueMetric)> {
        let histogram = self.histogram.iter().map(|h| (Kind::Histogram, h));
        histogram.chain(self.gauge.iter().map(|g| (Kind::Gauge, g)))
    }

    pub fn is_instrumented(&self) -> bool {
        self.counted.is_some()
            || self.timed.is_some()
            || self.traced.is_some()
            || self.histogram.is_some()
            || self.gauge.is_some()
    }

    /// Whether the wrapper must see the returned value (then a synchronous
    /// body runs in a closure, which `#[track_caller]` cannot see through).
    pub fn needs_value(&self) -> Option<Kind> {
        if self.counted.is_some() {
            Some(Kind::Counted)
        } else if self.traced.as_ref().is_some_and(Traced::needs_value) {
            Some(Kind::Traced)
        } else if let Some((kind, _)) = self
            .value_metrics()
            .find(|(_, metric)| matches!(metric.source, LabelSource::Returned(_)))
        {
            Some(kind)
        } else if self.breaker.is_some() {
            Some(Kind::CircuitBreaker)
        } else {
            None
        }
    }

    /// Checks the attributes against the function's signature and each
    /// other.
    pub fn validate(&self, sig: &Signature, attrs: &[syn::Attribute], errors: &mut Errors) {
        if let Some(constness) = &sig.constness {
            let first = [
                (self.counted.is_some(), Kind::Counted),
                (self.timed.is_some(), Kind::Timed),
                (self.traced.is_some(), Kind::Traced),
                (self.breaker.is_some(), Kind::CircuitBreaker),
                (self.histogram.is_some(), Kind::Histogram),
                (self.gauge.is_some(), Kind::Gauge),
            ]
            .into_iter()
            .find_map(|(present, kind)| present.then_some(kind))
            .unwrap_or(Kind::Counted);
            errors.spanned(
                constness,
                format!(
                    "#[{}] cannot instrument a `const fn`: it may run at compile time, \
                     where nothing can be recorded",
                    first.name()
                ),
            );
        }
        if let (Some(kind), None) = (self.needs_value(), &sig.asyncness) {
            if let Some(track_caller) = attrs.iter().find(|a| a.path().is_ident("track_caller")) {
                errors.spanned(
                    track_caller,
                    format!(
                        "#[{}] needs the returned value, which hides the caller from \
                         #[track_caller]; remove one of them",
                        kind.name()
                    ),
                );
            }
        }
        let labelled_by_function = [
            (self.counted.is_some(), Kind::Counted),
            (self.timed.is_some(), Kind::Timed),
            (self.histogram.is_some(), Kind::Histogram),
            (self.gauge.is_some(), Kind::Gauge),
        ]
        .into_iter()
        .find_map(|(present, kind)| present.then_some(kind));
        if let (false, Some(kind)) = (self.in_annotated_impl, labelled_by_function) {
            let is_method = sig.receiver().is_some() || mentions_self_type(sig);
            if is_method {
                errors.at(
                    sig.ident.span(),
                    format!(
                        "#[{kind}] cannot see the type of this method, and Autometrics labels \
                         methods `Type::{name}`: put the attribute on the impl block, or name the \
                         type with `#[{kind}(self_type = Type)]`",
                        kind = kind.name(),
                        name = unraw(&sig.ident),
                    ),
                );
            }
        }
        if let Some(traced) = &self.traced {
            let arguments = argument_names(sig);
            for captured in &traced.args {
                if !arguments.contains(&captured.name) {
                    errors.at(
                        captured.name.span(),
                        format!("`{}` is not an argument of this function", captured.name),
                    );
                }
            }
        }
        if let Some(breaker) = &self.breaker {
            self.validate_breaker(breaker, sig, errors);
        }
    }

    fn validate_breaker(&self, breaker: &Breaker, sig: &Signature, errors: &mut Errors) {
        match &sig.output {
            ReturnType::Default => errors.at(
                sig.ident.span(),
                "#[circuit_breaker] needs a function returning `Result<T, E>`, \
                 to return the breaker's refusal as an error",
            ),
            ReturnType::Type(_, ty) if !is_result(ty) => {
                let hint = if sig.asyncness.is_none() && mentions_future(ty) {
                    "; write the function as an `async fn` returning `Result<T, E>`"
                } else {
                    ""
                };
                errors.at(
                    ty.span(),
                    format!("#[circuit_breaker] needs a function returning `Result<T, E>`{hint}"),
                );
            }
            ReturnType::Type(..) => {}
        }
        if breaker.name.is_none() && !self.in_annotated_impl && sig.receiver().is_some() {
            errors.at(
                sig.ident.span(),
                "give this method's breaker a `name = \"...\"` (or its type with `self_type = \
                 Type`): #[circuit_breaker] cannot see the type, so the default name \
                 `module::method` would be shared by methods of the same name on other types",
            );
        }
        if let (Some(timeout), None) = (&breaker.timeout, &sig.asyncness) {
            errors.at(
                timeout.span,
                "`timeout` needs an `async fn`: a synchronous call cannot be abandoned",
            );
        }
    }
}

/// The default `::telemark` path, spanned at the call site.
fn default_crate() -> Path {
    let mut path: Path = syn::parse_quote!(::telemark);
    for segment in &mut path.segments {
        segment.ident.set_span(Span::call_site());
    }
    path
}

fn same_path(a: &Path, b: &Path) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
}

/// The type of a typed receiver (`self: &Cart`, `self: Box<Cart>`,
/// `self: Pin<&mut Cart>`): the innermost named type that is not a
/// pointer wrapper or `Self`.
fn receiver_type(sig: &Signature) -> Option<String> {
    let receiver = sig.receiver()?;
    receiver.colon_token?;
    named_type(&receiver.ty)
}

fn named_type(ty: &Type) -> Option<String> {
    match ty {
        Type::Reference(reference) => named_type(&reference.elem),
        Type::Paren(inner) => named_type(&inner.elem),
        Type::Group(inner) => named_type(&inner.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            let wrapper = ["Box", "Rc", "Arc", "Pin"].iter().any(|w| last.ident == w);
            if wrapper {
                let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
                    return None;
                };
                arguments.args.iter().find_map(|argument| match argument {
                    syn::GenericArgument::Type(inner) => named_type(inner),
                    _ => None,
                })
            } else if last.ident == "Self" {
                None
            } else {
                Some(unraw(&last.ident))
            }
        }
        _ => None,
    }
}

/// Whether `Self` appears in the parameters or the return type: the
/// function is an associated function of some impl.
fn mentions_self_type(sig: &Signature) -> bool {
    fn has_self(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            proc_macro2::TokenTree::Ident(ident) => ident == "Self",
            proc_macro2::TokenTree::Group(group) => has_self(group.stream()),
            _ => false,
        })
    }
    sig.inputs
        .iter()
        .any(|input| has_self(input.to_token_stream()))
        || has_self(sig.output.to_token_stream())
}

pub fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    text.strip_prefix("r#").map(str::to_owned).unwrap_or(text)
}

/// The plain identifiers among a function's parameters (`self` excluded).
pub fn argument_names(sig: &Signature) -> Vec<syn::Ident> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => match &*typed.pat {
                syn::Pat::Ident(pat) => Some(pat.ident.clone()),
                _ => None,
            },
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

pub fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        Type::Paren(inner) => is_result(&inner.elem),
        Type::Group(inner) => is_result(&inner.elem),
        _ => false,
    }
}

fn mentions_future(ty: &Type) -> bool {
    ty.to_token_stream().to_string().contains("Future")
}
