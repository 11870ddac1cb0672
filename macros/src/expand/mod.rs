//! Expansion: an annotated item in, the item with one wrapper per function
//! out. Every telemark attribute on a function (and on its impl block) is
//! gathered by the first one to expand, so stacked attributes give one
//! wrapper, one guard and one catalog entry, nested in one order whatever
//! the order they are written in: span ⊃ duration and in-flight gauge ⊃
//! counter ⊃ circuit breaker ⊃ body.

mod breaker;
mod shape;
mod site;
mod wrap;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{ImplItem, Item, ItemFn, Signature, Type};

use crate::attr::{Attribute, Kind};
use crate::errors::Errors;
use crate::plan::{unraw, Plan};

/// Runs the attribute `kind` (written with `args`) on `item`. On error, the
/// errors come out with the item, stripped of the telemark attributes
/// already reported on, so the user sees each mistake once.
pub fn attribute(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let first = Attribute::parse(kind, args, Span::call_site(), &mut errors);
    let item: Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(error) => {
            errors.push(error);
            return with_errors(errors, item);
        }
    };
    match item {
        Item::Fn(function) => function_item(first, function, errors),
        Item::Impl(implementation) if kind.changes_behaviour() => {
            errors.at(
                implementation.impl_token.span,
                format!(
                    "#[{}] applies to functions; put it on each method that needs it",
                    kind.name()
                ),
            );
            with_errors(errors, implementation.into_token_stream())
        }
        Item::Impl(implementation) => impl_item(first, implementation, errors),
        other => {
            errors.at(
                item_keyword_span(&other),
                format!(
                    "#[{}] applies to functions and impl blocks, not to this item",
                    kind.name()
                ),
            );
            with_errors(errors, other.into_token_stream())
        }
    }
}

fn with_errors(errors: Errors, item: TokenStream) -> TokenStream {
    let mut out = match errors.into_result() {
        Ok(()) => TokenStream::new(),
        Err(error) => error.to_compile_error(),
    };
    out.extend(item);
    out
}

/// Removes the telemark attributes from `attrs` and parses them. The paths
/// of those that may have come through an import are kept in `paths`, for
/// the wrapper to mention so that the imports still count as used.
fn take_attributes(
    attrs: &mut Vec<syn::Attribute>,
    already: Option<Kind>,
    krate: Option<&syn::Path>,
    paths: &mut Vec<syn::Path>,
    errors: &mut Errors,
) -> Vec<Attribute> {
    let mut taken = Vec::new();
    attrs.retain(|attr| {
        let Some(kind) = Kind::of(attr, krate) else {
            return true;
        };
        let args = match &attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(name_value) => {
                errors.spanned(
                    name_value,
                    format!(
                        "write #[{}(...)] with its arguments in parentheses",
                        kind.name()
                    ),
                );
                return false;
            }
        };
        let span = syn::spanned::Spanned::span(attr);
        if let Some(attribute) = Attribute::parse(kind, args, span, errors) {
            taken.push((attribute, attr.clone()));
        }
        // An attribute written `telemark::timed` (or `::telemark::timed`)
        // came through no import; `timed` or `tm::timed` may have.
        let path = attr.path();
        let through_import = path.leading_colon.is_none()
            && path
                .segments
                .first()
                .is_some_and(|first| first.ident != "telemark");
        if through_import {
            paths.push(path.clone());
        }
        false
    });
    let mut unique: Vec<Attribute> = Vec::new();
    for (attribute, attr) in taken {
        if already == Some(attribute.kind())
            || unique.iter().any(|seen| seen.kind() == attribute.kind())
        {
            errors.spanned(
                attr,
                format!("#[{}] is given twice", attribute.kind().name()),
            );
        } else {
            unique.push(attribute);
        }
    }
    unique
}

fn function_item(
    first: Option<Attribute>,
    mut function: ItemFn,
    mut errors: Errors,
) -> TokenStream {
    let mut paths = Vec::new();
    let already = first.as_ref().map(Attribute::kind);
    let krate = first.as_ref().and_then(Attribute::krate);
    let mut attributes =
        take_attributes(&mut function.attrs, already, krate, &mut paths, &mut errors);
    if let Some(first) = first {
        attributes.insert(0, first);
    }
    let plan = Plan::new(attributes, &function.sig, None, &mut errors);
    plan.validate(&function.sig, &function.attrs, &mut errors);
    if !errors.is_empty() {
        return with_errors(errors, function.into_token_stream());
    }
    function.block = Box::new(instrument(plan, &function.sig, &function.block, &paths));
    function.into_token_stream()
}

