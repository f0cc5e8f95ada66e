//! Listening: the accept loop and the start of server sessions.
//!
//! An accept loop holds no handle on its peer: it has what accepting needs ([`Accepting`]),
//! whose env refers to the peer's registry weakly, and it stops when the peer closes or is
//! dropped. Each accepted connection is first admitted (the session caps), then gets its
//! handshake — TLS, the WebSocket upgrade (ws, wss) and the PostAccept hooks — within one
//! `handshake_timeout`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Peer;
use super::admission::{Admission, Permit};
use crate::config::Network;
use crate::error::Error;
#[cfg(feature = "quic")]
use crate::net::quic::{self, QuicSettings};
use crate::net::{Conn, Listener};
use crate::plugin::{Plugins, guarded_async};
use crate::proto::Proto;
use crate::session::{Env, PreSession, Seqs, Session, Side, Storage};
use crate::status::Status;

/// What the accept path needs from its peer.
#[derive(Clone)]
pub(super) struct Accepting {
    pub(super) env: Arc<Env>,
    pub(super) plugins: Plugins,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(super) admission: Option<Arc<Admission>>,
}

/// Binds, runs PostListen, and spawns the accept loop; returns the bound address.
pub(super) async fn start(peer: &Peer, network: Network, addr: &str, proto: Arc<dyn Proto>) -> Result<String, Error> {
    let inner = &peer.inner;
    check_transport(network, proto.as_ref(), super::has_tls_server(inner)).map_err(Error::Invalid)?;
    if *inner.stop_listening.borrow() {
        return Err(Error::Invalid(
            "the peer is closed; build a new one to listen again".into(),
        ));
    }
    let settings = &inner.env.settings;
    #[cfg_attr(not(feature = "quic"), allow(unused_mut))]
    let mut accepting = peer.accepting();
    let listener = match network {
        #[cfg(feature = "quic")]
        Network::Quic => {
            let quic = QuicSettings::new(&settings.socket, settings.handshake_timeout, settings.idle_timeout);
            let config = quic::server_config(inner.tls_server.as_ref().map(|tls| tls.config()), &quic)
                .map_err(|e| Error::io(format!("listen on quic {addr}"), e))?;
            let mut listener = quic::QuicListener::bind(addr, config, &quic)
                .await
                .map_err(|e| Error::io(format!("listen on quic {addr}"), e))?;
            // TLS is part of QUIC: the accept path must not run it again over the stream. The
            // peer closes the endpoint after its sessions.
            accepting.tls = None;
            inner
                .quic_endpoints
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(listener.closer());
            Listener::Quic(listener)
        }
        #[cfg(feature = "kcp")]
        kcp if kcp.is_kcp() => {
            let mut listener = crate::net::kcp::listen(network, addr)
                .await
                .map_err(|e| Error::io(format!("listen on {network:?} {addr}"), e))?;
            // The peer ends the socket after its sessions, which run on it.
            inner
                .kcp_sockets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(listener.closer());
            Listener::Kcp(listener)
        }
        _ => Listener::bind(network, addr, settings.listen_backlog, settings.reuse_port)
            .await
            .map_err(|e| Error::io(format!("listen on {network:?} {addr}"), e))?,
    };
    let bound = listener.local_addr();
    // Offered to a reboot while it accepts (a failure only costs that).
    #[cfg(unix)]
    let handover = listener.handover_socket().and_then(|(kind, fd)| {
        crate::net::handover::register(kind, &bound, fd)
            .map_err(
                |e| tracing::warn!(addr = %bound, error = %e, "this listener cannot be handed to a rebooted process"),
            )
            .ok()
    });
    #[cfg(not(unix))]
    let handover = ();
    for plugin in inner.plugins.iter() {
        if let Err(status) = plugin.post_listen(&bound) {
            listener.cleanup();
            return Err(super::hook_error(plugin, "post_listen", status));
        }
    }
    tracing::info!(network = ?network, addr = %bound, proto = proto.name(), "listen and serve");
    let task = tokio::spawn(accept_loop(
        accepting,
        listener,
        network,
        proto,
        inner.stop_listening.subscribe(),
        handover,
    ));
    inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    Ok(bound)
}

