//! Listening: the accept loop and the start of server sessions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Shared;
use crate::config::Network;
use crate::error::Error;
use crate::net::{Conn, Listener};
use crate::proto::Proto;
use crate::session::{PreSession, Session, Side, Storage};
use crate::status::Status;

/// Binds, runs PostListen, and spawns the accept loop; returns the bound address.
pub(super) async fn start(
    shared: &Arc<Shared>,
    network: Network,
    addr: &str,
    proto: Arc<dyn Proto>,
) -> Result<String, Error> {
    if *shared.stop_listening.borrow() {
        return Err(Error::Invalid(
            "the peer is closed; build a new one to listen again".into(),
        ));
    }
    let listener = Listener::bind(network, addr)
        .await
        .map_err(|e| Error::io(format!("listen on {network:?} {addr}"), e))?;
    let bound = listener.local_addr();
    for plugin in shared.plugins.iter() {
        if let Err(status) = plugin.post_listen(&bound) {
            listener.cleanup();
            return Err(super::hook_error(plugin, "post_listen", status));
        }
    }
    tracing::info!(network = ?network, addr = %bound, proto = proto.name(), "listen and serve");
    let task = tokio::spawn(accept_loop(
        shared.clone(),
        listener,
        proto,
        shared.stop_listening.subscribe(),
    ));
    shared.listeners.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    Ok(bound)
}

async fn accept_loop(shared: Arc<Shared>, listener: Listener, proto: Arc<dyn Proto>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept(&shared.settings.socket) => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok(conn) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(accept_conn(shared.clone(), conn, proto.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    listener.cleanup();
}

/// TLS handshake, then [`serve_conn`].
async fn accept_conn(shared: Arc<Shared>, conn: Conn, proto: Arc<dyn Proto>) {
    let remote = conn.remote_addr.clone();
    let conn = match &shared.tls_server {
        None => conn,
        Some(acceptor) => {
            let (io, local_addr, remote_addr) = conn.into_parts();
            let limit = shared.settings.handshake_timeout().unwrap_or(Duration::from_secs(10));
            match tokio::time::timeout(limit, acceptor.accept(io)).await {
                Ok(Ok(io)) => Conn::new(io, local_addr, remote_addr),
                Ok(Err(e)) => return tracing::debug!(remote, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(remote, "TLS handshake timed out"),
            }
        }
    };
    if let Err(status) = serve_conn(shared, conn, proto).await {
        tracing::debug!(remote, %status, "connection refused by post_accept");
    }
}

/// PostAccept, then the session.
pub(super) async fn serve_conn(shared: Arc<Shared>, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Status> {
    let settings = &shared.settings;
    let remote = conn.remote_addr.clone();
    let mut pre = PreSession::new(
        conn,
        proto,
        remote.clone(),
        Arc::default(),
        Storage::default(),
        settings.max_message_size,
        settings.default_codec,
        settings.handshake_timeout(),
    );
    for plugin in shared.plugins.iter() {
        plugin.post_accept(&mut pre).await?;
    }
    let session = Session::start(shared.clone(), pre, Side::Server, None);
    shared.hub.insert(session.clone());
    tracing::debug!(session = %session.id(), "accept ok");
    Ok(session)
}
