//! httproto (id `'h'`, name `http`): messages as HTTP/1.1 requests and responses,
//! so plain HTTP clients can call CALL handlers:
//!
//! ```text
//! curl -X POST http://127.0.0.1:9090/math/add -H 'Content-Type: application/json' -d '[1,2,3]'
//! ```
//!
//! CALL and AUTH_CALL are `POST <service method>` requests, REPLY and AUTH_REPLY are `200 OK`
//! responses, or `299 Business Error` with the status as JSON. Seq and type travel in `X-Seq`
//! and `X-Mtype` (a plain client sends neither: its requests are CALLs with seq 0), meta as
//! headers, the codec as `Content-Type`, gzip (the only filter HTTP can carry) as
//! `X-Content-Encoding`.
//!
//! This module owns the HTTP framing: the encoder, the decoder (heads parsed by httparse, the
//! body framed by one `Content-Length`), and what makes a connection HTTP/1.1 rather than a
//! message stream: replies in request order ([`Proto::replies_in_order`]), the last request of
//! a connection ([`Proto::is_last_call`]: `Connection: close`, HTTP/1.0), and the error
//! response to a refused request ([`Proto::refusal`]: 400 malformed, 413 body too large, 431
//! head too large, 501 `Transfer-Encoding`, each with `Connection: close`). The session acts on
//! those.
//!
//! The decoder's work is linear in the bytes that arrive: on a connection it keeps a
//! [`DecodeState`], so the search for a head's blank line resumes where the last read left it
//! (a head dribbled one byte per read is searched once in all, not once per read), the head is
//! parsed only once it is complete, and while the body arrives nothing is looked at until all
//! of it is there.
//!
//! Differences from Go:
//! - header names are matched case-insensitively (Go matches `Content-Type` exactly, so
//!   `content-type: application/json` from curl would be codec 0 and the connection closed);
//! - repeated meta keys are all kept (Go keeps the last);
//! - thrift-codec bodies are labelled `application/x-thrift` (Go labels them `text/plain`
//!   and reads them back as plain text);
//! - the protocol's own request headers (`Accept-Encoding`, `User-Agent`, `Content-Encoding`)
//!   are not copied into meta (Go copies them), and meta named like one of the protocol's
//!   headers (`X-Seq`, `Content-Type`, `Transfer-Encoding`…) is not sent (Go sends both and the
//!   frame is ambiguous);
//! - heads are parsed strictly (httparse): a folded header line, a space before a colon, a bare
//!   CR, or a version other than HTTP/1.0 and 1.1 is refused (Go splits lines at `\n` and
//!   headers at the first `:`); a status line is judged by its code alone (200 or 299);
//! - a body is framed by exactly one `Content-Length` of decimal digits: a duplicate or a list
//!   is refused, and so is any `Transfer-Encoding` (Go ignores it, stores it as meta and reads a
//!   chunked body as the next request: request smuggling); a duplicate `X-Seq`, `X-Mtype` or
//!   `Content-Type` is refused (Go keeps the last);
//! - `X-Mtype` must fit the frame: 1 or 4 in a request, 2 or 5 in a response (Go takes any, so
//!   a request could pose as a reply to a call in flight);
//! - HTTP/1.0 and `Connection: close` end the connection after the reply, pipelined replies
//!   leave in request order, and a refused request is answered with an HTTP error before the
//!   connection closes (Go ignores the first two, writes replies as handlers finish, and closes
//!   without a word);
//! - the head is limited to 64 KiB and 100 header lines, the query and the headers copied to
//!   meta to `max_meta_pairs` and `max_meta_bytes`, and `Content-Length` is checked against the
//!   size limit before the body is read (Go has no limits here);
//! - blank lines before a request are skipped (RFC 9112 §2.2; Go fails on them);
//! - chunked bodies, `Expect: 100-continue` (curl then waits a second before sending the body)
//!   and HTTP/2 are not supported (as in Go).

use std::fmt::Write as _;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{DecodeState, Limits, Proto, ProtoError};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::status::Status;
use crate::xfer::{self, XferError};

const NAME: &str = "http";
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
const USER_AGENT: &str = "erpc-httproto/1.1";
/// Headers the protocol writes itself; meta under these names is not sent.
const RESERVED: &[&str] = &[
    "Accept-Encoding",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "Transfer-Encoding",
    "User-Agent",
    "X-Content-Encoding",
    "X-Mtype",
    "X-Seq",
];

/// httproto.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpProto;

