//! [`PreSession`]: a connection before its session starts, for handshakes in the PostDial and
//! PostAccept hooks (authentication, say).

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bytes::BytesMut;

use super::{Session, Storage};
use crate::codec::CodecId;
use crate::message::Message;
use crate::net::Conn;
use crate::proto::{DecodeState, Limits, Proto};
use crate::status::{Code, Status};

/// A connection in its handshake phase: no reader or writer task runs yet and no plugin sees
/// what is exchanged, so hooks can send and receive messages one at a time.
pub struct PreSession {
    conn: Conn,
    proto: Arc<dyn Proto>,
    buf: BytesMut,
    decode_state: DecodeState,
    seqs: Seqs,
    storage: Storage,
    id: String,
    limits: Limits,
    default_codec: CodecId,
    timeout: Option<Duration>,
}

impl PreSession {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conn: Conn,
        proto: Arc<dyn Proto>,
        id: String,
        seqs: Seqs,
        storage: Storage,
        limits: Limits,
        default_codec: CodecId,
        timeout: Option<Duration>,
    ) -> Self {
        PreSession {
            conn,
            proto,
            buf: BytesMut::new(),
            decode_state: DecodeState::default(),
            seqs,
            storage,
            id,
            limits,
            default_codec,
            timeout,
        }
    }

    /// The id the session will have.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Chooses the id the session will have (a user name after authentication, say).
    pub fn set_id(&mut self, id: impl Into<String>) {
        self.id = id.into();
    }

    /// This end's address.
    pub fn local_addr(&self) -> &str {
        &self.conn.local_addr
    }

    /// The other end's address.
    pub fn remote_addr(&self) -> &str {
        &self.conn.remote_addr
    }

    /// The certificate chain the other end presented in the TLS handshake, its own first
    /// (`None` without TLS or without a client certificate): a PostAccept hook can admit or
    /// refuse a client by its certificate.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The storage the session will have.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The peer's default body codec.
    pub fn default_codec(&self) -> CodecId {
        self.default_codec
    }

    /// The next seq of the session's counter (the first message a session sends has seq 1).
    pub fn next_seq(&self) -> i32 {
        match &self.seqs {
            Seqs::New(counter) => super::next_seq(counter),
            Seqs::Of(session) => session.next_seq(),
        }
    }

    /// Writes one message as it is (set its seq with [`next_seq`](Self::next_seq)).
    pub async fn send(&mut self, msg: &Message) -> Result<(), Status> {
        let mut frame = BytesMut::new();
        self.proto
            .encode(msg, &mut frame, self.limits.max_message_size)
            .map_err(|e| Status::from_code(Code::WRITE_FAILED, e.to_string()))?;
        let write = self.conn.write_frame(&frame);
        let result = match self.timeout {
            Some(t) => tokio::time::timeout(t, write)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            None => write.await,
        };
        result.map_err(|e| Status::from_code(Code::WRITE_FAILED, e.to_string()))
    }

    /// Reads one message (any type).
    pub async fn receive(&mut self) -> Result<Message, Status> {
        let read = async {
            loop {
                if let Some(msg) = self
                    .proto
                    .decode_with_state(&mut self.buf, &self.limits, &mut self.decode_state)
                    .map_err(|e| Status::bad_message(e.to_string()))?
                {
                    return Ok(msg);
                }
                match self.conn.read_more(&mut self.buf).await {
                    Ok(0) => return Err(Status::new(Code::CONN_CLOSED, "Connection Closed")),
                    Ok(_) => {}
                    Err(e) => return Err(Status::conn_closed(e.to_string())),
                }
            }
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .unwrap_or_else(|_| Err(Status::conn_closed(format!("no message within {t:?}")))),
            None => read.await,
        }
    }

    #[allow(clippy::type_complexity)]
    /// The parts a session starts from; the `i32` is the last seq the handshake took (a new
    /// session counts on from it).
    pub(crate) fn into_parts(self) -> (Conn, Arc<dyn Proto>, BytesMut, i32, Storage, String) {
        let last_seq = match &self.seqs {
            Seqs::New(counter) => counter.load(Ordering::Relaxed),
            Seqs::Of(_) => 0, // the session keeps its own counter
        };
        (self.conn, self.proto, self.buf, last_seq, self.storage, self.id)
    }
}

/// Where a handshake takes its seqs from.
pub(crate) enum Seqs {
    /// A new connection: a counter of its own, which the session counts on from.
    New(AtomicI32),
    /// A redial: the session's own counter, from which calls waiting for the new link already
    /// took their seqs.
    Of(Session),
}

impl Seqs {
    /// A new connection's: the first seq is 1.
    pub(crate) fn new() -> Seqs {
        Seqs::New(AtomicI32::new(0))
    }
}

impl std::fmt::Debug for PreSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreSession")
            .field("id", &self.id)
            .field("remote_addr", &self.remote_addr())
            .finish()
    }
}