fn impl_item(
    first: Option<Attribute>,
    mut implementation: syn::ItemImpl,
    mut errors: Errors,
) -> TokenStream {
    let mut impl_paths = Vec::new();
    let already = first.as_ref().map(Attribute::kind);
    let krate = first.as_ref().and_then(Attribute::krate).cloned();
    let mut on_impl = take_attributes(
        &mut implementation.attrs,
        already,
        krate.as_ref(),
        &mut impl_paths,
        &mut errors,
    );
    if let Some(first) = first {
        on_impl.insert(0, first);
    }
    for attribute in &on_impl {
        if attribute.kind().changes_behaviour() {
            errors.at(
                implementation.impl_token.span,
                "#[circuit_breaker] applies to functions; put it on each method that needs it",
            );
        }
    }
    if !errors.is_empty() {
        return with_errors(errors, implementation.into_token_stream());
    }
    let type_name = type_name(&implementation.self_ty);
    for item in &mut implementation.items {
        let ImplItem::Fn(method) = item else { continue };
        let mut paths = Vec::new();
        let mut attributes = take_attributes(
            &mut method.attrs,
            None,
            krate.as_ref(),
            &mut paths,
            &mut errors,
        );
        // A const fn runs at compile time too: there is nothing to record,
        // unless the method asks for it itself (and is told it cannot).
        if method.sig.constness.is_none() {
            for attribute in &on_impl {
                if !attributes.iter().any(|own| own.kind() == attribute.kind()) {
                    attributes.push(attribute.clone());
                }
            }
        }
        if attributes.is_empty() {
            continue;
        }
        let plan = Plan::new(attributes, &method.sig, Some(&type_name), &mut errors);
        plan.validate(&method.sig, &method.attrs, &mut errors);
        if errors.is_empty() {
            method.block = instrument(plan, &method.sig, &method.block, &paths);
        }
    }
    let mut out = with_errors(errors, implementation.into_token_stream());
    if !impl_paths.is_empty() {
        // Keeps imports of the impl block's other attributes in use.
        out.extend(quote!(const _: () = { #(#[allow(unused_imports)] use #impl_paths as _;)* };));
    }
    out
}

/// The function's new block. `paths` are the telemark attributes gathered
/// from the function: mentioned in it, so that imports of them stay in use.
fn instrument(plan: Plan, sig: &Signature, block: &syn::Block, paths: &[syn::Path]) -> syn::Block {
    // Objectives stay in use when instrumentation is compiled out.
    let mut objectives = Vec::new();
    let mut label_expressions = Vec::new();
    let plan = if cfg!(feature = "disable-instrumentation") {
        objectives = plan.objectives();
        label_expressions = plan.start_expressions();
        plan.without_instrumentation()
    } else {
        plan
    };
    let statements = &block.stmts;
    let statements = quote!(#(#statements)*);
    // The runtime as `__tm`, and the imports of the gathered attributes in use.
    let krate = &plan.krate;
    let private = shape::private();
    let mut attribute_uses =
        (!paths.is_empty()).then(|| quote!(#[allow(unused_imports)] use {#(#paths as _),*};));
    if !objectives.is_empty() {
        attribute_uses
            .get_or_insert_with(TokenStream::new)
            .extend(quote!(const _: () = { #(let _ = &#objectives;)* };));
    }
    if !label_expressions.is_empty() {
        // Never run: the arguments the labels read stay in use.
        attribute_uses
            .get_or_insert_with(TokenStream::new)
            .extend(quote!(if false { #(let _ = &(#label_expressions);)* }));
    }
    if plan.breaker.is_none() && !plan.is_instrumented() {
        return parse_block(quote!({ #attribute_uses #statements }));
    }
    let uses = quote!(use #krate::__private as #private; #attribute_uses);
    let body = match &plan.breaker {
        Some(breaker) => wrap::Body {
            statements: breaker::breaker_block(&plan, breaker, sig, &statements),
            may_return: false,
        },
        None => wrap::Body {
            statements,
            may_return: true,
        },
    };
    let tokens = if plan.is_instrumented() {
        let statics = site::statics(&plan, sig);
        wrap::wrap(&plan, sig, quote!(#uses #statics), body)
    } else {
        let statements = body.statements;
        quote!({ #uses #statements })
    };
    parse_block(tokens)
}

fn parse_block(tokens: TokenStream) -> syn::Block {
    syn::parse2(tokens).unwrap_or_else(|error| {
        // Never expected: report it rather than panic in the compiler.
        let error = error.to_compile_error();
        syn::parse_quote!({ #error })
    })
}

/// The self type's name as the `Type` in `Type::method`.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map(|segment| unraw(&segment.ident))
            .unwrap_or_default(),
        Type::Reference(reference) => type_name(&reference.elem),
        Type::Paren(inner) => type_name(&inner.elem),
        Type::Group(inner) => type_name(&inner.elem),
        other => other.to_token_stream().to_string().replace(' ', ""),
    }
}

/// The span of the keyword that says what an item is (`struct`, `mod`, …).
fn item_keyword_span(item: &Item) -> Span {
    use syn::spanned::Spanned;
    match item {
        Item::Const(item) => item.const_token.span,
        Item::Enum(item) => item.enum_token.span,
        Item::ExternCrate(item) => item.extern_token.span,
        Item::ForeignMod(item) => item.abi.extern_token.span,
        Item::Macro(item) => item.mac.path.span(),
        Item::Mod(item) => item.mod_token.span,
        Item::Static(item) => item.static_token.span,
        Item::Struct(item) => item.struct_token.span,
        Item::Trait(item) => item.trait_token.span,
        Item::TraitAlias(item) => item.trait_token.span,
        Item::Type(item) => item.type_token.span,
        Item::Union(item) => item.union_token.span,
        Item::Use(item) => item.use_token.span,
        other => other.span(),
    }
}
