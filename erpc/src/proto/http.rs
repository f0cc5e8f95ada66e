//! httproto (id `'h'`, name `http`; wire.md §10): messages as HTTP/1.1 requests and responses,
//! so plain HTTP clients can call CALL handlers:
//!
//! ```text
//! curl -X POST http://127.0.0.1:9090/math/add -H 'Content-Type: application/json' -d '[1,2,3]'
//! ```
//!
//! CALL and AUTH_CALL are `POST <service method>` requests, REPLY and AUTH_REPLY are `200 OK`
//! responses, or `299 Business Error` with the status as JSON. Seq and type travel in `X-Seq`
//! and `X-Mtype` (a plain client sends neither: its requests are CALLs with seq 0, answered
//! in order as long as it does not pipeline), meta as headers, the codec as `Content-Type`,
//! gzip (the only filter HTTP can carry) as `X-Content-Encoding`.
//!
//! Differences from Go:
//! - header names are matched case-insensitively (Go matches `Content-Type` exactly, so
//!   `content-type: application/json` from curl would be codec 0 and the connection closed);
//! - repeated meta keys are all kept (Go keeps the last);
//! - thrift-codec bodies are labelled `application/x-thrift` (Go labels them `text/plain`
//!   and reads them back as plain text);
//! - the protocol's own request headers (`Accept-Encoding`, `User-Agent`, `Content-Encoding`)
//!   are not copied into meta (Go copies them), and meta named like one of the protocol's
//!   headers (`X-Seq`, `Content-Type`…) is not sent (Go sends both and the frame is ambiguous);
//! - the head is limited to 64 KiB and 100 header lines, and `Content-Length` is checked
//!   against the size limit before the body is read (Go has no limits here);
//! - chunked bodies, `Expect: 100-continue` and HTTP/2 are not supported (as in Go).

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::{Limits, Proto, ProtoError};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::meta::Meta;
use crate::status::Status;
use crate::xfer::{self, XferPipe};

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
        let max_size = limits.max_message_size;
        let Some(head_len) = find_head_end(src)? else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&src[..head_len]).map_err(|_| malformed("the head is not UTF-8"))?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or_default();

        let (mut mtype, mut service_method, mut meta, response_status) = if first.starts_with("HTTP/") {
            let status = first.split_once(' ').map(|(_, s)| s).unwrap_or_default();
            let failed = match status {
                "200 OK" => false,
                "299 Business Error" => true,
                other => {
                    return Err(malformed(format!(
                        "unexpected status line {other:?}: expected 200 OK or 299 Business Error"
                    )));
                }
            };
            (MessageType::Reply, String::new(), Meta::new(), Some(failed))
        } else {
            let mut parts = first.splitn(3, ' ');
            let (_method, target, version) = (parts.next(), parts.next(), parts.next());
            let (Some(target), Some(_)) = (target, version) else {
                return Err(malformed(format!("bad request line {first:?}")));
            };
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            (
                MessageType::Call,
                path.to_string(),
                limits.decode_meta(NAME, query.as_bytes())?,
                None,
            )
        };

        let (mut seq, mut codec, mut body_len, mut xfer_pipe) = (0i32, CodecId::NONE, 0usize, XferPipe::new());
        for (count, line) in lines.filter(|l| !l.is_empty()).enumerate() {
            if count >= MAX_HEADERS {
                return Err(malformed(format!("more than {MAX_HEADERS} header lines")));
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| malformed(format!("header line without ':': {line:?}")))?;
            let value = value.trim();
            match key.to_ascii_lowercase().as_str() {
                "content-type" => codec = codec_of(value),
                "content-length" => {
                    body_len = value
                        .parse()
                        .map_err(|_| malformed(format!("bad Content-Length {value:?}")))?;
                    if body_len > max_size {
                        return Err(ProtoError::TooLarge {
                            proto: NAME,
                            size: body_len,
                            limit: max_size,
                        });
                    }
                }
                "x-content-encoding" => {
                    let filter = xfer::by_name(value)
                        .ok_or_else(|| malformed(format!("unknown X-Content-Encoding {value:?}")))?;
                    xfer_pipe.push(filter.id())?;
                }
                "x-seq" => seq = value.parse().map_err(|_| malformed(format!("bad X-Seq {value:?}")))?,
                "x-mtype" => {
                    let v: u8 = value.parse().map_err(|_| malformed(format!("bad X-Mtype {value:?}")))?;
                    mtype = MessageType::from_u8(v).ok_or(ProtoError::UnknownMessageType { proto: NAME, mtype: v })?;
                }
                "accept-encoding" | "user-agent" | "content-encoding" => {}
                _ => {
                    if meta.len() == limits.max_meta_pairs {
                        return Err(limits.meta_too_large(NAME, "pairs", meta.len() + 1));
                    }
                    meta.add(key.trim().to_string(), value.to_string());
                }
            }
        }
        if src.len() < head_len + body_len {
            return Ok(None);
        }
        let frame = src.split_to(head_len + body_len).freeze();
        let mut body = frame.slice(head_len..);
        if !body.is_empty() && !xfer_pipe.is_empty() {
            body = xfer_pipe.unpack(body, max_size)?;
        }
        let mut status = Status::OK;
        if response_status == Some(true) {
            status = Status::from_json(&body).map_err(|e| malformed(format!("bad status JSON in a 299 reply: {e}")))?;
            body = Bytes::new();
            codec = CodecId::NONE;
        }
        if !matches!(mtype, MessageType::Call | MessageType::AuthCall) {
            service_method.clear();
        }
        Ok(Some(Message {
            seq,
            mtype,
            service_method,
            status,
            meta,
            body_codec: codec,
            body,
            xfer_pipe,
        }))
    }
}

/// Where the head ends (after the blank line), if it is all there; an error past the limit.
fn find_head_end(src: &[u8]) -> Result<Option<usize>, ProtoError> {
    let window = &src[..src.len().min(MAX_HEAD)];
    let mut line_start = 0;
    for (i, &b) in window.iter().enumerate() {
        if b == b'\n' {
            let line = &window[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Ok(Some(i + 1));
            }
            line_start = i + 1;
        }
    }
    if src.len() >= MAX_HEAD {
        return Err(malformed(format!("no end of the HTTP head within {MAX_HEAD} bytes")));
    }
    Ok(None)
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
