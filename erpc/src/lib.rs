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
//! # Guide
//!
//! **Handlers** are plain async functions (or closures) taking an optional context and one
//! argument, returning `Result<T, Status>`. Arguments and results are ordinary Rust types:
//! any serde type travels with json, form, plain, xml or thrift; prost messages travel in
//! [`Protobuf`]; raw bytes in [`Raw`]. The codec is chosen per message by its codec id, so the
//! same handler answers a JSON caller and a plain-text caller. A type's methods become
//! handlers with [`#[erpc::service]`](macro@service).
//!
//! **Routes** follow Go eRPC's naming: `router.group("math").call("add", add)` registers
//! `/math/add` with the default HTTP-style mapper and `math.add` with the RPC-style one
//! ([`router::NameMapper`]); [`Router::call_at`] takes a route verbatim.
//!
//! **Calls** are builders: add meta, choose the codec, ask for a reply codec, add transfer
//! filters, set a timeout, then `.await` (the decoded body), `.reply().await` (body, meta and
//! codec) or `.start()` (send now, await later). [`Session::push`] sends one-way messages.
//! Every call ends with its reply or a [`Status`] saying why not: `408` when its deadline
//! passes (the call timeout, 30 s by default, covering the wait to be sent as well as the
//! reply), `102` when the connection is lost, `404` for unknown routes, `400` for undecodable
//! bodies, `500` when a handler or a plugin hook panics.
//!
//! **Sessions** are symmetric: the server can call and push its clients through
//! [`CallCtx::session`](router::CallCtx::session), [`Peer::sessions`] or [`Peer::broadcast`]
//! (all sessions at once; one that stopped reading delays nobody).
//! Each session has an id (settable: a second session with the same id replaces the first),
//! key/value [`storage`](Session::storage), a [`closed`](Session::closed) notification, and,
//! on the client side, automatic redial per `redial_times` and `redial_interval`.
//!
//! **Plugins** ([`plugin::Plugin`]) run at 24 hook points, in Go's order; attach them to the
//! peer ([`PeerBuilder::plugin`]) or to a route group ([`router::Group::plugin`]).
//! [`PreSession`](session::PreSession) lets `post_dial`/`post_accept` hooks exchange messages
//! before a session starts (authentication handshakes).
//!
//! **Configuration** is a plain struct, [`PeerConfig`], with Go's fields and defaults,
//! loadable from TOML and YAML files.
//!
//! **Shutdown** is graceful: [`Peer::close`] stops accepting, lets running handlers answer,
//! waits for replies still due (bounded by `shutdown_timeout`) and closes;
//! [`Peer::shutdown_on_signal`] does so on SIGINT/SIGTERM. A closing server session first
//! asks its client to move ([`session::goaway`]), so clients with redial on lose no call.
//! On SIGUSR2 it reboots instead: a new process takes over the listeners
//! ([`reboot`](mod@reboot), Unix), which also serves sockets from systemd socket activation.
//!
//! # Layers
//!
//! The crate follows eRPC's layers, bottom up:
//!
//! | module | owns |
//! |---|---|
//! | [`status`] | [`Status`] and its [`Code`], the result of every call and the error type at the RPC surface |
//! | [`meta`] | [`Meta`], ordered repeatable metadata |
//! | [`codec`] | body codecs (json, protobuf, plain, form, xml, thrift) and the [`Body`] traits |
//! | [`xfer`] | transfer filters (gzip, md5) and the [`XferPipe`] |
//! | [`message`] | [`Message`], the one message model every protocol frames |
//! | [`proto`] | wire protocols: rawproto (default), jsonproto, pbproto, thriftproto, httproto |
//! | [`net`] | transports (tcp, tcp4, tcp6, unix, KCP, QUIC, ws, unixpacket), TLS, the buffer pool |
//! | [`config`] | [`PeerConfig`], loadable from TOML and YAML |
//! | [`session`] | [`Session`]: calls, pushes, replies, redial; its link, reader, writer and outbox |
//! | [`plugin`] | [`Plugin`](plugin::Plugin): the 24 hooks, and ready plugins |
//! | [`router`] | [`Router`]: handlers, name mappers, groups, fallbacks, the dispatcher |
//! | [`peer`] | [`Peer`]: listening, dialing, the session registry, graceful shutdown |
//! | [`reboot`](mod@reboot) | zero-downtime restarts and inherited sockets (Unix) |
//!
//! Each module uses only the ones above it in this table; a session reaches its peer through
//! narrow interfaces (a dispatcher, hooks, weak references to the registry and the dialer).
//! `docs/ARCHITECTURE.md` in the repository walks through who owns what and the path of a
//! call.
#![warn(missing_docs)]

// `#[erpc::service]` names this crate `::erpc`, in here too.
extern crate self as erpc;

pub mod codec;
pub mod config;
mod error;
mod escape;
pub mod heartbeat;
#[doc(hidden)]
pub mod macro_support;
pub mod message;
pub mod meta;
pub mod net;
pub mod observe;
pub mod peer;
pub mod plugin;
pub mod proto;
pub mod proxy;
#[cfg(unix)]
pub mod reboot;
pub mod router;
pub mod session;
pub mod status;
pub mod xfer;

pub use codec::{Body, CodecId, DecodeBody, EncodeBody, Protobuf, Raw};
pub use config::PeerConfig;
pub use erpc_macros::service;
pub use error::Error;
pub use message::{Message, MessageType};
pub use meta::Meta;
pub use peer::{Extension, Peer, PeerBuilder, Pool, PoolConfig};
pub use router::{CallCtx, PushCtx, Router};
pub use session::Session;
pub use status::{Code, Status};
pub use xfer::XferPipe;