/// Codec ↔ `Content-Type` (the part before `;`).
const CONTENT_TYPES: &[(CodecId, &str)] = &[
    (CodecId::PROTOBUF, "application/x-protobuf"),
    (CodecId::JSON, "application/json"),
    (CodecId::FORM, "application/x-www-form-urlencoded"),
    (CodecId::PLAIN, "text/plain"),
    (CodecId::XML, "text/xml"),
    // Not in Go's table (Go sends thrift bodies as text/plain and cannot read them back).
    (CodecId::THRIFT, "application/x-thrift"),
];

fn content_type(codec: CodecId) -> Option<&'static str> {
    CONTENT_TYPES.iter().find(|(id, _)| *id == codec).map(|(_, ct)| *ct)
}

fn codec_of(content_type: &str) -> CodecId {
    let media = content_type.split(';').next().unwrap_or("").trim();
    CONTENT_TYPES
        .iter()
        .find(|(_, ct)| ct.eq_ignore_ascii_case(media))
        .map_or(CodecId::NONE, |(id, _)| *id)
}

fn unsupported(reason: String) -> ProtoError {
    ProtoError::Unsupported { proto: NAME, reason }
}

fn malformed(reason: impl Into<String>) -> ProtoError {
    ProtoError::Malformed {
        proto: NAME,
        reason: reason.into(),
    }
}

impl Proto for HttpProto {
    fn id(&self) -> u8 {
        b'h'
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let request = match msg.mtype {
            MessageType::Call | MessageType::AuthCall => true,
            MessageType::Reply | MessageType::AuthReply => false,
            MessageType::Push => {
                return Err(unsupported(
                    "unsupport message type: 3(PUSH); HTTP has no one-way messages".into(),
                ));
            }
        };
        let mut gzip_name = None;
        for &id in msg.xfer_pipe.ids() {
            match xfer::by_id(id).map(|f| f.name()) {
                Some("gzip") => gzip_name = Some("gzip"),
                Some(name) => {
                    return Err(unsupported(format!(
                        "unsupport xfer filter: {name}; HTTP carries only gzip"
                    )));
                }
                None => return Err(unsupported(format!("unsupport xfer filter: {id}"))),
            }
        }
        let failed = !request && !msg.status.is_ok();
        let mut body = if failed {
            Bytes::from(msg.status.to_json())
        } else {
            msg.body.clone()
        };
        if gzip_name.is_some() {
            // Only gzip filters are allowed here, so packing the whole pipe is gzip.
            body = msg.xfer_pipe.pack(body)?;
        }

        let mut headers: Vec<(String, String)> = Vec::with_capacity(8 + msg.meta.len());
        let mut head_line = String::new();
        if request {
            let (host, target) = split_url(&msg.service_method);
            head_line = format!("POST {target} HTTP/1.1\r\n");
            headers.push(("Accept-Encoding".into(), "gzip".into()));
            headers.push(("User-Agent".into(), USER_AGENT.into()));
            if let Some(host) = host {
                headers.push(("Host".into(), host.into()));
            }
        } else if failed {
            head_line.push_str("HTTP/1.1 299 Business Error\r\n");
        } else {
            head_line.push_str("HTTP/1.1 200 OK\r\n");
        }
        let ct = match (failed, content_type(msg.body_codec)) {
            (true, _) => "application/json".to_string(),
            (false, Some(ct)) => format!("{ct};charset=utf-8"),
            (false, None) if request => "text/plain;charset=utf-8".to_string(),
            (false, None) => "text/plain".to_string(),
        };
        headers.push(("Content-Type".into(), ct));
        headers.push(("Content-Length".into(), body.len().to_string()));
        headers.push(("X-Mtype".into(), msg.mtype.as_u8().to_string()));
        headers.push(("X-Seq".into(), msg.seq.to_string()));
        if let Some(name) = gzip_name {
            headers.push(("Content-Encoding".into(), "gzip".into()));
            headers.push(("X-Content-Encoding".into(), name.into()));
        }
        for (key, value) in msg.meta.iter() {
            // Keys that are not HTTP tokens cannot be header names (Go drops them too), and
            // the protocol's own headers cannot be meta.
            if let Some(key) = canonical_key(key).filter(|k| !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(k))) {
                let value = String::from_utf8_lossy(value).replace(['\r', '\n'], " ");
                headers.push((key, value.trim_matches(' ').to_string()));
            }
        }
        headers.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut head = head_line;
        for (k, v) in &headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        let size = head.len() + body.len();
        if size > max_size {
            return Err(ProtoError::TooLarge {
                proto: NAME,
                size,
                limit: max_size,
            });
        }
        dst.reserve(size);
        dst.put_slice(head.as_bytes());
        dst.put_slice(&body);
        Ok(())
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        self.decode_with_state(src, limits, &mut DecodeState::default())
    }

    /// Resumes the search for the end of a head where the last call stopped, and once the
    /// head is read, waits for the rest of the frame without reading the head again.
    fn decode_with_state(
        &self,
        src: &mut BytesMut,
        limits: &Limits,
        state: &mut DecodeState,
    ) -> Result<Option<Message>, ProtoError> {
        if state.frame_len.is_some_and(|len| src.len() < len) {
            return Ok(None);
        }
        skip_blank_lines(src);
        // A response starts with its version; anything else is read as a request (and is
        // answered when refused: a server has no way to answer a bad response).
        let request = !src.starts_with(b"HTTP/");
        decode_frame(src, limits, request, state).map_err(|error| {
            if request {
                ProtoError::Refused {
                    status: refusal_status(&error),
                    error: Box::new(error),
                }
            } else {
                error
            }
        })
    }

    /// HTTP/1.1 answers requests in the order they came (pipelining).
    fn replies_in_order(&self) -> bool {
        true
    }

    /// A request that said `Connection: close`, or an HTTP/1.0 request without
    /// `Connection: keep-alive`: the decoder leaves exactly `Connection: close` in its meta.
    fn is_last_call(&self, call: &Message) -> bool {
        matches!(call.mtype, MessageType::Call | MessageType::AuthCall)
            && call
                .meta
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(b"connection") && has_token(v, "close"))
    }

    /// The HTTP error response to a refused request: 400 when it is malformed, 413 when its
    /// body is too large, 431 when its head is, 501 for `Transfer-Encoding`; always with
    /// `Connection: close` and a text body saying what was wrong. Nothing for a bad response.
    fn refusal(&self, error: &ProtoError) -> Option<Bytes> {
        let ProtoError::Refused { status, error } = error else {
            return None;
        };
        let body = format!("{error}\n");
        let reason = match status {
            413 => "Content Too Large",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            _ => "Bad Request",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\nContent-Type: text/plain;charset=utf-8\r\n\r\n",
            body.len()
        );
        out.push_str(&body);
        Some(Bytes::from(out))
    }
}

