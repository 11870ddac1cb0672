//! The statics of one function: its cells and one `Site` naming everything
//! its attributes record, which is also its catalog entry.

use proc_macro2::{Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Signature;

use super::shape::private;
use crate::attr::value::ValueKind;
use crate::attr::Kind;
use crate::plan::Plan;

/// The function's `Site` static.
pub fn site_ident() -> Ident {
    Ident::new("__TM", Span::call_site())
}

/// The `ValueHistogram` (`#[histogram]`) or `Gauge` (`#[gauge]`) static.
pub fn value_static_ident(kind: Kind) -> Ident {
    let name = match kind {
        Kind::Histogram => "__TM_VALUE_HISTOGRAM",
        _ => "__TM_GAUGE",
    };
    Ident::new(name, Span::call_site())
}

/// The cells of the counter's computed labels.
pub fn labeled_cells_ident() -> Ident {
    Ident::new("__TM_LABELED", Span::call_site())
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
    let objective = |path: Option<&syn::Path>| match path {
        Some(path) => quote!(#private::Some(&#path)),
        None => none.clone(),
    };
    let mut cells = TokenStream::new();
    let counter = match &plan.counted {
        Some(counted) => {
            cells.extend(quote! {
                static __TM_COUNTER: #private::CounterCells = #private::CounterCells::new();
            });
            let metric = &counted.metric;
            let labels = labels(&counted.common.labels);
            if let Some(path) = &counted.objective {
                // Spanned on the objective, where a build error about it points.
                let check = quote!(const _: () = #private::check_counter_objective(&#path););
                cells.extend(respan(check, path.span()));
            }
            let objective = objective(counted.objective.as_ref());
            if counted.common.computed.is_empty() {
                quote!(#private::Counter::some(#metric, #labels, #objective, &__TM_COUNTER))
            } else {
                let count = counted.common.computed.len();
                let limit = counted.cardinality_limit;
                let labeled = labeled_cells_ident();
                cells.extend(quote! {
                    static #labeled: #private::LabeledCounterCells<
                        #count,
                        { #private::series_cells(#limit) },
                        #limit,
                    > = #private::LabeledCounterCells::new();
                });
                let names = counted.common.computed.iter().map(|label| &label.name);
                quote!(#private::Counter::some_labeled(
                    #metric, #labels, #objective, &__TM_COUNTER, &[#(#names),*], &#labeled
                ))
            }
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
            if let Some(path) = &timed.objective {
                let check =
                    quote!(const _: () = #private::check_histogram_objective(&#path, #bounds););
                cells.extend(respan(check, path.span()));
            }
            let objective = objective(timed.objective.as_ref());
            quote!(#private::Histogram::some(#metric, #labels, #bounds, #objective, &__TM_HISTOGRAM))
        }
        None => none.clone(),
    };
    let mut value_metric = |kind: Kind| {
        let (metric, statics) = match kind {
            Kind::Histogram => (plan.histogram.as_ref(), value_static_ident(kind)),
            _ => (plan.gauge.as_ref(), value_static_ident(kind)),
        };
        let Some(metric) = metric else {
            return none.clone();
        };
        let name = &metric.metric;
        let labels = labels(&metric.common.labels);
        let unit = match &metric.unit {
            Some(unit) => quote!(#private::Some(#unit)),
            None => none.clone(),
        };
        match &metric.kind {
            ValueKind::Histogram { buckets } => {
                let bounds = buckets.iter().map(|b| Literal::f64_unsuffixed(*b));
                cells.extend(quote! {
                    static __TM_VALUE_CELLS: #private::ValueCells = #private::ValueCells::new();
                    static #statics: #private::ValueHistogram = #private::ValueHistogram::new(
                        #name, #labels, #unit, &[#(#bounds),*], &__TM_VALUE_CELLS,
                    );
                });
            }
            ValueKind::Gauge => cells.extend(quote! {
                static __TM_GAUGE_CELL: #private::GaugeCell = #private::GaugeCell::new();
                static #statics: #private::Gauge =
                    #private::Gauge::new(#name, #labels, #unit, &__TM_GAUGE_CELL);
            }),
        }
        quote!(#private::Some(&#statics))
    };
    let value_histogram = value_metric(Kind::Histogram);
    let gauge = value_metric(Kind::Gauge);
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
            #value_histogram,
            #gauge,
        );
    }
}

/// `tokens` with every span set to `span`: a build error in them points at
/// the one user token that `span` is (a span mixing the attribute's tokens
/// with generated ones would point at the whole attribute).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
