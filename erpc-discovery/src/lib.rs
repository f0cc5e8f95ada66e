//! # erpc-discovery
//!
//! Service discovery and load balancing for [`erpc`] on etcd v3.
//!
//! - **Registration** ([`Registration`]): a server writes each of its listening addresses
//!   under `erpc/services/SERVICE/` in etcd, attached to a lease it keeps alive (TTL 10 s by
//!   default). [`Registration::deregister`] revokes the lease on a graceful shutdown; a server
//!   killed outright disappears when the TTL runs out.
//! - **Resolution and balancing** ([`ServiceClient`]): a client reads the service's
//!   instances and watches them, keeps a session [`Pool`](erpc::Pool) per instance, and
//!   sends each call to one of them — round robin, least in flight, or by consistent hashing
//!   of a key the caller gives ([`Balance`]). An instance whose connection fails is dropped
//!   at once; calls marked idempotent are retried on another (the rule: [`call`] module).
//!
//! ```no_run
//! use erpc::config::Network;
//! use erpc::{Peer, Router, Status};
//! use erpc_discovery::{ClientConfig, EtcdTarget, Instance, RegisterConfig, Registration, ServiceClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let target: EtcdTarget = "etcd://127.0.0.1:2379/math".parse()?;
//!
//! // A server registers its address.
//! let mut router = Router::new();
//! router.group("math").call("add", |nums: Vec<i64>| async move { Ok::<_, Status>(nums.iter().sum::<i64>()) });
//! let server = Peer::builder().router(router).build()?;
//! let addr = server.listen_on("127.0.0.1:0").await?;
//! let instance = Instance { network: Network::Tcp, addr, proto: "raw".into() };
//! let registration = Registration::register(&target, vec![instance], RegisterConfig::default()).await?;
//!
//! // A client calls the service by name.
//! let peer = Peer::builder().build()?;
//! let math = ServiceClient::connect(&peer, &target, ClientConfig::default()).await?;
//! let sum: i64 = math.call("/math/add", &[1, 2, 3]).idempotent().await?;
//! assert_eq!(sum, 6);
//!
//! registration.close_peer(&server).await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod balance;
pub mod call;
mod client;
mod etcd;
mod instance;
mod register;
mod resolve;
mod ring;
mod target;

pub use balance::Balance;
pub use call::{ServiceCall, ServicePending, ServicePush, is_connection_failure};
pub use client::{ClientConfig, InstanceStats, LiveInstance, ServiceClient};
pub use etcd::Etcd;
pub use instance::{Instance, KEY_PREFIX, service_prefix};
pub use register::{RegisterConfig, Registration};
pub use ring::{DEFAULT_VNODES, HashRing, hash_key};
pub use target::{EtcdTarget, SCHEME};

/// Why discovery could not start or etcd refused a request.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// etcd could not be reached or failed a request.
    #[error("{0}")]
    Etcd(String),
    /// Bad input: a target, a TTL, an empty registration.
    #[error("{0}")]
    Invalid(String),
}
