//! The circuit breaker's part of a wrapper: the call through the breaker,
//! with timeout, retry, error classification and fallback.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Path, ReturnType, Signature, Type};

use super::shape::{call_once, erase_impl_trait, private, typed_body};
use crate::attr::breaker::Breaker;
use crate::plan::Plan;

/// The breaker's block: an expression of the function's type that calls
/// `statements` (the body) through the breaker, with its timeout and retry.
/// It holds no `return` of its own.
pub fn breaker_block(
    plan: &Plan,
    breaker: &Breaker,
    sig: &Signature,
    statements: &TokenStream,
) -> TokenStream {
    {
        let private = private();
        let this = breaker;
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
            // Refused by validation already: nothing to protect.
            return quote!({ #statements });
        };
        let ret_span = ret_ty.span();
        let function = &plan.function;
        let line = quote_spanned!(sig.ident.span()=> ::core::line!());
        let info = quote! {
            #private::SiteInfo { function: #function, module: ::core::module_path!(), file: ::core::file!(), line: #line }
        };
        let name = match &this.name {
            Some(name) => quote!(#name),
            None => quote!(::core::concat!(::core::module_path!(), "::", #function)),
        };
        let config = this.rules.config(&private);
        let retry = match &this.retry {
            Some(retry) => {
                let attempts = retry.attempts as u32;
                let (min, max) = (retry.min_nanos, retry.max_nanos);
                let jitter = Ident::new(retry.jitter, Span::call_site());
                quote!(::core::option::Option::Some(#private::RetryPolicy::new(
                    #attempts,
                    ::core::time::Duration::from_nanos(#min),
                    ::core::time::Duration::from_nanos(#max),
                    #private::Jitter::#jitter,
                )))
            }
            None => quote!(::core::option::Option::None),
        };
        let timeout = match &this.timeout {
            Some(given) => {
                let nanos = given.value;
                quote!(::core::option::Option::Some(::core::time::Duration::from_nanos(#nanos)))
            }
            None => quote!(::core::option::Option::None),
        };
        let statics = quote! {
            static #site_static: #private::BreakerSite = #private::BreakerSite::new(
                #info, #name, #config, #retry, #timeout,
            );
            #[#private::linkme::distributed_slice(#private::BREAKER_SITES)]
            #[linkme(crate = #private::linkme)]
            static #entry: &#private::BreakerSite = &#site_static;
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
        let classify = if this.ignore_if.is_none() && this.failure_if.is_none() {
            quote!(#private::every_error_fails)
        } else {
            let (ignore_binding, ignore) = classifier(&this.ignore_if, "__telemark_ignore_if");
            let (failure_binding, failure) = classifier(&this.failure_if, "__telemark_failure_if");
            quote!(|#error| {
                #ignore_binding
                #failure_binding
                #private::judge(#error, #ignore, #failure)
            })
        };
        // Spanned wholly on the return type, so that an error type without
        // `From<BreakerError>` is reported there.
        let private_at_ret = respan(quote!(#private), ret_span);
        let error_at_ret = respan(error_ty.clone(), ret_span);
        let refused_value = |error: &Ident| quote_spanned!(ret_span=> #private_at_ret::Refusal::<#error_at_ret>::NEW.result(#error));
        let on_refusal = match &this.fallback {
            Some(path) => quote_spanned!(path.span()=> #path(#refusal)),
            None => refused_value(&refusal),
        };
        let finish = quote_spanned! {ret_span=>
            #private_at_ret::breaker_finish(#permit, &#ret, #classify)
        };
        let body = typed_body(statements, Some(ret_ty));
        let asynchronous = sig.asyncness.is_some();
        let retrying = this.retry.is_some();

        // One attempt: `(value, verdict)` from an admitted call.
        let attempt = match asynchronous {
            false => {
                let call = if retrying {
                    // A fresh closure per attempt, borrowing the arguments.
                    quote!((|| { #body })())
                } else {
                    call_once(body)
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
                match this.timeout {
                    Some(_) => quote! {
                        match #private::attempt(&#site_static, #permit, #future).await {
                            ::core::result::Result::Ok((#permit, #ret)) => {
                                let #verdict = #finish;
                                (#ret, #verdict)
                            }
                            ::core::result::Result::Err(#error) => {
                                (#timed_out, #private::Verdict::Failure)
                            }
                        }
                    },
                    // Without a timeout, no timer in the function's future,
                    // and no error to match.
                    None => quote! {{
                        let (#permit, #ret) = #private::attempt_untimed(#permit, #future).await;
                        let #verdict = #finish;
                        (#ret, #verdict)
                    }},
                }
            }
        };

        if !retrying {
            // The permit is taken out of `enter()`'s result in a statement
            // of its own: a `match` on it around the attempt would keep the
            // whole result alive across the `.await`, in the future (an
            // `async fn` with a timeout, awaited in tokio: 183 instructions
            // per call against 152; without one, 80 against 78 once permits
            // were made 24 bytes).
            return quote! {{
                #statics
                '__telemark_admitted: {
                    let #permit = match #site_static.enter() {
                        ::core::result::Result::Err(#refusal) => {
                            break '__telemark_admitted #on_refusal
                        }
                        ::core::result::Result::Ok(#permit) => #permit,
                    };
                    let (#ret, _) = #attempt;
                    #ret
                }
            }};
        }
        let wait = if asynchronous {
            quote!(#private::sleep(#delay).await)
        } else {
            quote!(#private::sleep_blocking(#delay))
        };
        quote! {{
            #statics
            let mut #attempts = #private::Attempts::new(&#site_static);
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
