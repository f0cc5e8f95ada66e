//! [`ServiceClient`]: calls to a service by name. It holds the live set of the service's
//! instances — what etcd says is registered, less the instances that just failed — with a
//! session [`Pool`] per instance, and balances each call over them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use erpc::codec::EncodeBody;
use erpc::{CodecId, Peer, Pool, PoolConfig, Status};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::balance::{self, Balance, Candidate};
use crate::call::{ServiceCall, ServicePush};
use crate::etcd::Etcd;
use crate::instance::Instance;
use crate::ring::{DEFAULT_VNODES, HashRing};
use crate::{DiscoveryError, EtcdTarget, resolve};

/// How a [`ServiceClient`] balances and retries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// How calls are spread (default: round robin).
    pub balance: Balance,
    /// Most further instances an idempotent call is retried on after a connection failure
    /// (default 2). Calls not marked idempotent are never retried.
    pub max_retries: usize,
    /// An instance dropped for a connection failure is tried again after this long if etcd
    /// still lists it (default 30 s, longer than the usual TTL: a dead server's key is gone
    /// by then). A new registration of it comes back at once.
    #[serde(with = "erpc::config::duration")]
    pub readmit_after: Duration,
    /// Virtual nodes per instance on the consistent-hash ring (default 160).
    pub vnodes: usize,
    /// The session pool of each instance.
    pub pool: PoolConfig,
    /// How long one etcd request may take (default 5 s).
    #[serde(with = "erpc::config::duration")]
    pub etcd_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            balance: Balance::default(),
            max_retries: 2,
            readmit_after: Duration::from_secs(30),
            vnodes: DEFAULT_VNODES,
            pool: PoolConfig::default(),
            etcd_timeout: Duration::from_secs(5),
        }
    }
}

/// One live instance, as [`ServiceClient::live`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveInstance {
    /// Its registration id (the etcd key's last segment).
    pub id: String,
    /// Where it is.
    pub instance: Instance,
}

/// What this client sent to one instance, live or gone ([`ServiceClient::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStats {
    /// Its registration id.
    pub id: String,
    /// Its address.
    pub addr: String,
    /// Calls and pushes it answered (with a reply or an error status of its own).
    pub calls: u64,
    /// Connection failures that dropped it from the live set.
    pub failures: u64,
    /// Whether it is in the live set now.
    pub live: bool,
}

/// A client of one service registered in etcd: calls and pushes, like a [`Pool`]'s, go to
/// one of its live instances. Cheap to clone (a handle); the etcd watch ends with the last.
///
/// ```no_run
/// use erpc::Peer;
/// use erpc_discovery::{ClientConfig, ServiceClient};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let peer = Peer::builder().build()?;
/// let math = ServiceClient::connect(&peer, &"etcd://127.0.0.1:2379/math".parse()?, ClientConfig::default()).await?;
/// let sum: i64 = math.call("/math/add", &[1, 2, 3]).idempotent().await?;
/// assert_eq!(sum, 6);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceClient {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    peer: Peer,
    target: EtcdTarget,
    pub(crate) config: ClientConfig,
    pub(crate) default_codec: CodecId,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) push_timeout: Option<Duration>,
    state: Mutex<State>,
    live: watch::Sender<Arc<LiveSet>>,
    pub(crate) turn: AtomicUsize,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// What etcd lists, by registration id.
    registered: BTreeMap<String, Instance>,
    /// Instances dropped for a connection failure, and until when.
    failed: HashMap<String, Instant>,
    /// Counters of every instance seen, live or gone.
    counters: BTreeMap<String, Arc<Counters>>,
}

#[derive(Default)]
pub(crate) struct Counters {
    addr: String,
    pub(crate) calls: AtomicU64,
    failures: AtomicU64,
}

/// The instances calls may go to now, with their pools, and the ring over them.
#[derive(Default)]
pub(crate) struct LiveSet {
    pub(crate) members: Vec<Arc<Member>>,
    pub(crate) ring: HashRing,
}

/// A live instance and its session pool.
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance: Instance,
    pub(crate) pool: Pool,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) counters: Arc<Counters>,
}

