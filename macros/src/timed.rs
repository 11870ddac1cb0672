//! `#[timed]`: the `function_calls_duration_seconds` histogram and the
//! `function_calls_concurrent` gauge.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Error, Expr, ExprArray, Lit, Path, Result};

use crate::args::{self, Seen};
use crate::expand::{Attribute, FunctionSite};
use crate::shape::Instrumentation;

/// Most finite bounds per histogram; must equal `telemark_runtime::MAX_BUCKETS`.
const MAX_BUCKETS: usize = 29;

pub struct Timed {
    krate: Path,
    /// Set by an enclosing annotated impl block.
    impl_type: Option<String>,
    metric: String,
    labels: Vec<(String, String)>,
    /// This function's own bucket bounds in nanoseconds.
    buckets: Option<Vec<u64>>,
}

const EXPECTED: &str = "`name`, `buckets`, `labels`, `crate`";

impl Attribute for Timed {
    const NAME: &'static str = "timed";

    fn parse(input: TokenStream) -> Result<Self> {
        let mut timed = Timed {
            krate: args::default_crate(),
            impl_type: None,
            metric: "function_calls_duration_seconds".to_owned(),
            labels: Vec::new(),
            buckets: None,
        };
        let mut seen = Seen::new();
        let parser = syn::meta::parser(|meta| {
            let name = seen.name(&meta)?;
            match name.as_str() {
                "name" => timed.metric = args::histogram_name(&meta)?,
                "labels" => timed.labels = args::labels(&meta)?,
                "crate" => timed.krate = args::crate_path(&meta)?,
                "__telemark_type" => timed.impl_type = Some(args::impl_type(&meta)?),
                "buckets" => {
                    let array = meta.value()?.parse::<ExprArray>().map_err(|err| {
                        Error::new(
                            err.span(),
                            "expected an array of bucket bounds in seconds, \
                             e.g. `buckets = [0.01, 0.1, 1.0]`",
                        )
                    })?;
                    timed.buckets = Some(bucket_nanos(&array)?);
                }
                _ => return Err(args::unknown(&meta, Self::NAME, &name, EXPECTED)),
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, input)?;
        Ok(timed)
    }

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn impl_type(&self) -> Option<&str> {
        self.impl_type.as_deref()
    }

    fn needs_value(&self) -> bool {
        false
    }

    fn instrument(&self, site: &FunctionSite) -> Instrumentation {
        let krate = &self.krate;
        let info = site.info(&self.metric, &self.labels);
        let (bounds_static, bounds) = match &self.buckets {
            Some(nanos) => {
                let len = nanos.len();
                (
                    quote! {
                        static __TELEMARK_TIMED_BOUNDS: [u64; #len] = [#(#nanos),*];
                    },
                    quote!(::core::option::Option::Some(&__TELEMARK_TIMED_BOUNDS)),
                )
            }
            None => (quote!(), quote!(::core::option::Option::None)),
        };
        let statics = quote! {
            #bounds_static
            static __TELEMARK_TIMED_CELLS: #krate::__private::TimedCells =
                #krate::__private::TimedCells::new();
            static __TELEMARK_TIMED_SITE: #krate::__private::TimedSite =
                #krate::__private::TimedSite::new(#info, &__TELEMARK_TIMED_CELLS, #bounds);
            #[#krate::__private::linkme::distributed_slice(#krate::__private::METRIC_SITES)]
            #[linkme(crate = #krate::__private::linkme)]
            static __TELEMARK_TIMED_ENTRY: #krate::__private::MetricSite =
                #krate::__private::MetricSite::Timed(&__TELEMARK_TIMED_SITE);
        };
        Instrumentation {
            statics,
            prelude: quote!(),
            enter: quote!(#krate::__private::TimedGuard::new(&__TELEMARK_TIMED_SITE)),
            finish: None,
            future_span: None,
        }
    }
}

/// Checks literal bucket bounds (seconds) and converts them to nanoseconds.
fn bucket_nanos(array: &ExprArray) -> Result<Vec<u64>> {
    if array.elems.is_empty() {
        return Err(Error::new_spanned(
            array,
            "`buckets` needs at least one bound",
        ));
    }
    if array.elems.len() > MAX_BUCKETS {
        return Err(Error::new_spanned(
            array,
            format!(
                "{} buckets given; at most {MAX_BUCKETS} are supported",
                array.elems.len()
            ),
        ));
    }
    let mut nanos: Vec<u64> = Vec::with_capacity(array.elems.len());
    for element in &array.elems {
        let seconds = match element {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Float(float) => float.base10_parse::<f64>()?,
                Lit::Int(int) => int.base10_parse::<u64>()? as f64,
                other => {
                    return Err(Error::new(
                        other.span(),
                        "a bucket bound must be a number of seconds",
                    ))
                }
            },
            Expr::Unary(_) => {
                return Err(Error::new_spanned(
                    element,
                    "bucket bounds must be positive",
                ))
            }
            other => {
                return Err(Error::new_spanned(
                    other,
                    "a bucket bound must be a number literal (seconds)",
                ))
            }
        };
        if !(1e-9..=1e9).contains(&seconds) {
            return Err(Error::new_spanned(
                element,
                "bucket bounds must be positive, between 1e-9 and 1e9 seconds",
            ));
        }
        let bound = (seconds * 1e9).round() as u64;
        if nanos.last().is_some_and(|&previous| bound <= previous) {
            return Err(Error::new_spanned(
                element,
                "bucket bounds must be sorted in increasing order, without repeats",
            ));
        }
        nanos.push(bound);
    }
    Ok(nanos)
}
