//! # erpc
//!
//! An efficient, extensible and easy-to-use RPC framework, wire-compatible with Go eRPC v7.
//!
//! The crate follows eRPC's layers, bottom up:
//!
//! | module | owns |
//! |---|---|
//! | [`status`] | [`Status`], the result of every call and the error type at the RPC surface |
//! | [`meta`] | [`Meta`], ordered repeatable metadata |
//! | [`message`] | [`Message`], the one message model every protocol frames |
//! | [`codec`] | body codecs (json, protobuf, plain, form, xml, thrift) and the [`Body`] trait |
//! | [`xfer`] | transfer filters (gzip, md5) and the [`XferPipe`] |
//! | [`proto`] | wire protocols: rawproto (default), jsonproto, pbproto, thriftproto, httproto |
#![warn(missing_docs)]

pub mod codec;
mod escape;
pub mod message;
pub mod meta;
pub mod proto;
pub mod status;
pub mod xfer;

pub use codec::{Body, CodecId, Proto, Raw};
pub use message::{Message, MessageType};
pub use meta::Meta;
pub use status::Status;
pub use xfer::XferPipe;
