//! Argument binding and validation (Go's `binder` plugin), the Rust way: a
//! handler that takes [`Valid<T>`] gets its argument checked with [garde] after decoding, and
//! meta binds into a typed struct with [`CallCtx::bind_meta`](super::CallCtx::bind_meta).
//! Either failure is Go's binder status: `400 Invalid Parameter`, with
//! `{"handler": "<route>", "param": "<name>", "reason": "<text>"}` as the cause; the handler
//! does not run.
//!
//! `Valid` and `bind_meta` need erpc's `binder` feature (garde, and a form parser for meta);
//! the status is core, as any [`DecodeBody`] may refuse a value with [`CodecError::Invalid`].
//!
//! ```
//! # #[cfg(feature = "binder")] {
//! use erpc::router::{CallCtx, Router, Valid};
//! use erpc::Status;
//!
//! #[derive(serde::Deserialize, garde::Validate)]
//! struct Signup {
//!     #[garde(length(min = 1, max = 32))]
//!     name: String,
//!     #[garde(range(min = 13))]
//!     age: u32,
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Client {
//!     #[serde(rename = "X-Client-Version")]
//!     version: u32,
//! }
//!
//! async fn signup(ctx: CallCtx, Valid(form): Valid<Signup>) -> Result<String, Status> {
//!     let client: Client = ctx.bind_meta()?;
//!     Ok(format!("welcome {} (client v{})", form.name, client.version))
//! }
//!
//! let mut router = Router::new();
//! router.call("signup", signup);
//! # }
//! ```
//!
//! [garde]: https://docs.rs/garde

#[cfg(feature = "binder")]
use bytes::Bytes;

#[cfg(feature = "binder")]
use crate::codec::CodecId;
#[cfg(any(doc, feature = "binder"))]
use crate::codec::{CodecError, DecodeBody};
use crate::status::{Code, Status};

/// A handler argument that is validated after decoding: `T`'s garde rules must hold, or the
/// call is answered with Go's binder status.
#[cfg(feature = "binder")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valid<T>(pub T);

#[cfg(feature = "binder")]
impl<T> DecodeBody for Valid<T>
where
    T: DecodeBody + garde::Validate,
    T::Context: Default,
{
    fn decode_body(codec: CodecId, body: Bytes) -> Result<Self, CodecError> {
        let value = T::decode_body(codec, body)?;
        value.validate().map_err(|report| {
            let (param, reason) = report
                .iter()
                .next()
                .map(|(path, error)| (path.to_string(), error.message().to_string()))
                .unwrap_or_default();
            CodecError::Invalid { param, reason }
        })?;
        Ok(Valid(value))
    }
}

/// Go's binder status for `param` of the handler at `route`.
pub(crate) fn invalid_parameter(route: &str, param: &str, reason: &str) -> Status {
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    Status::with_cause(
        Code::BAD_MESSAGE,
        "Invalid Parameter",
        format!(
            "{{\"handler\": {}, \"param\": {}, \"reason\": {}}}",
            quote(route),
            quote(param),
            quote(reason)
        ),
    )
}

/// What [`CallCtx::bind_meta`](super::CallCtx::bind_meta) can bind meta into: any serde type
/// (fields read like a query string), and [`Valid`] of one.
#[cfg(feature = "binder")]
pub trait BindMeta: Sized {
    /// Binds `meta`, or says which parameter is wrong and why.
    fn bind(meta: &crate::meta::Meta) -> Result<Self, (String, String)>;
}

#[cfg(feature = "binder")]
impl<T: serde::de::DeserializeOwned> BindMeta for T {
    fn bind(meta: &crate::meta::Meta) -> Result<Self, (String, String)> {
        let query = meta.encode_query();
        serde_html_form::from_bytes(&query).map_err(|e| {
            let reason = e.to_string();
            // serde names a missing field between backquotes: `name`.
            let param = reason.split('`').nth(1).unwrap_or_default().to_string();
            (param, reason)
        })
    }
}

#[cfg(feature = "binder")]
impl<T> BindMeta for Valid<T>
where
    T: serde::de::DeserializeOwned + garde::Validate,
    T::Context: Default,
{
    fn bind(meta: &crate::meta::Meta) -> Result<Self, (String, String)> {
        let value = T::bind(meta)?;
        value.validate().map_err(|report| {
            report
                .iter()
                .next()
                .map(|(path, error)| (path.to_string(), error.message().to_string()))
                .unwrap_or_default()
        })?;
        Ok(Valid(value))
    }
}