/// The HTTP status a request refused for `error` is answered with.
fn refusal_status(error: &ProtoError) -> u16 {
    match error {
        ProtoError::TooLarge { .. } | ProtoError::Xfer(XferError::TooLarge { .. }) => 413,
        ProtoError::HeadTooLarge { .. } | ProtoError::MetaTooLarge { .. } => 431,
        ProtoError::NotImplemented { .. } => 501,
        _ => 400,
    }
}

/// Drops blank lines before a message (RFC 9112 §2.2: some clients send a CRLF after a body).
/// A lone `\r` at the end stays until its `\n` comes.
fn skip_blank_lines(src: &mut BytesMut) {
    let mut at = 0;
    loop {
        match &src[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => break,
        }
    }
    src.advance(at);
}

/// Decodes one message from `src` (a request if `request`, else a response), or waits.
fn decode_frame(
    src: &mut BytesMut,
    limits: &Limits,
    request: bool,
    state: &mut DecodeState,
) -> Result<Option<Message>, ProtoError> {
    let max_size = limits.max_message_size;
    if src.is_empty() {
        *state = DecodeState::default();
        return Ok(None);
    }
    let Some(head_len) = head_end(src, MAX_HEAD.min(max_size), &mut state.scanned)? else {
        return Ok(None);
    };
    let head = &src[..head_len];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (start, headers) = if request {
        parse_request(head, &mut slots)?
    } else {
        parse_response(head, &mut slots)?
    };
    let mut parsed = read_head(start, headers, limits)?;
    let size = head_len.saturating_add(parsed.body_len);
    if size > max_size {
        return Err(ProtoError::TooLarge {
            proto: NAME,
            size,
            limit: max_size,
        });
    }
    if src.len() < size {
        state.frame_len = Some(size);
        return Ok(None);
    }
    *state = DecodeState::default();
    let frame = src.split_to(size).freeze();
    let mut body = frame.slice(head_len..);
    let msg = &mut parsed.msg;
    if !body.is_empty() && !msg.xfer_pipe.is_empty() {
        body = msg.xfer_pipe.unpack(body, max_size)?;
    }
    if parsed.failed {
        msg.status = Status::from_json(&body).map_err(|e| malformed(format!("bad status JSON in a 299 reply: {e}")))?;
        msg.body_codec = CodecId::NONE;
    } else {
        msg.body = body;
    }
    Ok(Some(parsed.msg))
}

