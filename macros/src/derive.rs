//! `#[derive(LabelValue)]`: a field-less enum as the values of a label
//! computed on each call.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

use crate::errors::Errors;

/// The impl of `LabelValue` for `input`, or the errors in it.
pub fn label_value(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut krate: Path = syn::parse_quote!(::telemark);
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("label_value"))
    {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                krate = meta.value()?.parse()?;
                Ok(())
            } else {
                Err(meta.error("expected `crate = path::to::telemark`"))
            }
        });
        errors.ok(parsed);
    }
    let variants = match &input.data {
        Data::Enum(data) => &data.variants,
        Data::Struct(data) => {
            errors.at(
                data.struct_token.span,
                "#[derive(LabelValue)] applies to enums whose variants have no fields",
            );
            return errors_only(errors);
        }
        Data::Union(data) => {
            errors.at(
                data.union_token.span,
                "#[derive(LabelValue)] applies to enums whose variants have no fields",
            );
            return errors_only(errors);
        }
    };
    if variants.is_empty() {
        errors.spanned(
            &input.ident,
            "#[derive(LabelValue)] needs at least one variant: a label takes the variants' names",
        );
    }
    let mut names: Vec<(String, Span)> = Vec::new();
    for variant in variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.spanned(
                &variant.fields,
                "a label's value is a variant without fields: its name is the value",
            );
        }
        let mut name = snake_case(&variant.ident.to_string());
        let mut span = variant.ident.span();
        for attr in variant
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("label_value"))
        {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    let lit: LitStr = meta.value()?.parse()?;
                    name = lit.value();
                    span = lit.span();
                    Ok(())
                } else {
                    Err(meta.error("expected `rename = \"value\"`"))
                }
            });
            errors.ok(parsed);
        }
        if names.iter().any(|(seen, _)| *seen == name) {
            errors.at(
                span,
                format!("two variants are both the label value `{name}`: rename one"),
            );
        }
        names.push((name, span));
    }
    if !errors.is_empty() {
        return errors_only(errors);
    }
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let count = names.len();
    let texts = names.iter().map(|(name, _)| name);
    let arms = variants.iter().enumerate().map(|(index, variant)| {
        let index = index as u32;
        let variant = &variant.ident;
        quote!(Self::#variant => #index,)
    });
    quote! {
        impl #impl_generics #krate::metrics::LabelValue for #ident #type_generics #where_clause {
            #[inline]
            fn label_key(&self) -> #krate::metrics::LabelKey {
                static NAMES: [&str; #count] = [#(#texts),*];
                #krate::metrics::LabelKey::variant(match self { #(#arms)* }, &NAMES)
            }
        }
    }
}

fn errors_only(errors: Errors) -> TokenStream {
    match errors.into_result() {
        Ok(()) => TokenStream::new(),
        Err(error) => error.to_compile_error(),
    }
}

/// `HttpError` → `http_error`, `TLSFailure` → `tls_failure`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.trim_start_matches("r#").chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let starts_word = previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (previous.is_some_and(char::is_uppercase)
                    && next.is_some_and(|n| n.is_lowercase()));
            if starts_word && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn variant_names_become_snake_case() {
        assert_eq!(snake_case("Real"), "real");
        assert_eq!(snake_case("HttpError"), "http_error");
        assert_eq!(snake_case("TLSFailure"), "tls_failure");
        assert_eq!(snake_case("V2Api"), "v2_api");
        assert_eq!(snake_case("already_snake"), "already_snake");
    }
}
