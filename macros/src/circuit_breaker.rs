//! `#[circuit_breaker]`: calls through a named breaker, with optional
//! timeout, retry with backoff, error classification and fallback.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Block, Error, LitInt, LitStr, Path, Result, ReturnType, Signature, Type};

use crate::args::{self, Seen};
use crate::expand::{Attribute, FunctionSite};
use crate::shape::{call_once, erase_impl_trait, typed_body, Instrumentation};

const EXPECTED: &str = "`name`, `consecutive_failures`, `failure_rate`, `window`, `min_calls`, \
     `slow_call`, `slow_call_rate`, `open_for`, `open_for_max`, `half_open_calls`, `failure_if`, \
     `ignore_if`, `fallback`, `timeout`, `retry`, `crate`";

/// Limits shared with the runtime's `BreakerConfig::validate`.
const MAX_WINDOW: u64 = 10_000;
const MAX_HALF_OPEN_CALLS: u64 = 1000;
const MAX_ATTEMPTS: u64 = 100;

/// A literal argument with the span to report it at.
struct Given<T> {
    value: T,
    span: Span,
}

#[derive(Default)]
struct Rules {
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

struct Retry {
    attempts: u64,
    min_nanos: u64,
    max_nanos: u64,
    jitter: &'static str,
}

pub struct CircuitBreaker {
    krate: Path,
    impl_type: Option<String>,
    name: Option<String>,
    rules: Rules,
    failure_if: Option<Path>,
    ignore_if: Option<Path>,
    fallback: Option<Path>,
    timeout: Option<Given<u64>>,
    retry: Option<Retry>,
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

fn function_path(meta: &ParseNestedMeta, name: &str, signature: &str) -> Result<Path> {
    meta.value()?.parse::<Path>().map_err(|err| {
        Error::new(
            err.span(),
            format!("expected a path to a function {signature}, e.g. `{name} = my_module::check`"),
        )
    })
}

fn parse_retry(meta: &ParseNestedMeta) -> Result<Retry> {
    let mut retry = Retry {
        attempts: 3,
        min_nanos: 100_000_000,
        max_nanos: 2_000_000_000,
        jitter: "Full",
    };
    let mut seen = Seen::new();
    meta.parse_nested_meta(|inner| {
        let name = seen.name(&inner)?;
        match name.as_str() {
            "attempts" => {
                let given = integer(&inner, "calls in all, the first included")?;
                if !(1..=MAX_ATTEMPTS).contains(&given.value) {
                    return Err(Error::new(
                        given.span,
                        format!(
                            "`attempts` must be from 1 to {MAX_ATTEMPTS}, got {}",
                            given.value
                        ),
                    ));
                }
                retry.attempts = given.value;
            }
            "backoff" => {
                let lit: LitStr = inner.value()?.parse()?;
                let text = lit.value();
                let bounds = text
                    .split_once("..")
                    .and_then(|(min, max)| Some((parse_duration(min)?, parse_duration(max)?)));
                let Some((min, max)) = bounds else {
                    return Err(Error::new(
                        lit.span(),
                        "expected `backoff = \"MIN..MAX\"`, e.g. \"100ms..2s\"",
                    ));
                };
                if min > max {
                    return Err(Error::new(
                        lit.span(),
                        "the shortest backoff is longer than the longest",
                    ));
                }
                retry.min_nanos = min;
                retry.max_nanos = max;
            }
            "jitter" => {
                let lit: LitStr = inner.value()?.parse()?;
                retry.jitter = match lit.value().as_str() {
                    "full" => "Full",
                    "equal" => "Equal",
                    "none" => "None",
                    _ => {
                        return Err(Error::new(
                            lit.span(),
                            "expected `jitter = \"full\"`, `\"equal\"` or `\"none\"`",
                        ))
                    }
                };
            }
            _ => {
                return Err(args::unknown(
                    &inner,
                    "circuit_breaker(retry(...))",
                    &name,
                    "`attempts`, `backoff`, `jitter`",
                ))
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

    /// The checks of `BreakerConfig::validate`, reported at the argument.
    fn validate(&self, call_site: Span) -> Result<()> {
        let value =
            |given: &Option<Given<u64>>, default: u64| given.as_ref().map_or(default, |g| g.value);
        let span = |given: &Option<Given<u64>>| given.as_ref().map_or(call_site, |g| g.span);
        let uses_window = self.failure_rate.is_some() || self.slow_call_rate.is_some();
        if self.slow_call_rate.is_some() && self.slow_call.is_none() {
            return Err(Error::new(
                span(&self.slow_call_rate),
                "`slow_call_rate` needs `slow_call = \"...\"`, the duration from which a call is slow",
            ));
        }
        if value(&self.consecutive_failures, 5) == 0 && !uses_window {
            return Err(Error::new(
                span(&self.consecutive_failures),
                "no trip rule left: with `consecutive_failures = 0`, set `failure_rate` or `slow_call_rate`",
            ));
        }
        for (given, name) in [(&self.window, "window"), (&self.min_calls, "min_calls")] {
            if given.is_some() && !uses_window {
                return Err(Error::new(
                    span(given),
                    format!("`{name}` only matters with `failure_rate` or `slow_call_rate`"),
                ));
            }
        }
        let window = value(&self.window, 100);
        if window == 0 || window > MAX_WINDOW {
            return Err(Error::new(
                span(&self.window),
                format!("`window` must be from 1 to {MAX_WINDOW} calls, got {window}"),
            ));
        }
        let min_calls = value(&self.min_calls, 10.min(window));
        if min_calls == 0 || min_calls > window {
            return Err(Error::new(
                span(&self.min_calls),
                format!("`min_calls` must be from 1 to the window ({window}), got {min_calls}"),
            ));
        }
        if let (Some(max), open) = (&self.open_for_max, value(&self.open_for, 30_000_000_000)) {
            if max.value < open {
                return Err(Error::new(
                    max.span,
                    "`open_for_max` is shorter than `open_for`",
                ));
            }
        }
        let trials = value(&self.half_open_calls, 1);
        if trials == 0 || trials > MAX_HALF_OPEN_CALLS {
            return Err(Error::new(
                span(&self.half_open_calls),
                format!("`half_open_calls` must be from 1 to {MAX_HALF_OPEN_CALLS}, got {trials}"),
            ));
        }
        Ok(())
    }

    /// `Some(BreakerConfig::new().x(..)...)`, or `None` with no rule set.
    fn config(&self, krate: &Path) -> TokenStream {
        if !self.any() {
            return quote!(::core::option::Option::None);
        }
        let mut chain = quote!(#krate::__private::BreakerConfig::new());
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

impl Attribute for CircuitBreaker {
    const NAME: &'static str = "circuit_breaker";
    const CHANGES_BEHAVIOUR: bool = true;

    fn parse(input: TokenStream) -> Result<Self> {
        let call_site = Span::call_site();
        let mut breaker = CircuitBreaker {
            krate: args::default_crate(),
            impl_type: None,
            name: None,
            rules: Rules::default(),
            failure_if: None,
            ignore_if: None,
            fallback: None,
            timeout: None,
            retry: None,
        };
        let mut seen = Seen::new();
        let parser = syn::meta::parser(|meta| {
            let name = seen.name(&meta)?;
            let rules = &mut breaker.rules;
            match name.as_str() {
                "name" => {
                    let lit: LitStr = meta.value()?.parse().map_err(|err| {
                        Error::new(err.span(), "expected the breaker's name as a string")
                    })?;
                    if lit.value().trim().is_empty() {
                        return Err(Error::new(lit.span(), "the breaker's name is empty"));
                    }
                    breaker.name = Some(lit.value());
                }
                "consecutive_failures" => {
                    rules.consecutive_failures = Some(integer(&meta, "failures in a row")?)
                }
                "failure_rate" => rules.failure_rate = Some(percentage(&meta)?),
                "slow_call_rate" => rules.slow_call_rate = Some(percentage(&meta)?),
                "window" => rules.window = Some(integer(&meta, "calls")?),
                "min_calls" => rules.min_calls = Some(integer(&meta, "calls")?),
                "half_open_calls" => rules.half_open_calls = Some(integer(&meta, "trial calls")?),
                "slow_call" => rules.slow_call = Some(positive_duration(&meta, "slow_call")?),
                "open_for" => rules.open_for = Some(positive_duration(&meta, "open_for")?),
                "open_for_max" => {
                    rules.open_for_max = Some(positive_duration(&meta, "open_for_max")?)
                }
                "timeout" => {
                    let mut given = positive_duration(&meta, "timeout")?;
                    // Reported at `timeout` itself if the function is not async.
                    given.span = meta.path.span();
                    breaker.timeout = Some(given);
                }
                "failure_if" => {
                    breaker.failure_if = Some(function_path(
                        &meta,
                        "failure_if",
                        "taking a reference to the error and returning bool",
                    )?)
                }
                "ignore_if" => {
                    breaker.ignore_if = Some(function_path(
                        &meta,
                        "ignore_if",
                        "taking a reference to the error and returning bool",
                    )?)
                }
                "fallback" => {
                    breaker.fallback = Some(function_path(
                        &meta,
                        "fallback",
                        "taking the `telemark::BreakerError` and returning the function's type",
                    )?)
                }
                "retry" => breaker.retry = Some(parse_retry(&meta)?),
                "crate" => breaker.krate = args::crate_path(&meta)?,
                "__telemark_type" => breaker.impl_type = Some(args::impl_type(&meta)?),
                _ => return Err(args::unknown(&meta, Self::NAME, &name, EXPECTED)),
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, input)?;
        breaker.rules.validate(call_site)?;
        Ok(breaker)
    }

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn impl_type(&self) -> Option<&str> {
        self.impl_type.as_deref()
    }

    fn needs_value(&self) -> bool {
        true
    }

    fn check(&self, sig: &Signature) -> Result<()> {
        let ty = match &sig.output {
            ReturnType::Type(_, ty) => &**ty,
            ReturnType::Default => {
                return Err(Error::new(
                    sig.ident.span(),
                    "#[circuit_breaker] needs a function returning `Result<T, E>`, \
                     to return the breaker's refusal as an error",
                ))
            }
        };
        if !is_result(ty) {
            let hint = if sig.asyncness.is_none() && mentions_future(ty) {
                "; write the function as an `async fn` returning `Result<T, E>`"
            } else {
                ""
            };
            return Err(Error::new(
                ty.span(),
                format!("#[circuit_breaker] needs a function returning `Result<T, E>`{hint}"),
            ));
        }
        if self.name.is_none() && self.impl_type.is_none() && sig.receiver().is_some() {
            return Err(Error::new(
                sig.ident.span(),
                "give this method's breaker a `name = \"...\"`: #[circuit_breaker] cannot see \
                 the type, so the default name `module::method` would be shared by methods of \
                 the same name on other types",
            ));
        }
        if let (Some(timeout), None) = (&self.timeout, &sig.asyncness) {
            return Err(Error::new(
                timeout.span,
                "`timeout` needs an `async fn`: a synchronous call cannot be abandoned",
            ));
        }
        Ok(())
    }

    fn instrument(&self, _site: &FunctionSite) -> Instrumentation {
        unreachable!("#[circuit_breaker] wraps the body itself")
    }

    fn wrap(&self, site: &FunctionSite, sig: &Signature, block: &Block) -> Option<TokenStream> {
        Some(self.expand(site, sig, block))
    }
}

fn is_result(ty: &Type) -> bool {
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

/// `E` of a return type written `Result<T, E>`, with `impl Trait` erased.
fn error_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let syn::PathArguments::AngleBracketed(args) = &path.path.segments.last()?.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let (_, error) = (types.next()?, types.next()?);
    Some(erase_impl_trait(error))
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn mentions_future(ty: &Type) -> bool {
    quote!(#ty).to_string().contains("Future")
}

impl CircuitBreaker {
    fn expand(&self, site: &FunctionSite, sig: &Signature, block: &Block) -> TokenStream {
        let krate = &self.krate;
        let mixed = Span::mixed_site();
        let site_static = Ident::new("__TELEMARK_BREAKER_SITE", mixed);
        let entry = Ident::new("__TELEMARK_BREAKER_ENTRY", mixed);
        let permit = Ident::new("__telemark_permit", mixed);
        let refusal = Ident::new("__telemark_refusal", mixed);
        let ret = Ident::new("__telemark_ret", mixed);
        let verdict = Ident::new("__telemark_verdict", mixed);
        let attempts = Ident::new("__telemark_attempts", mixed);
        let delay = Ident::new("__telemark_delay", mixed);
        let error = Ident::new("__telemark_error", mixed);

        let ReturnType::Type(_, ret_ty) = &sig.output else {
            unreachable!("checked: the function returns a Result")
        };
        let ret_span = ret_ty.span();
        let info = site.info("circuit_breaker_calls_total", &[]);
        let name = match &self.name {
            Some(name) => quote!(#name),
            None => {
                let function = &site.function;
                quote!(::core::concat!(::core::module_path!(), "::", #function))
            }
        };
        let config = self.rules.config(krate);
        let retry = match &self.retry {
            Some(retry) => {
                let attempts = retry.attempts as u32;
                let (min, max) = (retry.min_nanos, retry.max_nanos);
                let jitter = Ident::new(retry.jitter, Span::call_site());
                quote!(::core::option::Option::Some(#krate::__private::RetryPolicy::new(
                    #attempts,
                    ::core::time::Duration::from_nanos(#min),
                    ::core::time::Duration::from_nanos(#max),
                    #krate::__private::Jitter::#jitter,
                )))
            }
            None => quote!(::core::option::Option::None),
        };
        let timeout = match &self.timeout {
            Some(given) => {
                let nanos = given.value;
                quote!(::core::option::Option::Some(::core::time::Duration::from_nanos(#nanos)))
            }
            None => quote!(::core::option::Option::None),
        };
        let statics = quote! {
            static #site_static: #krate::__private::BreakerSite = #krate::__private::BreakerSite::new(
                #info, #name, #config, #retry, #timeout,
            );
            #[#krate::__private::linkme::distributed_slice(#krate::__private::BREAKER_SITES)]
            #[linkme(crate = #krate::__private::linkme)]
            static #entry: &#krate::__private::BreakerSite = &#site_static;
        };

        // How an `Err` counts: coerced to a function pointer on the error
        // type, spanned on the user's path, so a wrong signature is reported
        // there (`_` where the error type is not spelled out).
        let error_ty = error_type(ret_ty).map_or_else(|| quote!(_), |ty| quote!(#ty));
        let classifier = |path: &Option<Path>, local: &str| match path {
            Some(path) => {
                let local = Ident::new(local, mixed);
                let binding = quote_spanned! {path.span()=>
                    let #local: fn(&#error_ty) -> bool = #path;
                    let #local = ::core::option::Option::Some(#local);
                };
                (binding, quote!(#local))
            }
            None => (quote!(), quote!(::core::option::Option::None)),
        };
        let classify = if self.ignore_if.is_none() && self.failure_if.is_none() {
            quote!(#krate::__private::every_error_fails)
        } else {
            let (ignore_binding, ignore) = classifier(&self.ignore_if, "__telemark_ignore_if");
            let (failure_binding, failure) = classifier(&self.failure_if, "__telemark_failure_if");
            quote!(|#error| {
                #ignore_binding
                #failure_binding
                #krate::__private::judge(#error, #ignore, #failure)
            })
        };
        // Spanned wholly on the return type, so that an error type without
        // `From<BreakerError>` is reported there.
        let krate_at_ret = respan(quote!(#krate), ret_span);
        let refused_value =
            |error: &Ident| quote_spanned!(ret_span=> #krate_at_ret::__private::refused(#error));
        let on_refusal = match &self.fallback {
            Some(path) => quote_spanned!(path.span()=> #path(#refusal)),
            None => refused_value(&refusal),
        };
        let finish = quote_spanned! {ret_span=>
            #krate_at_ret::__private::breaker_finish(#permit, &#ret, #classify)
        };
        let body = typed_body(block, Some(ret_ty));
        let asynchronous = sig.asyncness.is_some();
        let retrying = self.retry.is_some();

        // One attempt: `(value, verdict)` from an admitted call.
        let attempt = match asynchronous {
            false => {
                let call = if retrying {
                    // A fresh closure per attempt, borrowing the arguments.
                    quote!((|| { #body })())
                } else {
                    call_once(krate, body)
                };
                quote! {{
                    #[allow(clippy::redundant_closure_call)]
                    let #ret = #call;
                    let #verdict = #finish;
                    (#ret, #verdict)
                }}
            }
            true => {
                let future = if retrying {
                    quote!(async { #body })
                } else {
                    quote!(async move { #body })
                };
                let timed_out = refused_value(&error);
                quote! {
                    match #krate::__private::attempt(&#site_static, #permit, #future).await {
                        ::core::result::Result::Ok((#permit, #ret)) => {
                            let #verdict = #finish;
                            (#ret, #verdict)
                        }
                        ::core::result::Result::Err(#error) => {
                            (#timed_out, #krate::__private::Verdict::Failure)
                        }
                    }
                }
            }
        };

        if !retrying {
            return quote! {{
                #statics
                match #site_static.enter() {
                    ::core::result::Result::Err(#refusal) => #on_refusal,
                    ::core::result::Result::Ok(#permit) => {
                        let (#ret, _) = #attempt;
                        #ret
                    }
                }
            }};
        }
        let wait = if asynchronous {
            quote!(#krate::__private::sleep(#delay).await)
        } else {
            quote!(#krate::__private::sleep_blocking(#delay))
        };
        quote! {{
            #statics
            let mut #attempts = #krate::__private::Attempts::new(&#site_static);
            loop {
                let #permit = match #site_static.enter() {
                    // A refusal is never retried.
                    ::core::result::Result::Err(#refusal) => break #on_refusal,
                    ::core::result::Result::Ok(#permit) => #permit,
                };
                let (#ret, #verdict) = #attempt;
                match #attempts.next(#verdict) {
                    ::core::option::Option::None => break #ret,
                    ::core::option::Option::Some(#delay) => #wait,
                }
            }
        }}
    }
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