/// Where the head ends (just past its blank line) if it is all in `src`; an error once `limit`
/// bytes hold no end. The search starts where the last one (`scanned`) stopped, less the two
/// bytes a terminator may straddle, so a head that arrives a byte at a time is still searched
/// once in all (a memchr scan from line end to line end), and nothing is parsed before the
/// head is complete.
fn head_end(src: &[u8], limit: usize, scanned: &mut usize) -> Result<Option<usize>, ProtoError> {
    let window = &src[..src.len().min(limit)];
    let from = scanned.saturating_sub(2).min(window.len());
    for nl in memchr::memchr_iter(b'\n', &window[from..]).map(|at| from + at) {
        match &window[nl + 1..] {
            [b'\n', ..] => return Ok(Some(nl + 2)),
            [b'\r', b'\n', ..] => return Ok(Some(nl + 3)),
            _ => {}
        }
    }
    *scanned = window.len();
    if src.len() >= limit {
        return Err(ProtoError::HeadTooLarge {
            proto: NAME,
            what: "bytes",
            limit,
        });
    }
    Ok(None)
}

/// The first line of a head.
enum Start<'b> {
    /// A request: its target and minor version (`1` for HTTP/1.1).
    Request { target: &'b str, version: u8 },
    /// A response: whether it is `299 Business Error` (else `200 OK`).
    Response { failed: bool },
}