/// Counts a call in flight on a member while it lives.
pub(crate) struct InFlight(pub(crate) Arc<Member>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ServiceClient {
    /// Resolves `target`'s service: reads its instances from etcd (failing if etcd does not
    /// answer), then keeps watching them. Sessions are dialed by `peer`, on its network, so
    /// instances registered with another network are left out. Give `peer` `redial_times: 0`
    /// so that a lost instance fails its calls at once instead of being redialed.
    pub async fn connect(
        peer: &Peer,
        target: &EtcdTarget,
        config: ClientConfig,
    ) -> Result<ServiceClient, DiscoveryError> {
        let etcd = Etcd::connect(&target.endpoints, config.etcd_timeout).await?;
        let peer_config = peer.config();
        let default_codec = erpc::codec::by_name(&peer_config.default_body_codec)
            .map(|c| c.id())
            .unwrap_or(CodecId::JSON);
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let call_timeout = nonzero(peer_config.call_timeout);
        let push_timeout = peer_config.push_timeout.and_then(nonzero).or(call_timeout);
        let inner = Arc::new(ClientInner {
            peer: peer.clone(),
            target: target.clone(),
            config,
            default_codec,
            call_timeout,
            push_timeout,
            state: Mutex::new(State::default()),
            live: watch::Sender::new(Arc::default()),
            // Clients started together (one-shot `erpc call`s) do not all begin with the same
            // instance.
            turn: AtomicUsize::new(first_turn()),
            watcher: Mutex::new(None),
        });
        let revision = resolve::initial(&etcd, &target.service, &inner).await?;
        let watcher = tokio::spawn(resolve::watch(
            etcd,
            target.service.clone(),
            Arc::downgrade(&inner),
            revision,
        ));
        *inner.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        Ok(ServiceClient { inner })
    }

    /// Starts a CALL to one instance: the builder of [`Session::call`](erpc::Session::call),
    /// plus [`idempotent`](ServiceCall::idempotent) and [`hash_key`](ServiceCall::hash_key).
    pub fn call<'a, A: EncodeBody + ?Sized, R>(
        &'a self,
        service_method: &'a str,
        args: &'a A,
    ) -> ServiceCall<'a, A, R> {
        ServiceCall::new(self, service_method, args)
    }

    /// Starts a PUSH to one instance.
    pub fn push<'a, A: EncodeBody + ?Sized>(&'a self, service_method: &'a str, args: &'a A) -> ServicePush<'a, A> {
        ServicePush::new(self, service_method, args)
    }

    /// The service and etcd this client resolves.
    pub fn target(&self) -> &EtcdTarget {
        &self.inner.target
    }

    /// The live instances now, ordered by id.
    pub fn live(&self) -> Vec<LiveInstance> {
        listed(&self.inner.live.borrow())
    }

    /// Waits until the live set satisfies `ready` (checked now and on every change), at most
    /// `timeout`; returns the live set then, or the last one seen as the error.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&[LiveInstance]) -> bool,
    ) -> Result<Vec<LiveInstance>, Vec<LiveInstance>> {
        let mut changes = self.inner.live.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let now = listed(&changes.borrow_and_update());
                if ready(&now) {
                    return now;
                }
                if changes.changed().await.is_err() {
                    return now;
                }
            }
        })
        .await;
        match waited {
            Ok(live) if ready(&live) => Ok(live),
            Ok(live) => Err(live),
            Err(_) => Err(self.live()),
        }
    }

    /// Per instance: calls answered and connection failures, ordered by id.
    pub fn stats(&self) -> Vec<InstanceStats> {
        let live = self.inner.live.borrow().clone();
        let state = self.inner.lock();
        state
            .counters
            .iter()
            .map(|(id, counters)| InstanceStats {
                id: id.clone(),
                addr: counters.addr.clone(),
                calls: counters.calls.load(Ordering::Relaxed),
                failures: counters.failures.load(Ordering::Relaxed),
                live: live.members.iter().any(|m| &m.id == id),
            })
            .collect()
    }

    /// Stops watching etcd and closes every instance's pool (each close lets its calls in
    /// flight finish, up to the peer's shutdown timeout).
    pub async fn close(&self) {
        if let Some(watcher) = self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner()).take() {
            watcher.abort();
        }
        let live = self.inner.live.send_replace(Arc::default());
        futures_util::future::join_all(live.members.iter().map(|m| m.pool.close())).await;
    }
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("target", &self.inner.target.to_string())
            .field("live", &self.live())
            .finish()
    }
}

fn listed(live: &LiveSet) -> Vec<LiveInstance> {
    live.members
        .iter()
        .map(|m| LiveInstance {
            id: m.id.clone(),
            instance: m.instance.clone(),
        })
        .collect()
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            watcher.abort();
        }
    }
}

impl Candidate for (&Arc<Member>, &[String]) {
    fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Relaxed)
    }
    fn tried(&self) -> bool {
        self.1.contains(&self.0.id)
    }
}

