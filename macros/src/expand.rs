//! The pipeline every attribute shares: parse arguments, check the item,
//! then wrap each function it covers.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Error, ImplItem, Item, Path, Result, Signature, Type};

use crate::shape::{wrap, Instrumentation};

/// The naming facts of one instrumented function.
pub struct FunctionSite<'a> {
    /// `function` label: `name` or `Type::name`.
    pub function: String,
    /// The function name's span (for `line!()` and errors).
    pub name_span: Span,
    /// The telemark crate path.
    pub krate: &'a Path,
    /// The function's plainly named parameters.
    pub arguments: Vec<proc_macro2::Ident>,
}

impl FunctionSite<'_> {
    /// A `SiteInfo { .. }` expression for this function.
    pub fn info(&self, metric: &str, labels: &[(String, String)]) -> TokenStream {
        let krate = self.krate;
        let function = &self.function;
        let line = quote_spanned!(self.name_span=> ::core::line!());
        let keys = labels.iter().map(|(key, _)| key);
        let values = labels.iter().map(|(_, value)| value);
        quote! {
            #krate::__private::SiteInfo {
                function: #function,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: #line,
                metric: #metric,
                labels: &[#((#keys, #values)),*],
            }
        }
    }
}

/// One attribute: its parsed arguments and what it adds to a function.
pub trait Attribute: Sized {
    /// The attribute's name, for messages.
    const NAME: &'static str;
    /// Whether it changes what the function does (then the
    /// `disable-instrumentation` feature keeps it, and it applies to single
    /// functions, not whole impl blocks).
    const CHANGES_BEHAVIOUR: bool = false;
    /// Parses and validates the arguments.
    fn parse(args: TokenStream) -> Result<Self>;
    /// The telemark crate path (`::telemark` unless `crate = ...`).
    fn krate(&self) -> &Path;
    /// The type an enclosing annotated impl block passed down, if any.
    fn impl_type(&self) -> Option<&str>;
    /// Checks the function's signature against the arguments.
    fn check(&self, _sig: &Signature) -> Result<()> {
        Ok(())
    }
    /// Statics, guard and finishing statement for one function.
    fn instrument(&self, site: &FunctionSite) -> Instrumentation;
    /// The whole new body, for attributes that wrap it their own way.
    fn wrap(
        &self,
        _site: &FunctionSite,
        _sig: &Signature,
        _block: &syn::Block,
    ) -> Option<TokenStream> {
        None
    }
    /// Whether it must see the returned value (then a synchronous body runs
    /// in a closure, which `#[track_caller]` cannot see through).
    fn needs_value(&self) -> bool;
}

/// Runs an attribute; on error, emits the error and the untouched item so
/// that the user sees one message, not a cascade.
pub fn attribute<A: Attribute>(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand::<A>(args, item.clone()) {
        Ok(expanded) => expanded,
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(item);
            out
        }
    }
}

fn expand<A: Attribute>(args: TokenStream, item: TokenStream) -> Result<TokenStream> {
    let attribute = A::parse(args.clone())?;
    let item: Item = syn::parse2(item)?;
    match item {
        Item::Fn(mut function) => {
            check_signature::<A>(&function.sig)?;
            check_track_caller(&attribute, &function.attrs, &function.sig)?;
            attribute.check(&function.sig)?;
            if cfg!(feature = "disable-instrumentation") && !A::CHANGES_BEHAVIOUR {
                return Ok(function.into_token_stream());
            }
            if !A::CHANGES_BEHAVIOUR
                && defer_to_breaker::<A>(&mut function.attrs, &attribute, &args)
            {
                return Ok(function.into_token_stream());
            }
            let name = match attribute.impl_type() {
                Some(type_name) => format!("{type_name}::{}", unraw(&function.sig.ident)),
                None => unraw(&function.sig.ident),
            };
            let block = instrument_fn(&attribute, &function.sig, &function.block, name);
            function.block = Box::new(syn::parse2(block)?);
            Ok(function.into_token_stream())
        }
        Item::Impl(implementation) if A::CHANGES_BEHAVIOUR => Err(Error::new(
            implementation.impl_token.span,
            format!(
                "#[{}] applies to functions; put it on each method that needs it",
                A::NAME
            ),
        )),
        Item::Impl(mut implementation) => {
            if cfg!(feature = "disable-instrumentation") {
                return Ok(implementation.into_token_stream());
            }
            let type_name = type_name(&implementation.self_ty);
            for item in &mut implementation.items {
                let ImplItem::Fn(method) = item else { continue };
                // A const fn runs at compile time too: there is nothing to record.
                if method.sig.constness.is_some() {
                    continue;
                }
                check_track_caller(&attribute, &method.attrs, &method.sig)?;
                pass_type_name(&mut method.attrs, &type_name);
                let method_args = with_type_name(&args, &type_name);
                if defer_to_breaker::<A>(&mut method.attrs, &attribute, &method_args) {
                    continue;
                }
                let name = format!("{type_name}::{}", unraw(&method.sig.ident));
                let block = instrument_fn(&attribute, &method.sig, &method.block, name);
                method.block = syn::parse2(block)?;
            }
            Ok(implementation.into_token_stream())
        }
        other => Err(Error::new(
            item_keyword_span(&other),
            format!(
                "#[{}] applies to functions and impl blocks, not to this item",
                A::NAME
            ),
        )),
    }
}

fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    text.strip_prefix("r#").map(str::to_owned).unwrap_or(text)
}

fn instrument_fn<A: Attribute>(
    attribute: &A,
    sig: &Signature,
    block: &syn::Block,
    function: String,
) -> TokenStream {
    let site = FunctionSite {
        function,
        name_span: sig.ident.span(),
        krate: attribute.krate(),
        arguments: crate::traced::argument_names(sig),
    };
    if let Some(wrapped) = attribute.wrap(&site, sig, block) {
        return wrapped;
    }
    let instrumentation = attribute.instrument(&site);
    wrap(attribute.krate(), sig, block, &instrumentation)
}

fn check_signature<A: Attribute>(sig: &Signature) -> Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(Error::new_spanned(
            constness,
            format!(
                "#[{}] cannot instrument a `const fn`: it may run at compile time, \
                 where nothing can be recorded",
                A::NAME
            ),
        ));
    }
    Ok(())
}

/// The telemark attributes this crate defines.
const ATTRIBUTES: &[&str] = &["counted", "timed", "traced", "circuit_breaker"];

/// Tells telemark attributes on a method of an annotated impl block the type
/// they belong to (they expand later and cannot see the impl), so every
/// attribute names the method `Type::method`.
fn pass_type_name(attrs: &mut [syn::Attribute], type_name: &str) {
    for attr in attrs {
        let is_ours = attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| ATTRIBUTES.iter().any(|name| segment.ident == name));
        if !is_ours {
            continue;
        }
        let path = attr.path().clone();
        let existing = match &attr.meta {
            syn::Meta::List(list) => Some(list.tokens.clone()),
            _ => None,
        };
        attr.meta = match existing {
            Some(tokens) if !tokens.is_empty() => {
                syn::parse_quote!(#path(#tokens, __telemark_type = #type_name))
            }
            _ => syn::parse_quote!(#path(__telemark_type = #type_name)),
        };
    }
}

fn is_breaker_attribute(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "circuit_breaker")
}

/// Instrumentation sees the whole protected call, whatever the order the
/// attributes are written in: an attribute written above
/// `#[circuit_breaker]` (which would expand first and so end up inside it)
/// moves itself below it, to expand after it, around it.
fn defer_to_breaker<A: Attribute>(
    attrs: &mut Vec<syn::Attribute>,
    attribute: &A,
    args: &TokenStream,
) -> bool {
    let Some(position) = attrs.iter().position(is_breaker_attribute) else {
        return false;
    };
    let krate = attribute.krate();
    let name = Ident::new(A::NAME, Span::call_site());
    attrs.insert(position + 1, syn::parse_quote!(#[#krate::#name(#args)]));
    true
}

/// `args` with the enclosing impl block's type added.
fn with_type_name(args: &TokenStream, type_name: &str) -> TokenStream {
    if args.is_empty() {
        quote!(__telemark_type = #type_name)
    } else {
        quote!(#args, __telemark_type = #type_name)
    }
}

/// `#[track_caller]` survives only where the body is not moved into a closure.
fn check_track_caller<A: Attribute>(
    attribute: &A,
    attrs: &[syn::Attribute],
    sig: &Signature,
) -> Result<()> {
    let synchronous = sig.asyncness.is_none();
    if !attribute.needs_value() || !synchronous {
        return Ok(());
    }
    match attrs
        .iter()
        .find(|attr| attr.path().is_ident("track_caller"))
    {
        Some(track_caller) => Err(Error::new_spanned(
            track_caller,
            format!(
                "#[{}] needs the returned value, which hides the caller from \
                 #[track_caller]; remove one of them",
                A::NAME
            ),
        )),
        None => Ok(()),
    }
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
