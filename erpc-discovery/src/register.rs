//! [`Registration`]: a server's listening addresses in etcd under a service name, attached to
//! a lease kept alive in the background and revoked on [`deregister`](Registration::deregister).
//!
//! A process that dies without deregistering stops renewing its lease, and etcd deletes its
//! keys when the TTL runs out. A lease that expired anyway (etcd unreachable longer than the
//! TTL) is granted anew and the keys written again once etcd answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use erpc::Peer;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::etcd::Etcd;
use crate::etcd::api::LeaseKeepAliveRequest;
use crate::instance::{Instance, instance_key};
use crate::{DiscoveryError, EtcdTarget};

/// How a server registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterConfig {
    /// The lease's time to live: a server that dies without deregistering leaves the live set
    /// this long after (whole seconds, at least 1 s; default 10 s). The lease is renewed every
    /// third of it.
    #[serde(with = "erpc::config::duration")]
    pub ttl: Duration,
    /// How long one etcd request may take (default 5 s).
    #[serde(with = "erpc::config::duration")]
    pub etcd_timeout: Duration,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        RegisterConfig {
            ttl: Duration::from_secs(10),
            etcd_timeout: Duration::from_secs(5),
        }
    }
}

/// A server's registration. Dropping it stops renewing the lease (the keys then go after the
/// TTL); [`deregister`](Self::deregister) removes them at once.
#[derive(Debug)]
pub struct Registration {
    inner: Arc<Registered>,
    keep_alive: JoinHandle<()>,
    /// The revoke's outcome, once done: a second `deregister` waits for the first's.
    revoked: tokio::sync::OnceCell<Result<(), String>>,
}

#[derive(Debug)]
struct Registered {
    etcd: Etcd,
    service: String,
    instances: Vec<Instance>,
    ttl_secs: i64,
    /// The lease the keys are attached to; 0 while none is granted.
    lease: AtomicI64,
    closed: AtomicBool,
}

impl Registration {
    /// Registers `instances` (one per listening address) under `target`'s service, and keeps
    /// the registration alive until deregistered or dropped.
    pub async fn register(
        target: &EtcdTarget,
        instances: Vec<Instance>,
        config: RegisterConfig,
    ) -> Result<Registration, DiscoveryError> {
        if instances.is_empty() {
            return Err(DiscoveryError::Invalid(
                "nothing to register: no listening address".into(),
            ));
        }
        let ttl_secs = i64::try_from(config.ttl.as_secs()).unwrap_or(i64::MAX);
        if ttl_secs < 1 {
            return Err(DiscoveryError::Invalid(format!(
                "a registration's TTL is whole seconds, at least 1 s (got {:?})",
                config.ttl
            )));
        }
        let etcd = Etcd::connect(&target.endpoints, config.etcd_timeout).await?;
        let inner = Arc::new(Registered {
            etcd,
            service: target.service.clone(),
            instances,
            ttl_secs,
            lease: AtomicI64::new(0),
            closed: AtomicBool::new(false),
        });
        inner.register().await?;
        let keep_alive = tokio::spawn(keep_alive(inner.clone()));
        Ok(Registration {
            inner,
            keep_alive,
            revoked: tokio::sync::OnceCell::new(),
        })
    }

    /// The lease the keys are attached to now (0 while it is being granted anew).
    pub fn lease(&self) -> i64 {
        self.inner.lease.load(Ordering::Acquire)
    }

    /// The etcd keys written, one per instance (under the current lease).
    pub fn keys(&self) -> Vec<String> {
        let lease = self.lease();
        (0..self.inner.instances.len())
            .map(|index| instance_key(&self.inner.service, lease, index))
            .collect()
    }

