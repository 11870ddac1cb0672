//! `#[traced]`: one OpenTelemetry span per call.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Error, Expr, FnArg, LitStr, Pat, Path, Result, Signature, Token};

use crate::args::{self, Seen};
use crate::expand::{Attribute, FunctionSite};
use crate::shape::{guard_ident, value_ident, FutureSpan, Instrumentation};

/// How a value is turned into an attribute.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    Display,
    Debug,
}

struct Captured {
    name: Ident,
    format: Format,
}

struct Field {
    key: String,
    value: Expr,
}

pub struct Traced {
    krate: Path,
    /// Set by an enclosing annotated impl block.
    impl_type: Option<String>,
    name: Option<String>,
    kind: Ident,
    fields: Vec<Field>,
    args: Vec<Captured>,
    /// `err` / `err = debug`, with the token to report misuse at.
    err: Option<(Format, Span)>,
    /// `ret` / `ret = display`.
    ret: Option<(Format, Span)>,
}

const EXPECTED: &str = "`name`, `kind`, `fields`, `args`, `err`, `ret`, `crate`";

fn format_value(input: ParseStream, what: &str) -> Result<Format> {
    let ident = input.call(Ident::parse_any)?;
    match ident.to_string().as_str() {
        "display" => Ok(Format::Display),
        "debug" => Ok(Format::Debug),
        _ => Err(Error::new(
            ident.span(),
            format!("{what}: expected `display` or `debug`"),
        )),
    }
}

