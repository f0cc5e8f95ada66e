//! # erpc
//!
//! An efficient, extensible and easy-to-use RPC framework, wire-compatible with Go eRPC v7.
//!
//! One [`Peer`] is server and client at once. Either end of a [`Session`] can CALL (request,
//! reply) or PUSH (one-way) to the other:
//!
//! ```no_run
//! use erpc::router::CallCtx;
//! use erpc::{Peer, Router, Status};
//!
//! async fn add(ctx: CallCtx, nums: Vec<i64>) -> Result<i64, Status> {
//!     Ok(nums.iter().sum())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut router = Router::new();
//! router.group("math").call("add", add);
//! let server = Peer::builder().router(router).build()?;
//! let addr = server.listen_on("127.0.0.1:0").await?;
//!
//! let client = Peer::builder().build()?;
//! let session = client.dial(&addr).await?;
//! let sum: i64 = session.call("/math/add", &[1, 2, 3]).meta("author", "andeya").await?;
//! assert_eq!(sum, 6);
//! # Ok(()) }
//! ```
//!
//! The crate follows eRPC's layers, bottom up:
//!
//! | module | owns |
//! |---|---|
//! | [`status`] | [`Status`], the result of every call and the error type at the RPC surface |
//! | [`meta`] | [`Meta`], ordered repeatable metadata |
//! | [`message`] | [`Message`], the one message model every protocol frames |
//! | [`codec`] | body codecs (json, protobuf, plain, form, xml, thrift) and the [`Body`] traits |
//! | [`xfer`] | transfer filters (gzip, md5) and the [`XferPipe`] |
//! | [`proto`] | wire protocols: rawproto (default), jsonproto, pbproto, thriftproto, httproto |
//! | [`net`] | transports (tcp, tcp4, tcp6, unix) and TLS |
//! | [`session`] | [`Session`]: calls, pushes, replies, redial |
//! | [`router`] | [`Router`]: handlers, name mappers, groups, fallbacks |
//! | [`plugin`] | [`Plugin`](plugin::Plugin): the 24 hooks, and ready plugins |
//! | [`peer`] | [`Peer`]: listening, dialing, sessions, graceful shutdown |
//! | [`config`] | [`PeerConfig`], loadable from TOML and YAML |
#![warn(missing_docs)]

pub mod codec;
pub mod config;
mod error;
mod escape;
mod log;
pub mod message;
pub mod meta;
pub mod net;
pub mod peer;
pub mod plugin;
pub mod proto;
pub mod router;
pub mod session;
pub mod status;
pub mod xfer;

pub use codec::{Body, CodecId, DecodeBody, EncodeBody, Proto, Raw};
pub use config::PeerConfig;
pub use erpc_macros::service;
pub use error::Error;
pub use message::{Message, MessageType};
pub use meta::Meta;
pub use peer::{Peer, PeerBuilder};
pub use router::{CallCtx, PushCtx, Router};
pub use session::Session;
pub use status::Status;
pub use xfer::XferPipe;
