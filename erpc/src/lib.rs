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
//!
//! # Features
//!
//! With `default-features = false` the crate is its core: rawproto and jsonproto, the json and
//! plain codecs, the tcp, tcp4 and tcp6 networks (and unix, unixpacket on Unix), JSON and INI
//! config files, the router, sessions, the pool, the proxy, heartbeats and the plugins that
//! need nothing more (auth, overloader, ignorecase). Features add the rest:
//!
//! | feature | adds | default |
//! |---|---|---|
//! | `tls` | TLS on every stream transport (rustls, ring): `PeerBuilder::tls_server`, `tls_client`, `net::tls` | yes |
//! | `quic` | the quic network (quinn); implies `tls` | no |
//! | `self-signed` | generated self-signed certificates (rcgen): `net::tls::self_signed_*`, and QUIC listeners without a TLS config. For development and demos only | no |
//! | `kcp` | the kcp, udp, udp4 and udp6 networks, with kcp-go's FEC | no |
//! | `websocket` | the ws and wss networks and Go's ws-json and ws-pb protocols; implies `protobuf` | no |
//! | `http` | httproto (`proto::HttpProto`) | no |
//! | `thrift` | the thrift codec, thriftproto and the thrift-struct protocol | no |
//! | `xml` | the xml codec | no |
//! | `form` | the form codec (`application/x-www-form-urlencoded`) | no |
//! | `protobuf` | the protobuf codec, `Protobuf<T>` bodies, pbproto | yes |
//! | `gzip` | the gzip transfer filter (`'g'`) | yes |
//! | `md5` | the md5 transfer filter (`'m'`) | yes |
//! | `yaml` | YAML config files, `PeerConfig::from_yaml_str` | yes |
//! | `toml` | TOML config files, `PeerConfig::from_toml_str` | yes |
//! | `signal` | `Peer::shutdown_on_signal` (SIGINT, SIGTERM; SIGUSR2 reboots on Unix) | yes |
//! | `metrics` | metrics through the `metrics` facade ([`observe`]) | yes |
//! | `secure` | Go's secure plugin (`plugin::Secure`, AES); implies `protobuf` | no |
//! | `binder` | Go's binder plugin: `router::Valid` (garde) and `CallCtx::bind_meta` | no |
//!
//! What is chosen by name at run time says which feature it needs when this build lacks it:
//! a codec id or name ("unsupported codec id: 120 (the xml codec needs erpc's `xml`
//! feature)"), a transfer filter, a protocol name ([`proto::missing_feature`]), a network (the
//! [`Network`](net::Network) variants exist in every build, so config files still parse;
//! listening or dialing fails naming the feature), a config file format.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

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

#[cfg(feature = "protobuf")]
#[cfg_attr(docsrs, doc(cfg(feature = "protobuf")))]
pub use codec::Protobuf;
pub use codec::{Body, CodecId, DecodeBody, EncodeBody, Raw};
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