/// `fields(key = expr, dotted.key = expr, "any key" = expr)`
fn parse_fields(input: ParseStream) -> Result<Vec<Field>> {
    let content;
    syn::parenthesized!(content in input);
    let mut fields: Vec<Field> = Vec::new();
    while !content.is_empty() {
        let (key, span) = if content.peek(LitStr) {
            let lit: LitStr = content.parse()?;
            (lit.value(), lit.span())
        } else {
            let first = content.call(Ident::parse_any)?;
            let span = first.span();
            let mut key = first.to_string();
            while content.peek(Token![.]) {
                content.parse::<Token![.]>()?;
                key.push('.');
                key.push_str(&content.call(Ident::parse_any)?.to_string());
            }
            (key, span)
        };
        if key.is_empty() {
            return Err(Error::new(span, "a field name must not be empty"));
        }
        if fields.iter().any(|field| field.key == key) {
            return Err(Error::new(span, format!("duplicate field `{key}`")));
        }
        content
            .parse::<Token![=]>()
            .map_err(|err| Error::new(err.span(), format!("expected `{key} = <expression>`")))?;
        let value: Expr = content.parse()?;
        fields.push(Field { key, value });
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(fields)
}

impl Attribute for Traced {
    const NAME: &'static str = "traced";

    fn parse(input: TokenStream) -> Result<Self> {
        let mut traced = Traced {
            krate: args::default_crate(),
            impl_type: None,
            name: None,
            kind: Ident::new("Internal", Span::call_site()),
            fields: Vec::new(),
            args: Vec::new(),
            err: None,
            ret: None,
        };
        let mut seen = Seen::new();
        let parser = syn::meta::parser(|meta| {
            let name = seen.name(&meta)?;
            match name.as_str() {
                "name" => {
                    let lit: LitStr = meta.value()?.parse().map_err(|err| {
                        Error::new(
                            err.span(),
                            "expected a span name string, e.g. `name = \"load user\"`",
                        )
                    })?;
                    if lit.value().is_empty() {
                        return Err(Error::new_spanned(lit, "a span name must not be empty"));
                    }
                    traced.name = Some(lit.value());
                }
                "kind" => {
                    let kind = meta.value()?.call(Ident::parse_any)?;
                    let variant = match kind.to_string().as_str() {
                        "internal" => "Internal",
                        "server" => "Server",
                        "client" => "Client",
                        "producer" => "Producer",
                        "consumer" => "Consumer",
                        other => {
                            return Err(Error::new(
                                kind.span(),
                                format!(
                                    "unknown span kind `{other}`; expected one of: client, \
                                     server, producer, consumer, internal"
                                ),
                            ))
                        }
                    };
                    traced.kind = Ident::new(variant, kind.span());
                }
                "fields" => traced.fields = parse_fields(meta.input)?,
                "args" => {
                    let ahead = meta.input.fork();
                    let content;
                    syn::parenthesized!(content in ahead);
                    if content.is_empty() {
                        return Err(
                            meta.error("`args(...)` needs at least one `name = display|debug`")
                        );
                    }
                    meta.parse_nested_meta(|arg| {
                        let Some(ident) = arg.path.get_ident() else {
                            return Err(arg.error("expected an argument name"));
                        };
                        if !arg.input.peek(Token![=]) {
                            return Err(arg.error(format!(
                                "choose how to record `{ident}`: `{ident} = display` or `{ident} = debug`"
                            )));
                        }
                        let format = format_value(arg.value()?, &format!("`{ident}`"))?;
                        if traced.args.iter().any(|captured| captured.name == *ident) {
                            return Err(arg.error(format!("`{ident}` is captured twice")));
                        }
                        traced.args.push(Captured {
                            name: ident.clone(),
                            format,
                        });
                        Ok(())
                    })?;
                    if traced.args.is_empty() {
                        return Err(
                            meta.error("`args(...)` needs at least one `name = display|debug`")
                        );
                    }
                }
                "err" | "ret" => {
                    let default = if name == "err" {
                        Format::Display
                    } else {
                        Format::Debug
                    };
                    let format = if meta.input.peek(Token![=]) {
                        format_value(meta.value()?, &format!("`{name}`"))?
                    } else {
                        default
                    };
                    let span = meta.path.span();
                    if name == "err" {
                        traced.err = Some((format, span));
                    } else {
                        traced.ret = Some((format, span));
                    }
                }
                "crate" => traced.krate = args::crate_path(&meta)?,
                "__telemark_type" => traced.impl_type = Some(args::impl_type(&meta)?),
                _ => return Err(args::unknown(&meta, Self::NAME, &name, EXPECTED)),
            }
            Ok(())
        });
        syn::parse::Parser::parse2(parser, input)?;
        Ok(traced)
    }

    fn krate(&self) -> &Path {
        &self.krate
    }

    fn impl_type(&self) -> Option<&str> {
        self.impl_type.as_deref()
    }

    fn needs_value(&self) -> bool {
        self.err.is_some() || self.ret.is_some()
    }

    fn instrument(&self, site: &FunctionSite) -> Instrumentation {
        let krate = &self.krate;
        let span_name = self.name.clone().unwrap_or_else(|| site.function.clone());
        let function = &site.function;
        let kind = &self.kind;
        let line = quote_spanned!(site.name_span=> ::core::line!());
        let statics = quote! {
            static __TELEMARK_TRACE_SITE: #krate::__private::TraceSite = #krate::__private::TraceSite {
                name: #span_name,
                kind: #krate::__private::Kind::#kind,
                function: #function,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: #line,
            };
        };
        let record = Ident::new("__telemark_record", Span::mixed_site());
        let missing: Vec<TokenStream> = self
            .args
            .iter()
            .filter(|captured| !site.arguments.contains(&captured.name))
            .map(|captured| {
                let message = format!("`{}` is not an argument of this function", captured.name);
                quote_spanned!(captured.name.span()=> ::core::compile_error!(#message);)
            })
            .collect();
        let fields = self.fields.iter().map(|field| {
            let key = &field.key;
            let value = &field.value;
            quote_spanned!(value.span()=> #record.attribute(#key, #value);)
        });
        let captured = self
            .args
            .iter()
            .filter(|captured| site.arguments.contains(&captured.name))
            .map(|captured| {
                let name = &captured.name;
                let key = name.to_string();
                let capture = match captured.format {
                    Format::Display => {
                        quote_spanned!(name.span()=> #krate::__private::capture_display(&#name))
                    }
                    Format::Debug => {
                        quote_spanned!(name.span()=> #krate::__private::capture_debug(&#name))
                    }
                };
                quote!(#record.attribute(#key, #capture);)
            });
        let fill = quote! {
            |#record: &mut #krate::__private::SpanRecord| {
                #(#missing)*
                #(#fields)*
                #(#captured)*
            }
        };

        let value = Ident::new("__telemark_value", Span::mixed_site());
        let err = self.err.map(|(format, span)| match format {
            Format::Display => {
                quote_spanned!(span=> #krate::__private::span_error_display(#record, #value);)
            }
            Format::Debug => {
                quote_spanned!(span=> #krate::__private::span_error_debug(#record, #value);)
            }
        });
        let ret = self.ret.map(|(format, span)| match format {
            Format::Display => quote_spanned!(span=> #record.attribute("return.value", #krate::__private::capture_display(#value));),
            Format::Debug => quote_spanned!(span=> #record.attribute("return.value", #krate::__private::capture_debug(#value));),
        });
        let classify = quote! {
            |#record: &mut #krate::__private::SpanRecord, #value: &_| {
                let _ = (&#record, &#value);
                #err
                #ret
            }
        };

        let guard = guard_ident();
        let result = value_ident();
        let finish = self
            .needs_value()
            .then(|| quote!(#guard.finish(&#result, #classify);));
        let slot = Ident::new("__telemark_span_slot", Span::mixed_site());
        Instrumentation {
            statics,
            prelude: quote!(let mut #slot = #krate::__private::SpanSlot::new();),
            enter: quote!(#krate::__private::SyncSpan::start(&__TELEMARK_TRACE_SITE, &mut #slot, #fill)),
            finish,
            future_span: Some(FutureSpan {
                start: quote!(#krate::__private::AsyncSpan::start(&__TELEMARK_TRACE_SITE, #fill)),
                classify,
            }),
        }
    }
}

/// The plain identifiers among a function's parameters (`self` excluded).
pub fn argument_names(sig: &Signature) -> Vec<Ident> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(pat.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}
