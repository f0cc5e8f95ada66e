//! WebSocket (RFC 6455, through tokio-tungstenite): the upgrade on both ends and the message
//! transport over it — one eRPC frame per binary WebSocket message.
//!
//! The upgrade runs over the connection as it is after TLS (so `wss` is TLS configured on a
//! `ws` peer), within the peer's handshake timeout. As Go's websocket mixer does it:
//! the server answers on one endpoint path (`/` matches every path; any
//! other matches exactly, trailing slashes dropped), echoes a single offered
//! `Sec-WebSocket-Protocol`, and does not check `Origin`; the client sends `Host` (the remote
//! address), `Origin` (`ws://` or `wss://`, this end's address and the path, lower-cased) and
//! version 13, with the path's query string kept in the request line. A failed upgrade is
//! `105 upgrade to websocket failed` on the dialing side.
//!
//! Receiving accepts binary and text messages (a browser may send either); fragmented
//! messages are reassembled (Go parses each fragment alone); pings are answered; a close
//! frame ends the connection. A message over the size limit, an unmasked client frame or a
//! malformed frame is an error that closes only its connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::AsyncWrite;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Conn, MessageRecv, Messages, Stream, buffers};

type Ws = WebSocketStream<Box<dyn Stream>>;

/// The message the dialing side reports when the upgrade fails (Go's status 105 message).
pub(crate) const UPGRADE_FAILED: &str = "upgrade to websocket failed";

/// Room tungstenite reads into (allocated per connection): small, since a session's messages
/// are copied into the session's own read buffer anyway.
const READ_BUFFER: usize = 8 * 1024;

/// The endpoint path a server answers on: `rootPath` without its query and trailing slashes,
/// rooted at `/` (Go: `path.Join("/", rootPath)`).
pub(crate) fn endpoint(root: &str) -> String {
    let path = root.split('?').next().unwrap_or_default().trim_end_matches('/');
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The path and query a client requests: `rootPath` as given, rooted at `/`.
fn request_target(root: &str) -> String {
    if root.starts_with('/') {
        root.to_string()
    } else {
        format!("/{root}")
    }
}

fn config(max_message_size: usize) -> WebSocketConfig {
    // 0 turns the eRPC limit off; the WebSocket limits follow it.
    let limit = (max_message_size > 0).then_some(max_message_size);
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = READ_BUFFER;
    config.max_message_size = limit;
    config.max_frame_size = limit;
    config
}

/// The server's side of the upgrade over `conn` (after TLS).
pub(crate) async fn accept(conn: Conn, root: &str, max_message_size: usize) -> Result<Conn, String> {
    let chain = conn.peer_certificate_chain();
    let endpoint = endpoint(root);
    let (io, local_addr, remote_addr) = conn.into_parts();
    // The error type is tungstenite's, as its callback requires.
    #[allow(clippy::result_large_err)]
    let check = move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let path = request.uri().path();
        if endpoint != "/" && path.trim_end_matches('/') != endpoint {
            let mut refusal = ErrorResponse::new(Some(format!("no websocket endpoint at {path}")));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        // Echo an offered sub-protocol (the first, if several): a browser that offers one
        // fails the upgrade unless it is echoed.
        if let Some(offered) = request.headers().get("sec-websocket-protocol")
            && let Some(first) = offered.to_str().ok().and_then(|s| s.split(',').next())
            && let Ok(value) = HeaderValue::from_str(first.trim())
        {
            response.headers_mut().insert("sec-websocket-protocol", value);
        }
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(config(max_message_size)))
        .await
        .map_err(|e| format!("{UPGRADE_FAILED}: {e}"))?;
    let mut conn = Conn::messages(WsConn { ws }, local_addr, remote_addr);
    conn.set_peer_certificates(chain);
    Ok(conn)
}

/// The client's side of the upgrade over `conn` (after TLS), as Go's mixer sends it.
pub(crate) async fn connect(conn: Conn, root: &str, tls: bool, max_message_size: usize) -> Result<Conn, String> {
    let chain = conn.peer_certificate_chain();
    let scheme = if tls { "wss" } else { "ws" };
    let target = request_target(root);
    let failed = |e: &dyn std::fmt::Display| format!("{UPGRADE_FAILED}: {e}");
    let mut request = format!("{scheme}://{}{target}", conn.remote_addr)
        .into_client_request()
        .map_err(|e| failed(&e))?;
    let origin = format!("{scheme}://{}{target}", conn.local_addr).to_lowercase();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(&origin).map_err(|e| failed(&e))?);
    let (io, local_addr, remote_addr) = conn.into_parts();
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config(max_message_size)))
        .await
        .map_err(|e| failed(&e))?;
    let mut conn = Conn::messages(WsConn { ws }, local_addr, remote_addr);
    conn.set_peer_certificates(chain);
    Ok(conn)
}

