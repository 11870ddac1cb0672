//! The one wrapper of an instrumented function: one guard created when the
//! call starts, the body run so that its returned value can be seen, then
//! the outcome recorded. Its shape depends on the function's (sync, `async
//! fn`, returning `impl Future` or a boxed future).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ReturnType, Signature, Type};

use super::shape::{call_once, private, shape, typed_body, Shape};
use super::site::{labeled_cells_ident, site_ident, value_static_ident};
use crate::attr::counted::Classifier;
use crate::attr::traced::Format;
use crate::attr::LabelSource;
use crate::plan::Plan;

/// The body to wrap: the function's own statements (which may `return`),
/// or the breaker's block (an expression that does not).
pub struct Body {
    pub statements: TokenStream,
    pub may_return: bool,
}

fn ident(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// `Some(&mut |record| { fields and arguments })`: what a sampled span
/// records at its start, or `None`.
fn fill(plan: &Plan) -> TokenStream {
    let private = private();
    let Some(traced) = plan.traced.as_ref() else {
        return quote!(#private::None);
    };
    if traced.fields.is_empty() && traced.args.is_empty() {
        return quote!(#private::None);
    }
    let record = ident("__telemark_record");
    let fields = traced.fields.iter().map(|field| {
        let key = &field.key;
        let value = &field.value;
        quote_spanned!(value.span()=> #record.attribute(#key, #value);)
    });
    let captured = traced.args.iter().map(|captured| {
        let name = &captured.name;
        let key = name.to_string();
        let capture = match captured.format {
            Format::Display => {
                quote_spanned!(name.span()=> #private::capture_display(&#name))
            }
            Format::Debug => quote_spanned!(name.span()=> #private::capture_debug(&#name)),
        };
        quote!(#record.attribute(#key, #capture);)
    });
    quote! {
        #private::Some(&mut #private::FillOnce::new(|#record: &mut #private::SpanRecord| {
            #(#fields)*
            #(#captured)*
        }))
    }
}

/// The values of the counter's computed labels known when the call
/// starts (those from the returned value are left missing), or `None`.
fn label_keys(plan: &Plan) -> Option<(TokenStream, bool)> {
    let private = private();
    let counted = plan.counted.as_ref()?;
    if counted.common.computed.is_empty() {
        return None;
    }
    let keys = counted
        .common
        .computed
        .iter()
        .map(|label| match &label.source {
            LabelSource::Call(expr) => quote_spanned!(expr.span()=> #private::label_key(&(#expr))),
            LabelSource::Returned(_) => quote!(#private::LabelKey::MISSING),
        });
    let from_returned = counted
        .common
        .computed
        .iter()
        .any(|label| matches!(label.source, LabelSource::Returned(_)));
    Some((quote!([#(#keys),*]), from_returned))
}

/// `let __telemark_labeled = ...`: the guard counting the call by its
/// computed labels, given those known at the start (mutable when the
/// returned value sets the others).
fn labeled_call(keys: TokenStream, set_later: bool) -> TokenStream {
    let private = private();
    let labeled = ident("__telemark_labeled");
    let cells = labeled_cells_ident();
    let mutable = set_later.then(|| quote!(mut));
    quote!(let #mutable #labeled = #private::LabeledCall::new(&#cells, #keys);)
}

/// The values `#[histogram]` and `#[gauge]` record when the call starts:
/// `(let statements computing them, statements recording them)`.
fn start_values(plan: &Plan) -> (TokenStream, TokenStream) {
    let private = private();
    let (mut compute, mut record) = (TokenStream::new(), TokenStream::new());
    for (kind, metric) in plan.value_metrics() {
        if let LabelSource::Call(expr) = &metric.source {
            let statics = value_static_ident(kind);
            let local = format_ident!(
                "__telemark_value_{}",
                kind.name(),
                span = Span::mixed_site()
            );
            compute.extend(quote_spanned!(expr.span()=>
                let #local = #private::metric_value(&(#expr));
            ));
            record.extend(quote!(#statics.record(#local);));
        }
    }
    (compute, record)
}

/// Statements after the body returned `__telemark_ret`: count it, and add
/// `err` / `ret` to the span.
fn outcome(plan: &Plan) -> TokenStream {
    let private = private();
    let call = ident("__telemark_call");
    let ret = ident("__telemark_ret");
    let mut out = TokenStream::new();
    if let Some(counted) = &plan.counted {
        let is_error = match &counted.classifier {
            Classifier::ByType => quote! {
                #private::Classify(&#ret).telemark_is_error()
            },
            Classifier::OkIf(path) | Classifier::ErrorIf(path) => {
                // Coercing to a fn pointer first reports a wrong signature at the path.
                let classifier = ident("__telemark_classifier");
                let check = quote_spanned!(path.span()=> let #classifier: fn(&_) -> bool = #path;);
                let negate = matches!(counted.classifier, Classifier::OkIf(_)).then(|| quote!(!));
                quote!({ #check #negate #classifier(&#ret) })
            }
        };
        if counted.common.computed.is_empty() {
            out.extend(quote!(#call.finish(#is_error);));
        } else {
            let labeled = ident("__telemark_labeled");
            for (index, label) in counted.common.computed.iter().enumerate() {
                if let LabelSource::Returned(closure) = &label.source {
                    out.extend(quote_spanned! {closure.span()=>
                        #labeled.set(#index, #private::label_from(&#ret, #closure));
                    });
                }
            }
            out.extend(quote!(#labeled.finish(#is_error);));
        }
    }
    for (kind, metric) in plan.value_metrics() {
        if let LabelSource::Returned(closure) = &metric.source {
            let statics = value_static_ident(kind);
            out.extend(quote_spanned! {closure.span()=>
                #statics.record(#private::value_from(&#ret, #closure));
            });
        }
    }
    if let Some(traced) = plan.traced.as_ref().filter(|traced| traced.needs_value()) {
        // The value's text is made before the span's record is borrowed:
        // it runs the user's `Display` / `Debug`.
        for (wanted, what) in [(traced.err, "error"), (traced.ret, "return")] {
            if let Some((format, span)) = wanted {
                let style = match format {
                    Format::Display => "display",
                    Format::Debug => "debug",
                };
                let record = format_ident!("span_{}_{}", what, style, span = span);
                out.extend(quote_spanned!(span=> #private::#record(&mut #call, &#ret);));
            }
        }
    }
    out
}

/// `statics` then the wrapped body, as the function's new block.
pub fn wrap(plan: &Plan, sig: &Signature, statics: TokenStream, body: Body) -> TokenStream {
    let private = private();
    let site = site_ident();
    let call = ident("__telemark_call");
    let ret = ident("__telemark_ret");
    let future = ident("__telemark_future");
    let unit: Type = syn::parse_quote!(());
    let return_type = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    let fill = fill(plan);
    let outcome = outcome(plan);
    let needs_value = !outcome.is_empty();
    let label_keys = label_keys(plan);
    // The guard is given the outcome unless the computed labels' guard is.
    let guard_finishes = (plan.counted.is_some() && label_keys.is_none())
        || plan
            .traced
            .as_ref()
            .is_some_and(|traced| traced.needs_value());
    let mutable = guard_finishes.then(|| quote!(mut));
    let statements = &body.statements;
    let slot = ident("__telemark_slot");
    // The guard's parts: the counter and the timer, or `Off`.
    let part = |present: bool, part: &str| {
        let part = Ident::new(if present { part } else { "Off" }, Span::call_site());
        quote!(#private::#part)
    };
    let counter = part(plan.counted.is_some() && label_keys.is_none(), "Counting");
    let timer = part(plan.timed.is_some(), "Timing");
    let future_span = part(plan.traced.is_some(), "AsyncSpan");
    let parts = quote!(#counter, #timer);
    let future_parts = quote!(#counter, #timer, #future_span);

    match shape(sig) {
        Shape::Sync | Shape::Diverging => {
            let span = match &plan.traced {
                Some(_) => quote!(#private::sync_span(&#site, #slot, #fill)),
                None => quote!(#private::Off),
            };
            let slot_declaration = plan
                .traced
                .is_some()
                .then(|| quote!(let #slot = ::core::pin::pin!(#private::SpanSlot::new());));
            let labeled = label_keys.map(|(keys, set_later)| labeled_call(keys, set_later));
            let (compute, record) = start_values(plan);
            let enter = quote! {
                #slot_declaration
                let #mutable #call = #private::Call::<#parts, _>::enter(&#site, #span);
                #labeled
                #compute
                #record
            };
            let diverging = matches!(shape(sig), Shape::Diverging);
            if !needs_value || diverging {
                // The guard records when it is dropped, however the body ends.
                return quote! {{ #statics #enter #statements }};
            }
            let value = if body.may_return {
                call_once(typed_body(statements, Some(return_type.unwrap_or(&unit))))
            } else {
                quote!({ #statements })
            };
            quote! {{
                #statics
                #enter
                let #ret = #value;
                #outcome
                #ret
            }}
        }
        Shape::Async(ty) => {
            let traced = plan.traced.is_some();
            let enter_mutable = if traced { None } else { mutable.clone() };
            let labeled = label_keys.map(|(keys, set_later)| labeled_call(keys, set_later));
            let (compute, record) = start_values(plan);
            let enter = quote! {
                let #enter_mutable #call = #private::AsyncCall::<#future_parts>::enter(&#site, #fill);
                #labeled
                #compute
                #record
            };
            let inner = if body.may_return {
                let typed = typed_body(statements, Some(ty.unwrap_or(&unit)));
                quote!(async move { #typed })
            } else {
                quote!(async move { #statements })
            };
            // Untraced, the body still runs as the current function on each
            // poll, for the caller labels of the calls it makes.
            // Only with the `caller-labels` feature: without it, no wrapper.
            let info = quote!(&#site.metrics.info);
            let scoped = cfg!(feature = "caller-labels");
            let run = if traced {
                quote!(let (#ret, #mutable #call) = #call.instrument(#inner).await;)
            } else if body.may_return && scoped {
                quote!(let #ret = #private::CallerScoped::new(#info, #inner).await;)
            } else if body.may_return {
                quote!(let #ret = #inner.await;)
            } else if scoped {
                quote!(let #ret = #private::CallerScoped::new(#info, async { #statements }).await;)
            } else {
                quote!(let #ret = { #statements };)
            };
            quote! {{
                #statics
                #enter
                #run
                #outcome
                #ret
            }}
        }
        Shape::ImplFuture(_) | Shape::BoxedFuture(_) => {
            let unpin = matches!(shape(sig), Shape::ImplFuture(true));
            let declared = match shape(sig) {
                Shape::BoxedFuture(ty) => Some(ty),
                _ => None,
            };
            let build = call_once(typed_body(statements, declared));
            let run = if plan.traced.is_some() {
                quote!(let (#ret, #mutable #call) = #call.begin(&#site).instrument(#future).await;)
            } else {
                let awaited = if cfg!(feature = "caller-labels") {
                    quote!(#private::CallerScoped::new(&#site.metrics.info, #future).await)
                } else {
                    quote!(#future.await)
                };
                quote!(let #mutable #call = #call.begin(&#site); let #ret = #awaited;)
            };
            let keys = ident("__telemark_label_keys");
            let (keys_now, labeled) = match label_keys {
                Some((values, set_later)) => (
                    Some(quote!(let #keys = #values;)),
                    Some(labeled_call(quote!(#keys), set_later)),
                ),
                None => (None, None),
            };
            // Values computed now (the arguments go into the future), recorded
            // when it is first polled, as the call is counted.
            let (compute, record) = start_values(plan);
            let wrapped = quote!(async move { #labeled #record #run #outcome #ret });
            let returned = match shape(sig) {
                Shape::BoxedFuture(_) => quote! {
                    if !#private::is_enabled() {
                        return #future;
                    }
                    ::std::boxed::Box::pin(#wrapped)
                },
                _ if unpin => quote!(::std::boxed::Box::pin(#wrapped)),
                _ => wrapped,
            };
            quote! {{
                #statics
                let #call = #private::AsyncCall::<#future_parts>::start(&#site, #fill);
                #keys_now
                #compute
                let #future = #build;
                #returned
            }}
        }
    }
}