    /// Stops renewing and revokes the lease: the keys are gone from etcd when this returns
    /// `Ok`, and watching clients drop the instances. Called again (or concurrently), it
    /// waits for the first revoke and reports its outcome.
    pub async fn deregister(&self) -> Result<(), DiscoveryError> {
        let revoked = self
            .revoked
            .get_or_init(|| async {
                self.inner.closed.store(true, Ordering::Release);
                self.keep_alive.abort();
                // Cleared only once revoked: a revoke cut short (its task dropped) is redone by
                // the next call.
                let lease = self.inner.lease.load(Ordering::Acquire);
                if lease != 0 {
                    self.inner.etcd.revoke(lease).await.map_err(|e| e.to_string())?;
                    self.inner.lease.store(0, Ordering::Release);
                }
                Ok(())
            })
            .await;
        revoked.clone().map_err(DiscoveryError::Etcd)
    }

    /// The graceful end of a registered server: deregisters first, so that clients stop
    /// sending new calls, then closes `peer` (which lets running handlers answer). A failed
    /// deregistration is logged; the keys then go when the TTL runs out.
    pub async fn close_peer(&self, peer: &Peer) {
        if let Err(e) = self.deregister().await {
            tracing::warn!("{e}; the registration ends when its TTL runs out");
        }
        peer.close().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

impl Registered {
    /// Grants a lease and writes every key under it.
    async fn register(&self) -> Result<(), DiscoveryError> {
        let lease = self.etcd.grant(self.ttl_secs).await?;
        for (index, instance) in self.instances.iter().enumerate() {
            let key = instance_key(&self.service, lease, index);
            if let Err(e) = self.etcd.put(key.as_bytes(), &instance.to_value(), lease).await {
                // Keys already written go with the lease.
                let _ = self.etcd.revoke(lease).await;
                return Err(e);
            }
        }
        self.lease.store(lease, Ordering::Release);
        tracing::info!(service = %self.service, lease = format_args!("{lease:x}"), "registered in etcd");
        Ok(())
    }
}

/// Renews the lease every third of its TTL; reopens the stream when it breaks, and registers
/// anew when the lease is gone.
async fn keep_alive(registered: Arc<Registered>) {
    let every = Duration::from_secs(registered.ttl_secs as u64) / 3;
    let mut backoff = Backoff::default();
    while !registered.closed.load(Ordering::Acquire) {
        let lease = registered.lease.load(Ordering::Acquire);
        if lease == 0 {
            match registered.register().await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    tracing::warn!("cannot register again: {e}");
                    backoff.wait().await;
                }
            }
            continue;
        }
        let requests = futures_util::stream::unfold(tokio::time::interval(every), move |mut tick| async move {
            tick.tick().await;
            Some((LeaseKeepAliveRequest { id: lease }, tick))
        });
        let why = match registered.etcd.keep_alive(requests).await {
            Ok(mut responses) => loop {
                match responses.message().await {
                    Ok(Some(renewed)) if renewed.ttl > 0 => backoff.reset(),
                    Ok(Some(_)) => {
                        // Expired while etcd was out of reach: the keys are gone with it.
                        let _ = registered
                            .lease
                            .compare_exchange(lease, 0, Ordering::AcqRel, Ordering::Acquire);
                        break "the lease expired".to_string();
                    }
                    Ok(None) => break "etcd ended the keep-alive stream".to_string(),
                    Err(status) => break format!("the keep-alive stream broke: {}", status.message()),
                }
            },
            Err(e) => e.to_string(),
        };
        if registered.closed.load(Ordering::Acquire) {
            return;
        }
        tracing::warn!(service = %registered.service, "{why}; renewing again");
        backoff.wait().await;
    }
}

/// Waits between attempts against an unreachable etcd: 100 ms, doubling up to 5 s.
#[derive(Default)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn reset(&mut self) {
        self.next = Duration::ZERO;
    }

    pub(crate) async fn wait(&mut self) {
        self.next = (self.next * 2).clamp(Self::FIRST, Self::MAX);
        tokio::time::sleep(self.next).await;
    }
}