/// An upgraded connection: one eRPC frame per WebSocket message.
struct WsConn {
    ws: Ws,
}

impl MessageRecv for WsConn {
    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        poll_recv(&mut self.ws, cx, buf)
    }
}

impl AsyncWrite for WsConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, frame: &[u8]) -> Poll<io::Result<usize>> {
        poll_send(&mut self.ws, cx, frame)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.ws.poll_flush_unpin(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close(&mut self.ws, cx)
    }
}

impl Messages for WsConn {
    fn split(self: Box<Self>) -> (Box<dyn MessageRecv>, super::WriteHalf) {
        let (sink, stream) = self.ws.split();
        (Box::new(WsRecv(stream)), Box::new(WsSend(sink)))
    }
}

struct WsRecv(SplitStream<Ws>);

impl MessageRecv for WsRecv {
    fn poll_recv(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        poll_recv(&mut self.0, cx, buf)
    }
}

struct WsSend(SplitSink<Ws, Message>);

impl AsyncWrite for WsSend {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, frame: &[u8]) -> Poll<io::Result<usize>> {
        poll_send(&mut self.0, cx, frame)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_flush_unpin(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close(&mut self.0, cx)
    }
}

/// Appends the next data message's payload to `buf`; control messages are handled here.
fn poll_recv<S>(stream: &mut S, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let payload: Bytes = match ready!(Pin::new(&mut *stream).poll_next(cx)) {
            None | Some(Ok(Message::Close(_))) | Some(Err(WsError::ConnectionClosed)) => return Poll::Ready(Ok(0)),
            Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Text(text))) => text.into(),
            // Pings are answered by tungstenite itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
        };
        if payload.is_empty() {
            continue;
        }
        if buf.capacity() == 0 {
            *buf = buffers::take(payload.len());
        }
        buf.extend_from_slice(&payload);
        return Poll::Ready(Ok(payload.len()));
    }
}

/// Sends `frame` as one binary message: all of it, or (`Pending`) none.
fn poll_send<S>(sink: &mut S, cx: &mut Context<'_>, frame: &[u8]) -> Poll<io::Result<usize>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    ready!(sink.poll_ready_unpin(cx)).map_err(io_error)?;
    sink.start_send_unpin(Message::Binary(Bytes::copy_from_slice(frame)))
        .map_err(io_error)?;
    Poll::Ready(Ok(frame.len()))
}

/// Sends a close frame; a connection already closed is closed.
fn poll_close<S>(sink: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    match ready!(sink.poll_close_unpin(cx)) {
        Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
        Err(e) => Poll::Ready(Err(io_error(e))),
    }
}

fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_as_go_joins_them() {
        assert_eq!(endpoint("/"), "/");
        assert_eq!(endpoint(""), "/");
        assert_eq!(endpoint("ws/"), "/ws");
        assert_eq!(endpoint("/token?access_token=abc"), "/token");
        assert_eq!(request_target("token?access_token=abc"), "/token?access_token=abc");
    }
}
