//! `#[counted]`: `function_calls_total{function, module, service_name, result}`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, Path, Result};

use crate::args::{self, Seen};
use crate::expand::{Attribute, FunctionSite};
use crate::shape::{guard_ident, value_ident, Instrumentation};

/// How a returned value is classified as `ok` or `error`.
enum Classifier {
    /// `Err` of a `Result` is an error; any other type is ok.
    ByType,
    /// `ok_if = path`: ok when `path(&value)` is true.
    OkIf(Path),
    /// `error_if = path`: error when `path(&value)` is true.
    ErrorIf(Path),
}

pub struct Counted {
    krate: Path,
    /// Set by an enclosing annotated impl block.
    impl_type: Option<String>,
    metric: String,
    labels: Vec<(String, String)>,
    classifier: Classifier,
}

const EXPECTED: &str = "`name`, `labels`, `ok_if`, `error_if`, `crate`";

impl Attribute for Counted {
    const NAME: &'static str = "counted";

    fn parse(input: TokenStream) -> Result<Self> {
        let mut counted = Counted {
            krate: args::default_crate(),
            impl_type: None,
            metric: "function_calls_total".to_owned(),
            labels: Vec::new(),
            classifier: Classifier::ByType,
        };
        let mut seen = Seen::new();
        let parser = syn::meta::parser(|meta| {
            let name = seen.name(&meta)?;
            match name.as_str() {
                "name" => counted.metric = args::counter_name(&meta)?,
                "labels" => counted.labels = args::labels(&meta)?,
                "crate" => counted.krate = args::crate_path(&meta)?,
                "__telemark_type" => counted.impl_type = Some(args::impl_type(&meta)?),
                "ok_if" | "error_if" => {
                    if !matches!(counted.classifier, Classifier::ByType) {
                        return Err(meta.error("`ok_if` and `error_if` cannot be combined"));
                    }
                    let path = meta.value()?.parse::<Path>().map_err(|err| {
                        Error::new(
                            err.span(),
                            format!(
                                "expected a path to a function taking a reference to the \
                                 return value and returning bool, e.g. `{name} = Option::is_some`"
                            ),
                        )
                    })?;
                    counted.classifier = if name == "ok_if" {
                        Classifier::OkIf(path)
                    } else {
                        Classifier::ErrorIf(path)
                    };
                }
                _ => return Err(args::unknown(&meta, Self::NAME, &name, EXPECTED)),
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, input)?;
        Ok(counted)
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

    fn instrument(&self, site: &FunctionSite) -> Instrumentation {
        let krate = &self.krate;
        let info = site.info(&self.metric, &self.labels);
        let statics = quote! {
            static __TELEMARK_COUNTED_CELLS: #krate::__private::CounterCells =
                #krate::__private::CounterCells::new();
            static __TELEMARK_COUNTED_SITE: #krate::__private::CountedSite =
                #krate::__private::CountedSite::new(#info, &__TELEMARK_COUNTED_CELLS);
            #[#krate::__private::linkme::distributed_slice(#krate::__private::METRIC_SITES)]
            #[linkme(crate = #krate::__private::linkme)]
            static __TELEMARK_COUNTED_ENTRY: #krate::__private::MetricSite =
                #krate::__private::MetricSite::Counted(&__TELEMARK_COUNTED_SITE);
        };
        let enter = quote!(#krate::__private::CountedGuard::new(&__TELEMARK_COUNTED_SITE));
        // A user classifier is called as `!path(&value)` or `path(&value)`,
        // spanned on the path so that a wrong signature is reported there.
        let classifier = match &self.classifier {
            Classifier::ByType => None,
            Classifier::OkIf(path) => Some((true, path.clone())),
            Classifier::ErrorIf(path) => Some((false, path.clone())),
        };
        let guard = guard_ident();
        let value = value_ident();
        let finish = {
            let is_error = match &classifier {
                None => quote! {{
                    #[allow(unused_imports)]
                    use #krate::__private::{ClassifyOther as _, ClassifyResult as _};
                    (&#krate::__private::Classify(&#value)).telemark_is_error()
                }},
                Some((negate, path)) => {
                    // Coercing to a fn pointer first reports a wrong signature at the path.
                    let classifier = Ident::new("__telemark_classifier", Span::mixed_site());
                    let check = quote_spanned! {path.span()=>
                        let #classifier: fn(&_) -> bool = #path;
                    };
                    let call = if *negate {
                        quote!(!#classifier(&#value))
                    } else {
                        quote!(#classifier(&#value))
                    };
                    quote!({ #check #call })
                }
            };
            quote!(#guard.finish(#is_error);)
        };
        Instrumentation {
            statics,
            prelude: quote!(),
            enter,
            finish: Some(finish),
            future_span: None,
        }
    }
}