impl ClientInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live instance for a call (not among `tried`), counted in flight; or why there is none.
    pub(crate) fn pick(&self, key: Option<u64>, tried: &[String]) -> Result<InFlight, Status> {
        let live = self.live.borrow().clone();
        let candidates: Vec<_> = live.members.iter().map(|m| (m, tried)).collect();
        let Some(index) = balance::pick(self.config.balance, &candidates, &live.ring, key, &self.turn) else {
            let why = if live.members.is_empty() {
                format!(
                    "no live instance of service {:?} in etcd at {}; start one with `erpc serve --register {}`",
                    self.target.service,
                    self.target.endpoints.join(","),
                    self.target
                )
            } else {
                format!(
                    "every live instance of service {:?} failed this call",
                    self.target.service
                )
            };
            return Err(Status::with_cause(
                erpc::status::Code::WRONG_CONN,
                "Wrong Connection",
                why,
            ));
        };
        let member = live.members[index].clone();
        member.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight(member))
    }

    /// Replaces the registered set with what etcd listed.
    pub(crate) fn set_registered(&self, registered: BTreeMap<String, Instance>) {
        let mut state = self.lock();
        state.registered = registered;
        self.publish(&mut state);
    }

    /// Applies watched changes: `Some` is a put, `None` a delete.
    pub(crate) fn apply(&self, changes: Vec<(String, Option<Instance>)>) {
        let mut state = self.lock();
        for (id, instance) in changes {
            match instance {
                Some(instance) => {
                    // A new registration under this id is a fresh chance.
                    state.failed.remove(&id);
                    state.registered.insert(id, instance);
                }
                None => {
                    state.failed.remove(&id);
                    state.registered.remove(&id);
                }
            }
        }
        self.publish(&mut state);
    }

    /// Drops `member` from the live set after a connection failure, until `readmit_after`.
    pub(crate) fn failed(self: &Arc<Self>, member: &Member, status: &Status) {
        let mut state = self.lock();
        if state.failed.contains_key(&member.id) || !state.registered.contains_key(&member.id) {
            return;
        }
        member.counters.failures.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            service = %self.target.service, instance = %member.id, addr = %member.instance.addr, %status,
            "instance dropped after a connection failure"
        );
        let readmit_after = self.config.readmit_after;
        state.failed.insert(member.id.clone(), Instant::now() + readmit_after);
        self.publish(&mut state);
        let client = Arc::downgrade(self);
        tokio::spawn(readmit(client, readmit_after));
    }

    /// Recomputes and publishes the live set; closes the pools of instances that left it.
    fn publish(&self, state: &mut State) {
        let now = Instant::now();
        state.failed.retain(|_, until| *until > now);
        let network = self.peer.config().network;
        let old = self.live.borrow().clone();
        let mut members = Vec::new();
        for (id, instance) in &state.registered {
            if state.failed.contains_key(id) {
                continue;
            }
            if instance.network != network {
                tracing::debug!(instance = %id, "left out: registered on another network than this client dials");
                continue;
            }
            if let Some(kept) = old.members.iter().find(|m| &m.id == id && &m.instance == instance) {
                members.push(kept.clone());
                continue;
            }
            let Some(proto) = erpc::proto::by_name(&instance.proto) else {
                match erpc::proto::missing_feature(&instance.proto) {
                    Some(feature) => tracing::warn!(
                        instance = %id,
                        proto = %instance.proto,
                        "left out: its protocol needs erpc's `{feature}` feature in this build"
                    ),
                    None => tracing::debug!(instance = %id, proto = %instance.proto, "left out: unknown protocol"),
                }
                continue;
            };
            let counters = state
                .counters
                .entry(id.clone())
                .or_insert_with(|| {
                    Arc::new(Counters {
                        addr: instance.addr.clone(),
                        ..Counters::default()
                    })
                })
                .clone();
            members.push(Arc::new(Member {
                id: id.clone(),
                instance: instance.clone(),
                pool: Pool::with_proto(&self.peer, instance.addr.clone(), proto, self.config.pool.clone()),
                in_flight: AtomicUsize::new(0),
                counters,
            }));
        }
        for gone in old
            .members
            .iter()
            .filter(|m| !members.iter().any(|n| Arc::ptr_eq(m, n)))
        {
            let pool = gone.pool.clone();
            tokio::spawn(async move { pool.close().await });
        }
        // The network's config name (stable, unlike its Debug form) and the address.
        let names: Vec<String> = members
            .iter()
            .map(|m| {
                let network = serde_json::to_string(&m.instance.network).unwrap_or_default();
                format!("{network}/{}", m.instance.addr)
            })
            .collect();
        let ring = HashRing::new(&names, self.config.vnodes);
        self.live.send_replace(Arc::new(LiveSet { members, ring }));
    }
}

fn first_turn() -> usize {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.subsec_nanos() as usize ^ std::process::id() as usize
}

/// Puts instances whose failure has aged back in the live set (if etcd still lists them).
async fn readmit(client: Weak<ClientInner>, after: Duration) {
    tokio::time::sleep(after).await;
    if let Some(client) = client.upgrade() {
        let mut state = client.lock();
        client.publish(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_config_reads_what_it_names_and_defaults_the_rest() {
        let config: ClientConfig =
            serde_json::from_str(r#"{"balance":"least-inflight","readmit_after":"5s","pool":{"max_sessions":2}}"#)
                .unwrap();
        assert_eq!(config.balance, Balance::LeastInflight);
        assert_eq!(config.readmit_after, Duration::from_secs(5));
        assert_eq!(config.pool.max_sessions, 2);
        assert_eq!(config.max_retries, ClientConfig::default().max_retries);
        let back: ClientConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }
}