async fn accept_loop(
    accepting: Accepting,
    listener: Listener,
    network: Network,
    proto: Arc<dyn Proto>,
    mut stop: watch::Receiver<bool>,
    handover: Handover,
) {
    let mut backoff = Duration::from_millis(5);
    let socket = accepting.env.settings.socket;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept(&socket) => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok(conn) => {
                backoff = Duration::from_millis(5);
                let permit = match &accepting.admission {
                    None => None,
                    Some(admission) => match admission.admit(&conn.remote_addr) {
                        Ok(permit) => Some(permit),
                        Err(refusal) => {
                            tracing::debug!(remote = %conn.remote_addr, %refusal, "connection refused");
                            continue; // dropping it closes it
                        }
                    },
                };
                tokio::spawn(accept_conn(accepting.clone(), conn, network, proto.clone(), permit));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|stop| *stop) => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    // Out of the hand-over before the socket file goes.
    #[cfg_attr(not(unix), allow(dropping_copy_types))] // `()` there: nothing is handed over
    drop(handover);
    listener.cleanup();
}

/// A TCP or unix listener's place in the hand-over to a rebooted process.
#[cfg(unix)]
type Handover = Option<crate::net::handover::Registration>;
#[cfg(not(unix))]
type Handover = ();

/// Whether `proto` can run on `network` (with or without TLS configured).
pub(super) fn check_transport(network: Network, proto: &dyn Proto, tls: bool) -> Result<(), String> {
    if !network.is_available() {
        return Err(format!("network {network:?} {}", network.unavailable_reason()));
    }
    if network == Network::Wss && !tls {
        return Err("network wss needs a TLS configuration (or use ws)".into());
    }
    if proto.needs_messages() && !network.carries_messages() {
        return Err(format!(
            "protocol {} runs only on a message transport (ws, wss, unixpacket), not on {network:?}",
            proto.name()
        ));
    }
    Ok(())
}

/// The handshake (TLS, the WebSocket upgrade, then [`serve_conn`]) within the handshake
/// timeout; with a session cap, the permit is held until the session closes.
async fn accept_conn(
    accepting: Accepting,
    conn: Conn,
    network: Network,
    proto: Arc<dyn Proto>,
    permit: Option<Permit>,
) {
    let remote = conn.remote_addr.clone();
    #[cfg(not(feature = "websocket"))]
    let _ = network; // only WebSocket has an upgrade to run
    let handshake = async {
        #[cfg(feature = "tls")]
        let conn = match &accepting.tls {
            None => conn,
            Some(acceptor) => {
                let (io, local_addr, remote_addr) = conn.into_parts();
                match acceptor.accept(io).await {
                    Ok(io) => {
                        let chain = crate::net::tls::chain_of(io.get_ref().1.peer_certificates());
                        let mut conn = Conn::new(io, local_addr, remote_addr);
                        conn.set_peer_certificates(chain);
                        conn
                    }
                    Err(e) => return Err(Status::conn_closed(format!("TLS handshake failed: {e}"))),
                }
            }
        };
        #[cfg(feature = "websocket")]
        let conn = if network.is_websocket() {
            let settings = &accepting.env.settings;
            crate::net::ws::accept(conn, &settings.ws_path, settings.limits.max_message_size)
                .await
                .map_err(Status::conn_closed)?
        } else {
            conn
        };
        serve_conn(&accepting, conn, proto).await
    };
    let served = match accepting.env.settings.handshake_timeout {
        None => handshake.await,
        Some(limit) => tokio::time::timeout(limit, handshake).await.unwrap_or_else(|_| {
            Err(Status::conn_closed(format!(
                "the handshake did not finish within {limit:?} (handshake_timeout)"
            )))
        }),
    };
    match served {
        Ok(session) => {
            if let Some(permit) = permit {
                session.closed().await;
                drop(permit);
            }
        }
        Err(status) => tracing::debug!(remote, %status, "connection not served"),
    }
}

/// PostAccept, then the session, registered with the peer (if the peer is still there).
pub(super) async fn serve_conn(accepting: &Accepting, conn: Conn, proto: Arc<dyn Proto>) -> Result<Session, Status> {
    let settings = &accepting.env.settings;
    let remote = conn.remote_addr.clone();
    let mut pre = PreSession::new(
        conn,
        proto,
        remote,
        Seqs::new(),
        Storage::default(),
        settings.limits,
        settings.default_codec,
        settings.handshake_timeout,
    );
    for plugin in accepting.plugins.iter() {
        guarded_async(plugin.as_ref(), "post_accept", || plugin.post_accept(&mut pre)).await?;
    }
    if accepting.env.registry.strong_count() == 0 {
        return Err(Status::conn_closed("the peer was dropped"));
    }
    let session = Session::start(accepting.env.clone(), pre, Side::Server, None);
    tracing::debug!(session = %session.id(), "accept ok");
    Ok(session)
}