type Parsed<'h, 'b> = (Start<'b>, &'h [httparse::Header<'b>]);

/// A whole request head (through its blank line), parsed by httparse.
fn parse_request<'h, 'b>(head: &'b [u8], slots: &'h mut [httparse::Header<'b>]) -> Result<Parsed<'h, 'b>, ProtoError> {
    // Go writes an AUTH_CALL without a service method as `POST  HTTP/1.1` (an empty target),
    // which httparse rightly refuses: that one line is matched here, its headers parsed by
    // httparse.
    if let Some((version, line_len)) = empty_target_line(head) {
        let (used, headers) = match httparse::parse_headers(&head[line_len..], slots) {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) => return Err(incomplete_head()),
            Err(e) => return Err(parse_error(e)),
        };
        if line_len + used != head.len() {
            return Err(incomplete_head());
        }
        return Ok((Start::Request { target: "", version }, headers));
    }
    let mut req = httparse::Request::new(slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(used)) if used == head.len() => {}
        Ok(_) => return Err(incomplete_head()),
        Err(e) => return Err(parse_error(e)),
    }
    let httparse::Request {
        path, version, headers, ..
    } = req;
    let start = Start::Request {
        target: path.unwrap_or_default(),
        version: version.unwrap_or(1),
    };
    Ok((start, headers))
}

/// A whole response head, parsed by httparse: only `200` and `299` are eRPC replies.
fn parse_response<'h, 'b>(head: &'b [u8], slots: &'h mut [httparse::Header<'b>]) -> Result<Parsed<'h, 'b>, ProtoError> {
    let mut res = httparse::Response::new(slots);
    match res.parse(head) {
        Ok(httparse::Status::Complete(used)) if used == head.len() => {}
        Ok(_) => return Err(incomplete_head()),
        Err(e) => return Err(parse_error(e)),
    }
    let httparse::Response {
        code, reason, headers, ..
    } = res;
    let failed = match code {
        Some(200) => false,
        Some(299) => true,
        _ => {
            return Err(malformed(format!(
                "unexpected status {} {}: an eRPC reply is 200 OK or 299 Business Error",
                code.unwrap_or_default(),
                excerpt(reason.unwrap_or_default().as_bytes())
            )));
        }
    };
    Ok((Start::Response { failed }, headers))
}

/// `METHOD  HTTP/1.x` (Go's line for an empty service method): the minor version and the
/// line's length with its line end.
fn empty_target_line(head: &[u8]) -> Option<(u8, usize)> {
    let nl = memchr::memchr(b'\n', head)?;
    let line = head[..nl].strip_suffix(b"\r").unwrap_or(&head[..nl]);
    let (version, method) = if let Some(m) = line.strip_suffix(b"  HTTP/1.1") {
        (1, m)
    } else {
        (0, line.strip_suffix(b"  HTTP/1.0")?)
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    (!method.is_empty() && method.iter().all(token)).then_some((version, nl + 1))
}

fn incomplete_head() -> ProtoError {
    malformed("the head does not parse as one HTTP/1.x head")
}

/// What httparse found wrong, said so that the sender can fix it.
fn parse_error(e: httparse::Error) -> ProtoError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => ProtoError::HeadTooLarge {
            proto: NAME,
            what: "header lines",
            limit: MAX_HEADERS,
        },
        E::Version => malformed("unsupported HTTP version: only HTTP/1.0 and HTTP/1.1 are spoken"),
        E::Token => malformed("bad request line: expected `METHOD TARGET HTTP/1.1` with single spaces"),
        E::Status => malformed("bad status line: expected `HTTP/1.1 200 OK`"),
        E::HeaderName => {
            malformed("bad header name (no space may come before the colon, and folded lines are not allowed)")
        }
        E::HeaderValue => malformed("bad header value: control characters are not allowed"),
        E::NewLine => malformed("bad line end: lines end with CRLF (a bare CR is not allowed)"),
    }
}

/// The message a head describes (its body still to come), and the body's length.
struct Head {
    msg: Message,
    body_len: usize,
    /// A `299 Business Error` reply: the body is the status.
    failed: bool,
}

/// Reads a parsed head into a message: framing (Content-Length, never Transfer-Encoding),
/// eRPC's own headers, everything else into meta within `limits`.
fn read_head(start: Start<'_>, headers: &[httparse::Header<'_>], limits: &Limits) -> Result<Head, ProtoError> {
    // The query and the headers copied to meta count as meta bytes.
    let failed = matches!(start, Start::Response { failed: true });
    let (mut msg, mut meta_bytes, version) = match start {
        Start::Request { target, version } => {
            let (path, query) = split_target(target);
            let mut msg = Message::new(MessageType::Call, 0).with_service_method(path);
            msg.meta = limits.decode_meta(NAME, query.as_bytes())?;
            (msg, query.len(), Some(version))
        }
        Start::Response { .. } => (Message::new(MessageType::Reply, 0), 0, None),
    };
    let (mut content_length, mut transfer_encoding) = (None, None);
    let (mut seen_seq, mut seen_mtype, mut seen_type) = (false, false, false);
    let (mut close, mut keep_alive) = (false, false);
    for header in headers {
        let (name, value) = (header.name, trim(header.value));
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("content-length") {
            if content_length.is_some() {
                return Err(malformed(
                    "duplicate Content-Length header: the body's length is ambiguous",
                ));
            }
            content_length = Some(parse_length(value)?);
        } else if is("transfer-encoding") {
            transfer_encoding = Some(value);
        } else if is("content-type") {
            once(&mut seen_type, name)?;
            msg.body_codec = codec_of(std::str::from_utf8(value).unwrap_or_default());
        } else if is("x-content-encoding") {
            let filter = std::str::from_utf8(value)
                .ok()
                .and_then(xfer::by_name)
                .ok_or_else(|| malformed(format!("unknown X-Content-Encoding {}", excerpt(value))))?;
            msg.xfer_pipe.push(filter.id())?;
        } else if is("x-seq") {
            once(&mut seen_seq, name)?;
            msg.seq = parse_ascii(value).ok_or_else(|| malformed(format!("bad X-Seq {}", excerpt(value))))?;
        } else if is("x-mtype") {
            once(&mut seen_mtype, name)?;
            let v: u8 = parse_ascii(value).ok_or_else(|| malformed(format!("bad X-Mtype {}", excerpt(value))))?;
            msg.mtype = MessageType::from_u8(v).ok_or(ProtoError::UnknownMessageType { proto: NAME, mtype: v })?;
        } else if is("accept-encoding") || is("user-agent") || is("content-encoding") {
            // The protocol's own headers: not meta.
        } else {
            if is("connection") {
                close |= has_token(value, "close");
                keep_alive |= has_token(value, "keep-alive");
            }
            meta_bytes += name.len() + value.len();
            if meta_bytes > limits.max_meta_bytes {
                return Err(limits.meta_too_large(NAME, "bytes", meta_bytes));
            }
            if msg.meta.len() >= limits.max_meta_pairs {
                return Err(limits.meta_too_large(NAME, "pairs", msg.meta.len() + 1));
            }
            msg.meta
                .add(Bytes::copy_from_slice(name.as_bytes()), Bytes::copy_from_slice(value));
        }
    }
    if let Some(coding) = transfer_encoding {
        return Err(if content_length.is_some() {
            malformed("both Content-Length and Transfer-Encoding: the body's length is ambiguous")
        } else {
            ProtoError::NotImplemented {
                proto: NAME,
                reason: format!(
                    "Transfer-Encoding {} is not supported: send the body with a Content-Length",
                    excerpt(coding)
                ),
            }
        });
    }
    // Only what a Go peer sends: a request is a call, a response a reply.
    let fits = match version {
        Some(_) => matches!(msg.mtype, MessageType::Call | MessageType::AuthCall),
        None => matches!(msg.mtype, MessageType::Reply | MessageType::AuthReply),
    };
    if !fits {
        let what = if version.is_some() {
            "a request (1 or 4)"
        } else {
            "a response (2 or 5)"
        };
        return Err(malformed(format!("X-Mtype {} does not fit {what}", msg.mtype.as_u8())));
    }
    // HTTP/1.0 closes after each exchange unless asked not to; HTTP/1.1 when asked to.
    if close || (version == Some(0) && !keep_alive) {
        msg.meta.remove("Connection");
        msg.meta.add("Connection", "close");
    }
    Ok(Head {
        msg,
        body_len: content_length.unwrap_or(0),
        failed,
    })
}

