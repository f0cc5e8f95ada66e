//! `etcd://HOST:PORT/SERVICE` on the command line: `serve --register` registers the server's
//! address (and deregisters on SIGINT/SIGTERM and on close), `call` and `bench --target` send
//! through a balancing [`ServiceClient`].

use std::sync::Arc;
use std::time::Duration;

use erpc::config::Network;
use erpc::{Peer, PeerConfig};
use erpc_discovery::{Balance, ClientConfig, EtcdTarget, Instance, RegisterConfig, Registration, ServiceClient};

use crate::CliError;

/// Parses an `etcd://` target, saying what to write when it is wrong.
pub fn target(text: &str) -> Result<EtcdTarget, CliError> {
    text.parse()
        .map_err(|e: erpc_discovery::DiscoveryError| CliError::Usage(e.to_string()))
}

/// Registers the server listening on `addr` under `target`, with a lease of `ttl`.
pub async fn register(
    target: &str,
    ttl: Duration,
    network: Network,
    addr: &str,
    proto: &str,
) -> Result<Arc<Registration>, CliError> {
    let target = self::target(target)?;
    let instance = Instance {
        network,
        addr: addr.to_string(),
        proto: proto.to_string(),
    };
    let config = RegisterConfig {
        ttl,
        ..RegisterConfig::default()
    };
    let registration = Registration::register(&target, vec![instance], config)
        .await
        .map_err(|e| CliError::Failed(format!("cannot register in {target}: {e}")))?;
    let registration = Arc::new(registration);
    deregister_on_signal(registration.clone());
    Ok(registration)
}

/// Revokes the lease as soon as SIGINT or SIGTERM arrives, alongside the peer's own graceful
/// close: clients stop picking this server while it finishes what it is doing.
fn deregister_on_signal(registration: Arc<Registration>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed now, before the address is announced, like the peer's own handlers.
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            deregister(&registration).await;
        });
    }
    #[cfg(not(unix))]
    drop(registration);
}

/// Revokes the lease, or says that the key stays until its TTL.
pub async fn deregister(registration: &Registration) {
    if let Err(e) = registration.deregister().await {
        eprintln!("warning: {e}; the registration ends when its TTL runs out");
    }
}

/// A client of `target`'s service for `peer` (whose config should not redial: a lost instance
/// is dropped and calls go elsewhere), with at most `pool_size` sessions per instance (`None`:
/// the pool's default).
pub async fn connect(
    peer: &Peer,
    target: &str,
    balance: Balance,
    pool_size: Option<usize>,
) -> Result<ServiceClient, CliError> {
    let target = self::target(target)?;
    let mut config = ClientConfig {
        balance,
        ..ClientConfig::default()
    };
    if let Some(size) = pool_size {
        config.pool.max_sessions = size;
    }
    ServiceClient::connect(peer, &target, config)
        .await
        .map_err(|e| CliError::Failed(format!("cannot resolve {target}: {e}")))
}

/// A client config's redials turned off: an instance that goes away fails at once and is
/// dropped, rather than holding calls while it is redialed.
pub fn without_redial(config: PeerConfig) -> PeerConfig {
    PeerConfig {
        redial_times: 0,
        ..config
    }
}

/// `--balance`'s parser.
pub fn parse_balance(name: &str) -> Result<Balance, String> {
    name.parse()
}
