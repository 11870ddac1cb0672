//! What kind of function is being instrumented, and how its body is wrapped.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Path, ReturnType, Signature, Type, TypeParamBound};

/// What an attribute contributes to a wrapped function.
pub struct Instrumentation {
    /// Items (statics) placed at the top of the body.
    pub statics: TokenStream,
    /// Statements run just before the guard is created (locals it borrows).
    pub prelude: TokenStream,
    /// Expression creating the guard, evaluated when the call starts.
    pub enter: TokenStream,
    /// Statement run with the returned value (named [`value_ident`]) before it
    /// is returned, or `None` when the guard (named [`guard_ident`]) needs no
    /// value because it records on drop.
    pub finish: Option<TokenStream>,
    /// For attributes that must run *around* a future rather than beside it
    /// (a span is made current on every poll): how futures are instrumented.
    pub future_span: Option<FutureSpan>,
}

/// The span protocol for futures: `start` is an expression giving an
/// `AsyncSpan`; its `instrument(future)` yields `(output, span)` and
/// `span.finish(&output, classify)` ends it (a dropped future ends it too).
pub struct FutureSpan {
    pub start: TokenStream,
    /// A closure `|record, &output| ...` recording the outcome.
    pub classify: TokenStream,
}

/// The local holding the guard; hygienic, so user code cannot see it.
pub fn guard_ident() -> Ident {
    Ident::new("__telemark_guard", Span::mixed_site())
}

/// The local holding the returned value; hygienic like [`guard_ident`].
pub fn value_ident() -> Ident {
    Ident::new("__telemark_ret", Span::mixed_site())
}

#[derive(Clone, Copy)]
enum Shape<'a> {
    /// A plain function (the return type, if any).
    Sync(Option<&'a Type>),
    /// `fn ... -> !`: it only ends by panicking, which the guard records.
    Diverging,
    /// `async fn`.
    Async(Option<&'a Type>),
    /// `fn ... -> impl Future<Output = T>` (`true`: also `+ Unpin`).
    ImplFuture(bool),
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
        Some(ty) if is_impl_future(ty) => Shape::ImplFuture(is_unpin_future(ty)),
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
pub fn typed_body(block: &Block, ty: Option<&Type>) -> TokenStream {
    let statements = &block.stmts;
    match ty {
        Some(ty) => {
            let ty = erase_impl_trait(ty);
            let fake = Ident::new("__telemark_type_of_return", Span::mixed_site());
            quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                if false {
                    let #fake: #ty = loop {};
                    return #fake;
                }
                #(#statements)*
            }
        }
        None => quote!(#(#statements)*),
    }
}

/// `body` run once in a closure: `return` and `?` end the closure, and the
/// closure moves a token out, so it is `FnOnce` and may return borrows of
/// `&mut self`.
pub fn call_once(krate: &Path, body: TokenStream) -> TokenStream {
    let once = Ident::new("__telemark_once", Span::mixed_site());
    quote! {{
        let #once = #krate::__private::CallOnce;
        (move || {
            #krate::__private::CallOnce::consume(#once);
            #body
        })()
    }}
}

/// The unit type, for functions without a return type.
fn unit() -> Type {
    syn::parse_quote!(())
}

/// Wraps `block` so that `inst` sees every call of the function.
///
/// - sync: the body runs in a closure called once, so `return` and `?` end
///   the closure and the returned value can be classified before it leaves
///   (the closure moves a token out, so it is `FnOnce` and may return borrows
///   of `&mut self`); attributes that need no value only add a guard;
/// - `async fn`: the same with an `async move` block awaited in place;
/// - `impl Future` / boxed futures: the body (which builds the future) runs
///   first, then the future is wrapped so the guard lives from its first poll
///   to its completion or drop. A boxed future is returned as it is when
///   instrumentation is switched off, so that costs no allocation.
pub fn wrap(krate: &Path, sig: &Signature, block: &Block, inst: &Instrumentation) -> TokenStream {
    let site = Span::mixed_site();
    let guard = guard_ident();
    let ret = value_ident();
    let future = Ident::new("__telemark_future", site);
    let statics = &inst.statics;
    let enter = &inst.enter;
    let prelude = &inst.prelude;
    let finish = &inst.finish;
    let statements = &block.stmts;
    let unit = unit();
    let call_once = |body: TokenStream| call_once(krate, body);
    let shape = shape(sig);
    let declared_future = match shape {
        Shape::BoxedFuture(ty) => Some(ty),
        _ => None,
    };
    // The future-returning shapes share one frame: build the future, then
    // return it wrapped; `inner` is the wrapping async block's body.
    let future_frame = |start: TokenStream, inner: TokenStream| {
        let build = call_once(typed_body(block, declared_future));
        let wrapped = quote!(async move { #inner });
        let returned = match shape {
            Shape::BoxedFuture(_) => quote! {
                if !#krate::__private::is_enabled() {
                    return #future;
                }
                ::std::boxed::Box::pin(#wrapped)
            },
            Shape::ImplFuture(true) => quote!(::std::boxed::Box::pin(#wrapped)),
            _ => wrapped,
        };
        quote! {{
            #statics
            #start
            #[allow(clippy::redundant_closure_call)]
            let #future = #build;
            #returned
        }}
    };

    if let Some(span) = &inst.future_span {
        let start = &span.start;
        let classify = &span.classify;
        let finish_span = quote! {
            let (#ret, #guard) = #guard.instrument(#future).await;
            #guard.finish(&#ret, #classify);
            #ret
        };
        match shape {
            Shape::Async(ty) => {
                let body = typed_body(block, Some(ty.unwrap_or(&unit)));
                return quote! {{
                    #statics
                    let #guard = #start;
                    let #future = async move { #body };
                    #finish_span
                }};
            }
            Shape::ImplFuture(_) | Shape::BoxedFuture(_) => {
                return future_frame(quote!(let #guard = #start;), finish_span);
            }
            Shape::Sync(_) | Shape::Diverging => {}
        }
    }

    match (shape, finish) {
        (Shape::Sync(_) | Shape::Async(_), None) | (Shape::Diverging, _) => quote! {{
            #statics
            #prelude
            let #guard = #enter;
            #(#statements)*
        }},
        (Shape::Sync(ty), Some(finish)) => {
            let call = call_once(typed_body(block, Some(ty.unwrap_or(&unit))));
            quote! {{
                #statics
                #prelude
                let #guard = #enter;
                #[allow(clippy::redundant_closure_call)]
                let #ret = #call;
                #finish
                #ret
            }}
        }
        (Shape::Async(ty), Some(finish)) => {
            let body = typed_body(block, Some(ty.unwrap_or(&unit)));
            quote! {{
                #statics
                #prelude
                let #guard = #enter;
                let #ret = async move { #body }.await;
                #finish
                #ret
            }}
        }
        (Shape::ImplFuture(_) | Shape::BoxedFuture(_), finish) => {
            let inner = match finish {
                Some(finish) => quote! {
                    #prelude
                    let #guard = #enter;
                    let #ret = #future.await;
                    #finish
                    #ret
                },
                None => quote! {
                    #prelude
                    let #guard = #enter;
                    #future.await
                },
            };
            future_frame(quote!(), inner)
        }
    }
}
