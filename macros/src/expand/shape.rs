//! What kind of function is being instrumented (its shape), and the pieces
//! every wrapper is built from.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Path, ReturnType, Signature, Type, TypeParamBound};

#[derive(Clone, Copy)]
pub enum Shape<'a> {
    /// A plain function.
    Sync,
    /// `fn ... -> !`: it only ends by panicking, which the guard records.
    Diverging,
    /// `async fn`.
    Async(Option<&'a Type>),
    /// `fn ... -> impl Future<Output = T>` (`true`: also `+ Unpin`).
    ImplFuture(bool),
    /// `fn ... -> Pin<Box<dyn Future<Output = T> + ...>>` (async-trait style).
    BoxedFuture(&'a Type),
}

pub fn shape(sig: &Signature) -> Shape<'_> {
    let ret = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    if sig.asyncness.is_some() {
        return Shape::Async(ret);
    }
    match ret {
        Some(Type::Never(_)) => Shape::Diverging,
        Some(ty) if is_impl_future(ty) => Shape::ImplFuture(is_unpin_future(ty)),
        Some(ty) if is_boxed_future(ty) => Shape::BoxedFuture(ty),
        _ => Shape::Sync,
    }
}

fn last_ident(path: &Path) -> Option<&Ident> {
    path.segments.last().map(|segment| &segment.ident)
}

fn bounds_name_future<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> bool {
    bounds.any(|bound| match bound {
        TypeParamBound::Trait(trait_bound) => {
            last_ident(&trait_bound.path).is_some_and(|ident| ident == "Future")
        }
        _ => false,
    })
}

/// Whether an `impl Future` return type also promises `Unpin`.
fn is_unpin_future(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(impl_trait) => impl_trait.bounds.iter().any(|bound| match bound {
            TypeParamBound::Trait(trait_bound) => {
                last_ident(&trait_bound.path).is_some_and(|ident| ident == "Unpin")
            }
            _ => false,
        }),
        Type::Paren(inner) => is_unpin_future(&inner.elem),
        Type::Group(inner) => is_unpin_future(&inner.elem),
        _ => false,
    }
}

fn is_impl_future(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(impl_trait) => bounds_name_future(impl_trait.bounds.iter()),
        Type::Paren(inner) => is_impl_future(&inner.elem),
        Type::Group(inner) => is_impl_future(&inner.elem),
        _ => false,
    }
}

/// The single generic type argument of a path type named `name`.
fn generic_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

fn is_boxed_future(ty: &Type) -> bool {
    let Some(boxed) = generic_arg(ty, "Pin").and_then(|inner| generic_arg(inner, "Box")) else {
        return false;
    };
    match boxed {
        Type::TraitObject(object) => bounds_name_future(object.bounds.iter()),
        _ => false,
    }
}

/// The type with every `impl Trait` replaced by `_`, so it can annotate a
/// `let` (`Result<impl Display, E>` becomes `Result<_, E>`: the error type
/// still guides `?`).
pub fn erase_impl_trait(ty: &Type) -> Type {
    struct Eraser;
    impl VisitMut for Eraser {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(_) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: Default::default(),
                });
            } else {
                visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Eraser.visit_type_mut(&mut ty);
    ty
}

/// The body's statements, for splicing into a closure or `async` block whose
/// return type must be the function's: a dead `return` of a value of that
/// type comes first, so the block's type is fixed before the body's own
/// `return`s are checked and they coerce (`&String` to `&str`, `?` into the
/// declared error type) exactly as in the original function.
pub fn typed_body(statements: &TokenStream, ty: Option<&Type>) -> TokenStream {
    let private = private();
    match ty {
        Some(ty) => {
            let ty = erase_impl_trait(ty);
            quote! {
                if false { return #private::type_of_return::<#ty>(); }
                #statements
            }
        }
        None => statements.clone(),
    }
}

/// `body` run once in a closure: `return` and `?` end the closure, and the
/// closure is `FnOnce`, so it may return borrows of `&mut self`.
pub fn call_once(body: TokenStream) -> TokenStream {
    let private = private();
    quote!(#private::call_once(move || { #body }))
}

/// The path generated code reaches the runtime through: a local alias of
/// `<telemark>::__private` that every wrapper declares first.
pub fn private() -> Ident {
    Ident::new("__tm", Span::call_site())
}
