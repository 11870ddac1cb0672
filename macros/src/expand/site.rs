//! The statics of one function: its cells and one `Site` naming everything
//! its attributes record, which is also its catalog entry.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Signature;

use super::shape::private;
use crate::plan::Plan;

/// The function's `Site` static.
pub fn site_ident() -> Ident {
    Ident::new("__TM", Span::call_site())
}

/// `static`s for `plan`'s function: its cells and its `Site`.
pub fn statics(plan: &Plan, sig: &Signature) -> TokenStream {
    let private = private();
    let site = site_ident();
    let function = &plan.function;
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let labels = |labels: &[(String, String)]| {
        let (keys, values): (Vec<_>, Vec<_>) = labels.iter().cloned().unzip();
        quote!(&[#((#keys, #values)),*])
    };
    let none = quote!(#private::None);
    let mut cells = TokenStream::new();
    let counter = match &plan.counted {
        Some(counted) => {
            cells.extend(quote! {
                static __TM_COUNTER: #private::CounterCells = #private::CounterCells::new();
            });
            let metric = &counted.metric;
            let labels = labels(&counted.common.labels);
            quote!(#private::Counter::some(#metric, #labels, &__TM_COUNTER))
        }
        None => none.clone(),
    };
    let histogram = match &plan.timed {
        Some(timed) => {
            cells.extend(quote! {
                static __TM_HISTOGRAM: #private::TimedCells = #private::TimedCells::new();
            });
            let metric = &timed.metric;
            let labels = labels(&timed.common.labels);
            let bounds = match &timed.buckets {
                Some(nanos) => quote!(#private::Some(&[#(#nanos),*])),
                None => none.clone(),
            };
            quote!(#private::Histogram::some(#metric, #labels, #bounds, &__TM_HISTOGRAM))
        }
        None => none.clone(),
    };
    let span = match &plan.traced {
        Some(traced) => {
            let name = traced.name.as_deref().unwrap_or(function);
            let kind = &traced.kind;
            quote!(#private::TraceSite::some(#name, #private::Kind::#kind, &#site.metrics.info))
        }
        None => none,
    };
    quote! {
        #cells
        #[#private::linkme::distributed_slice(#private::FUNCTION_SITES)]
        #[linkme(crate = #private::linkme)]
        static #site: #private::Site = #private::Site::new(
            #private::SiteInfo::new(#function, ::core::module_path!(), ::core::file!(), #line),
            #counter,
            #histogram,
            #span,
        );
    }
}
