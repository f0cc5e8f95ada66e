//! The path to the erpc crate in the caller's code, so generated code never depends on what
//! the caller imported or how it named the dependency.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, LitStr, Path};

/// Reads `crate = "path"` from the attribute, or finds erpc in the caller's `Cargo.toml`.
pub fn from_args(args: TokenStream) -> syn::Result<TokenStream> {
    let mut explicit = None;
    if !args.is_empty() {
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                explicit = Some(path.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("#[erpc::service] takes only `crate = \"path::to::erpc\"`"))
            }
        });
        syn::parse::Parser::parse2(parser, args)?;
    }
    Ok(match explicit {
        Some(path) => quote!(#path),
        None => found(),
    })
}

fn found() -> TokenStream {
    match crate_name("erpc") {
        // Inside erpc itself (its tests, doctests and examples see the library as `erpc`;
        // the library declares `extern crate self as erpc`).
        Ok(FoundCrate::Itself) | Err(_) => quote!(::erpc),
        Ok(FoundCrate::Name(name)) => {
            let ident = Ident::new(&name, Span::call_site());
            quote!(::#ident)
        }
    }
}
