//! What kind of function is being instrumented, and how its body is wrapped.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Path, ReturnType, Signature, Type, TypeParamBound};

/// What an attribute contributes to a wrapped function.
pub struct Instrumentation {
    /// Items (statics) placed at the top of the body.
    pub statics: TokenStream,
    /// Expression creating the guard, evaluated when the call starts.
    pub enter: TokenStream,
    /// Statement run with the returned value (named [`value_ident`]) before it
    /// is returned, or `None` when the guard (named [`guard_ident`]) needs no
    /// value because it records on drop.
    pub finish: Option<TokenStream>,
}

/// The local holding the guard; hygienic, so user code cannot see it.
pub fn guard_ident() -> Ident {
    Ident::new("__telemark_guard", Span::mixed_site())
}

/// The local holding the returned value; hygienic like [`guard_ident`].
pub fn value_ident() -> Ident {
    Ident::new("__telemark_ret", Span::mixed_site())
}

enum Shape<'a> {
    /// A plain function (the return type, if any).
    Sync(Option<&'a Type>),
    /// `fn ... -> !`: it only ends by panicking, which the guard records.
    Diverging,
    /// `async fn`.
    Async(Option<&'a Type>),
    /// `fn ... -> impl Future<Output = T>`.
    ImplFuture,
    /// `fn ... -> Pin<Box<dyn Future<Output = T> + ...>>` (async-trait style).
    BoxedFuture(&'a Type),
}

fn shape(sig: &Signature) -> Shape<'_> {
    let ret = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    if sig.asyncness.is_some() {
        return Shape::Async(ret);
    }
    match ret {
        Some(Type::Never(_)) => Shape::Diverging,
        Some(ty) if is_impl_future(ty) => Shape::ImplFuture,
        Some(ty) if is_boxed_future(ty) => Shape::BoxedFuture(ty),
        _ => Shape::Sync(ret),
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
fn erase_impl_trait(ty: &Type) -> Type {
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

/// The body with its declared type as the expected type (so `?`, coercions
/// and early `return`s infer exactly as in the original function).
/// Returns the statements of a block body (without braces).
fn typed_body(block: &Block, ty: Option<&Type>) -> TokenStream {
    match ty {
        Some(ty) => {
            let ty = erase_impl_trait(ty);
            let value = Ident::new("__telemark_value", Span::mixed_site());
            quote!(let #value: #ty = #block; #value)
        }
        None => {
            let statements = &block.stmts;
            quote!(#(#statements)*)
        }
    }
}

/// Wraps `block` so that `instrumentation` sees every call of the function.
///
/// - sync: the body runs in a closure called once, so `return` and `?` end
///   the closure and the returned value can be classified before it leaves;
/// - `async fn`: the same with an `async move` block awaited in place;
/// - `impl Future` / boxed futures: the body (which builds the future) runs
///   first, then the future is wrapped so the guard lives from its first poll
///   to its completion or drop.
///
/// The closure moves a token out so that it is `FnOnce`: methods may then
/// return borrows of `&mut self` through it.
pub fn wrap(krate: &Path, sig: &Signature, block: &Block, inst: &Instrumentation) -> TokenStream {
    let site = Span::mixed_site();
    let guard = guard_ident();
    let ret = value_ident();
    let future = Ident::new("__telemark_future", site);
    let once = Ident::new("__telemark_once", site);
    let statics = &inst.statics;
    let enter = &inst.enter;
    let finish = &inst.finish;
    let call_once = |body: TokenStream| {
        quote! {{
            let #once = #krate::__private::CallOnce;
            (move || {
                #krate::__private::CallOnce::consume(#once);
                #body
            })()
        }}
    };

    match (shape(sig), &finish) {
        (Shape::Sync(_), None) | (Shape::Async(_), None) | (Shape::Diverging, _) => quote! {{
            #statics
            let #guard = #enter;
            #block
        }},
        (Shape::Sync(ty), Some(finish)) => {
            let call = call_once(typed_body(block, ty));
            quote! {{
                #statics
                let #guard = #enter;
                #[allow(clippy::redundant_closure_call, clippy::let_and_return)]
                let #ret = #call;
                #finish
                #ret
            }}
        }
        (Shape::Async(ty), Some(finish)) => {
            let body = typed_body(block, ty);
            quote! {{
                #statics
                let #guard = #enter;
                #[allow(clippy::let_and_return)]
                let #ret = async move { #body }.await;
                #finish
                #ret
            }}
        }
        (Shape::ImplFuture, _) | (Shape::BoxedFuture(_), _) => {
            let declared = match shape(sig) {
                Shape::BoxedFuture(ty) => Some(ty),
                _ => None,
            };
            let build = call_once(typed_body(block, declared));
            let instrumented = match &finish {
                Some(finish) => quote! {
                    async move {
                        let #guard = #enter;
                        let #ret = #future.await;
                        #finish
                        #ret
                    }
                },
                None => quote! {
                    async move {
                        let #guard = #enter;
                        #future.await
                    }
                },
            };
            let instrumented = if declared.is_some() {
                quote!(::std::boxed::Box::pin(#instrumented))
            } else {
                instrumented
            };
            quote! {{
                #statics
                #[allow(clippy::redundant_closure_call, clippy::let_and_return)]
                let #future = #build;
                #instrumented
            }}
        }
    }
}