/// Refuses a second header of a kind that must come once.
fn once(seen: &mut bool, name: &str) -> Result<(), ProtoError> {
    if std::mem::replace(seen, true) {
        return Err(malformed(format!("duplicate {name} header")));
    }
    Ok(())
}

/// A Content-Length: decimal digits only (no sign, no list, no spaces inside).
fn parse_length(value: &[u8]) -> Result<usize, ProtoError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(malformed(format!(
            "bad Content-Length {}: expected one decimal number",
            excerpt(value)
        )));
    }
    parse_ascii(value).ok_or_else(|| malformed(format!("Content-Length {} is out of range", excerpt(value))))
}

fn parse_ascii<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// `value` without surrounding spaces and tabs.
fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// Whether a comma-separated header value lists `token` (any case).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Up to 40 bytes of hostile input, quoted, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    if bytes.len() > MAX {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

/// A request target's service method and query: `/a/b?q` → (`/a/b`, `q`); an absolute
/// target (`http://host/a/b?q`, as sent to proxies) loses its scheme and host.
fn split_target(target: &str) -> (&str, &str) {
    let target = match split_url(target) {
        (Some(_), rest) => rest,
        (None, _) => target,
    };
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    target.split_once('?').unwrap_or((target, ""))
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`); anything else is its own target.
fn split_url(service_method: &str) -> (Option<&str>, &str) {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = service_method.strip_prefix(scheme) {
            let at = rest.find(['/', '?']).unwrap_or(rest.len());
            let target = &rest[at..];
            return (Some(&rest[..at]), if target.is_empty() { "/" } else { target });
        }
    }
    (None, service_method)
}

/// Go's `CanonicalMIMEHeaderKey` (`x-id` → `X-Id`); `None` for keys that are not HTTP tokens,
/// which Go's header writer drops.
fn canonical_key(key: &[u8]) -> Option<String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if key.is_empty() || !key.iter().all(|&b| token(b)) {
        return None;
    }
    let mut upper = true;
    Some(
        key.iter()
            .map(|&b| {
                let c = if upper {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
                upper = b == b'-';
                c as char
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonical() {
        assert_eq!(canonical_key(b"author").as_deref(), Some("Author"));
        assert_eq!(canonical_key(b"x-real-ip").as_deref(), Some("X-Real-Ip"));
        assert_eq!(canonical_key(b"hb_").as_deref(), Some("Hb_"));
        assert_eq!(canonical_key(b"x y"), None);
        assert_eq!(canonical_key(b""), None);
    }

    #[test]
    fn urls_split_into_host_and_target() {
        assert_eq!(
            split_url("http://localhost:9090/home/test?peer_id=110"),
            (Some("localhost:9090"), "/home/test?peer_id=110")
        );
        assert_eq!(split_url("/math/add"), (None, "/math/add"));
        assert_eq!(split_url("Hello.Say"), (None, "Hello.Say"));
    }

    #[test]
    fn content_types_match_loosely() {
        assert_eq!(codec_of("application/json; charset=utf-8"), CodecId::JSON);
        assert_eq!(codec_of("Application/JSON"), CodecId::JSON);
        assert_eq!(codec_of("text/plain"), CodecId::PLAIN);
        assert_eq!(codec_of("image/png"), CodecId::NONE);
    }
}
