//! `#[traced]`: one OpenTelemetry span per call.

use proc_macro2::{Ident, Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Token};

use super::{skip_value, unknown, Argument, Common};
use crate::errors::Errors;

/// How a value is turned into an attribute.
#[derive(Clone, Copy, PartialEq)]
pub enum Format {
    Display,
    Debug,
}

#[derive(Clone)]
pub struct Captured {
    pub name: Ident,
    pub format: Format,
}

#[derive(Clone)]
pub struct Field {
    pub key: String,
    pub value: Expr,
}

#[derive(Clone)]
pub struct Traced {
    pub common: Common,
    /// The span's name, when not the function's.
    pub name: Option<String>,
    /// `Kind` variant.
    pub kind: Ident,
    pub fields: Vec<Field>,
    pub args: Vec<Captured>,
    /// `err` / `err = debug`, with the token to report misuse at.
    pub err: Option<(Format, Span)>,
    /// `ret` / `ret = display`.
    pub ret: Option<(Format, Span)>,
}

impl Traced {
    /// Whether it must see the returned value.
    pub fn needs_value(&self) -> bool {
        self.err.is_some() || self.ret.is_some()
    }
}

const EXPECTED: &str = "`name`, `kind`, `fields`, `args`, `err`, `ret`, `self_type`, `crate`";

fn format_value(input: ParseStream, what: &str, errors: &mut Errors) -> syn::Result<Format> {
    let ident = input.call(Ident::parse_any)?;
    match ident.to_string().as_str() {
        "display" => Ok(Format::Display),
        "debug" => Ok(Format::Debug),
        _ => {
            errors.at(
                ident.span(),
                format!("{what}: expected `display` or `debug`"),
            );
            Ok(Format::Debug)
        }
    }
}

/// `fields(key = expr, dotted.key = expr, "any key" = expr)`
fn parse_fields(input: ParseStream, errors: &mut Errors) -> syn::Result<Vec<Field>> {
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
            errors.at(span, "a field name must not be empty");
        } else if fields.iter().any(|field| field.key == key) {
            errors.at(span, format!("duplicate field `{key}`"));
        }
        content.parse::<Token![=]>().map_err(|err| {
            syn::Error::new(err.span(), format!("expected `{key} = <expression>`"))
        })?;
        let value: Expr = content.parse()?;
        fields.push(Field { key, value });
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(fields)
}

pub fn parse(args: TokenStream, common: &mut Common, errors: &mut Errors) -> Option<Traced> {
    let mut traced = Traced {
        common: Common::default(),
        name: None,
        kind: Ident::new("Internal", Span::call_site()),
        fields: Vec::new(),
        args: Vec::new(),
        err: None,
        ret: None,
    };
    let parser = syn::meta::parser(|meta| {
        let name = match common.argument(
            &meta,
            false,
            "a span name string, e.g. `name = \"load user\"`",
            errors,
        )? {
            Argument::Done => return Ok(()),
            Argument::Own(name) => name,
        };
        match name.as_str() {
            "kind" => {
                let kind = meta.value()?.call(Ident::parse_any)?;
                let variant = match kind.to_string().as_str() {
                    "internal" => "Internal",
                    "server" => "Server",
                    "client" => "Client",
                    "producer" => "Producer",
                    "consumer" => "Consumer",
                    other => {
                        errors.at(
                            kind.span(),
                            format!(
                                "unknown span kind `{other}`; expected one of: client, \
                                 server, producer, consumer, internal"
                            ),
                        );
                        "Internal"
                    }
                };
                traced.kind = Ident::new(variant, kind.span());
            }
            "fields" => traced.fields = parse_fields(meta.input, errors)?,
            "args" => {
                let ahead = meta.input.fork();
                let content;
                syn::parenthesized!(content in ahead);
                if content.is_empty() {
                    errors
                        .push(meta.error("`args(...)` needs at least one `name = display|debug`"));
                    return skip_value(&meta);
                }
                meta.parse_nested_meta(|arg| {
                    let Some(ident) = arg.path.get_ident() else {
                        errors.push(arg.error("expected an argument name"));
                        return skip_value(&arg);
                    };
                    if !arg.input.peek(Token![=]) {
                        errors.push(arg.error(format!(
                            "choose how to record `{ident}`: `{ident} = display` or `{ident} = debug`"
                        )));
                        return skip_value(&arg);
                    }
                    let format = format_value(arg.value()?, &format!("`{ident}`"), errors)?;
                    if traced.args.iter().any(|captured| captured.name == *ident) {
                        errors.push(arg.error(format!("`{ident}` is captured twice")));
                    }
                    traced.args.push(Captured {
                        name: ident.clone(),
                        format,
                    });
                    Ok(())
                })?;
            }
            "err" | "ret" => {
                let default = if name == "err" {
                    Format::Display
                } else {
                    Format::Debug
                };
                let format = if meta.input.peek(Token![=]) {
                    format_value(meta.value()?, &format!("`{name}`"), errors)?
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
            _ => return unknown(&meta, "traced", &name, EXPECTED, errors),
        }
        Ok(())
    });
    let parsed = syn::parse::Parser::parse2(parser, args);
    errors.ok(parsed)?;
    if let Some(lit) = &common.name {
        if lit.value().is_empty() {
            errors.spanned(lit, "a span name must not be empty");
        }
        traced.name = Some(lit.value());
    }
    traced.common = std::mem::take(common);
    Some(traced)
}
