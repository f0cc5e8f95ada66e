//! `#[erpc::service]` on an impl block: implements `Service` for the type, one route per
//! async method.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl, Type};

use crate::method::{Handler, take_options};

pub fn expand(erpc: &TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[erpc::service] does not support generic types",
        ));
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[erpc::service] goes on an inherent impl block or on the service trait itself, not on a trait impl",
        ));
    }
    let self_ty = item.self_ty.clone();
    let type_name = match &*self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new(self_ty.span(), "#[erpc::service] needs a named type"))?;

    let mut registrations = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let options = take_options(&mut method.attrs)?;
        if options.skip || method.sig.asyncness.is_none() {
            continue;
        }
        let handler = Handler::read(&method.sig, options)?;
        let ident = &handler.ident;
        registrations.push(handler.registration(erpc, quote!(#self_ty::#ident)));
    }
    if registrations.is_empty() {
        return Err(syn::Error::new(
            self_ty.span(),
            "#[erpc::service] found no handler: write `async fn name(&self, [ctx: CallCtx,] arg: T) -> Result<R, Status>`",
        ));
    }
    Ok(quote! {
        #item
        impl #erpc::router::Service for #self_ty {
            fn register(self: ::std::sync::Arc<Self>, group: &mut #erpc::router::Group<'_>) {
                let this = self;
                let mut group = group.group(#type_name);
                #(#registrations)*
            }
        }
    })
}
