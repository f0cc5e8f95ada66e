//! jsonproto (id `'j'`, name `json`): the message as a JSON document in the shared
//! outer framing, the xfer pipe over the whole document.
//!
//! We write exactly what Go writes: keys in Go's order, no spaces, service method, status and
//! meta quoted like Go's `strconv.Quote`, and the body with only `"` escaped.
//!
//! Reading, we take Go's layout positionally: the body is everything between `,"body":"` and
//! the document's final `"}`, with `\"` turned back into `"`. That reads every body back
//! exactly — including bodies with backslashes, which Go's own reader (a generic JSON path
//! extractor) corrupts. A document in another layout (other key order,
//! whitespace, a differently escaped body) is read by a lenient generic parser instead.
//!
//! Differences from Go:
//! - bodies with backslashes round-trip (Go's reader gets them wrong, so a *Go* receiver of
//!   such a body still sees it corrupted: prefer another protocol for binary bodies);
//! - a size-0 frame is an error, not an empty message;
//! - an mtype outside 1–5 is an error (Go closes the session later for the same reason).

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::{Limits, Proto, ProtoError, framed};
use crate::codec::CodecId;
use crate::message::{Message, MessageType};
use crate::status::Status;

const NAME: &str = "json";

/// jsonproto.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonProto;

impl Proto for JsonProto {
    fn id(&self) -> u8 {
        b'j'
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(&self, msg: &Message, dst: &mut BytesMut, max_size: usize) -> Result<(), ProtoError> {
        let mut doc = BytesMut::with_capacity(112 + msg.service_method.len() + msg.body.len());
        let _ = write!(
            Writer(&mut doc),
            "{{\"seq\":{},\"mtype\":{},\"serviceMethod\":",
            msg.seq,
            msg.mtype.as_u8()
        );
        go_quote(msg.service_method.as_bytes(), &mut doc);
        doc.put_slice(b",\"status\":");
        go_quote(&msg.status.encode_query(), &mut doc);
        doc.put_slice(b",\"meta\":");
        go_quote(&msg.meta.encode_query(), &mut doc);
        let _ = write!(Writer(&mut doc), ",\"bodyCodec\":{},\"body\":\"", msg.body_codec.0);
        for &b in msg.body.iter() {
            if b == b'"' {
                doc.put_u8(b'\\');
            }
            doc.put_u8(b);
        }
        doc.put_slice(b"\"}");
        framed::encode(NAME, &msg.xfer_pipe, doc.freeze(), dst, max_size)
    }

    fn decode(&self, src: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, ProtoError> {
        let Some((xfer_pipe, doc)) = framed::decode(NAME, src, limits.max_message_size)? else {
            return Ok(None);
        };
        let fields = go_layout(&doc)
            .or_else(|| lenient(&doc))
            .ok_or_else(|| ProtoError::Malformed {
                proto: NAME,
                reason: "the document is not a JSON object".into(),
            })?;
        let mtype = fields.mtype as u8;
        let mtype = MessageType::from_u8(mtype).ok_or(ProtoError::UnknownMessageType { proto: NAME, mtype })?;
        let service_method = String::from_utf8(fields.service_method).map_err(|_| ProtoError::Malformed {
            proto: NAME,
            reason: "service method is not UTF-8".into(),
        })?;
        Ok(Some(Message {
            seq: fields.seq as i32,
            mtype,
            service_method,
            status: Status::decode_query(&fields.status),
            meta: limits.decode_meta(NAME, &fields.meta)?,
            body_codec: CodecId(fields.body_codec as u8),
            body: fields.body,
            xfer_pipe,
        }))
    }
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Go's `strconv.Quote`: `"` and `\` escaped, C escapes for the usual controls, `\xNN` for
/// other control or invalid bytes, printable UTF-8 kept.
pub(super) fn go_quote(text: &[u8], out: &mut BytesMut) {
    out.put_u8(b'"');
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.put_slice(b"\\\""),
                '\\' => out.put_slice(b"\\\\"),
                '\x07' => out.put_slice(b"\\a"),
                '\x08' => out.put_slice(b"\\b"),
                '\x0c' => out.put_slice(b"\\f"),
                '\n' => out.put_slice(b"\\n"),
                '\r' => out.put_slice(b"\\r"),
                '\t' => out.put_slice(b"\\t"),
                '\x0b' => out.put_slice(b"\\v"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    let _ = write!(Writer(out), "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(Writer(out), "\\u{:04x}", c as u32);
                }
                c => out.put_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(Writer(out), "\\x{b:02x}");
        }
    }
    out.put_u8(b'"');
}

/// The fields of a decoded document.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) seq: i64,
    pub(super) mtype: i64,
    pub(super) service_method: Vec<u8>,
    pub(super) status: Vec<u8>,
    pub(super) meta: Vec<u8>,
    pub(super) body_codec: i64,
    pub(super) body: Bytes,
    /// The raw `xferPipe` value (the WebSocket sub-protocol's filter ids, a JSON array).
    pub(super) xfer_pipe: Vec<u8>,
}

/// Reads a document in exactly Go's layout; `None` if it is laid out otherwise.
fn go_layout(doc: &Bytes) -> Option<Fields> {
    let mut s = Scanner { doc, pos: 0 };
    s.literal(b"{\"seq\":")?;
    let seq = s.integer()?;
    s.literal(b",\"mtype\":")?;
    let mtype = s.integer()?;
    s.literal(b",\"serviceMethod\":")?;
    let service_method = s.string()?;
    s.literal(b",\"status\":")?;
    let status = s.string()?;
    s.literal(b",\"meta\":")?;
    let meta = s.string()?;
    s.literal(b",\"bodyCodec\":")?;
    let body_codec = s.integer()?;
    s.literal(b",\"body\":\"")?;
    let end = doc
        .len()
        .checked_sub(2)
        .filter(|&end| end >= s.pos && doc.ends_with(b"\"}"))?;
    let raw = &doc[s.pos..end];
    // Only `"` was escaped; a backslash before anything else is the body's own.
    let body = if raw.windows(2).any(|w| w == b"\\\"") {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'"') {
                out.push(b'"');
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        Bytes::from(out)
    } else {
        doc.slice(s.pos..end)
    };
    Some(Fields {
        seq,
        mtype,
        service_method,
        status,
        meta,
        body_codec,
        body,
        xfer_pipe: Vec::new(),
    })
}

/// Reads any JSON object leniently, as Go's path extractor does: missing keys are zero,
/// numbers may be strings, fractions are truncated, raw control bytes inside strings pass.
pub(super) fn lenient(doc: &Bytes) -> Option<Fields> {
    let mut s = Scanner { doc, pos: 0 };
    s.skip_ws();
    s.literal(b"{")?;
    let mut fields = Fields::default();
    loop {
        s.skip_ws();
        if s.eat(b'}') || s.pos >= doc.len() {
            return Some(fields);
        }
        let key = s.string()?;
        s.skip_ws();
        s.literal(b":")?;
        s.skip_ws();
        let value = s.value()?;
        match key.as_slice() {
            b"seq" => fields.seq = value.number(),
            b"mtype" => fields.mtype = value.number(),
            b"bodyCodec" => fields.body_codec = value.number(),
            b"serviceMethod" => fields.service_method = value.text(),
            b"status" => fields.status = value.text(),
            b"meta" => fields.meta = value.text(),
            b"body" => fields.body = value.text().into(),
            b"xferPipe" => fields.xfer_pipe = value.text(),
            _ => {}
        }
        s.skip_ws();
        s.eat(b',');
    }
}

enum Value {
    Text(Vec<u8>),
    Raw(Vec<u8>),
}

impl Value {
    fn text(self) -> Vec<u8> {
        match self {
            Value::Text(t) | Value::Raw(t) => t,
        }
    }

    fn number(self) -> i64 {
        let text = self.text();
        let text = String::from_utf8_lossy(&text);
        let text = text.trim();
        text.parse::<i64>()
            .ok()
            .or_else(|| text.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
            .unwrap_or(0)
    }
}

struct Scanner<'a> {
    doc: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.doc[self.pos..].starts_with(lit).then(|| self.pos += lit.len())
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.doc.get(self.pos) == Some(&b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn skip_ws(&mut self) {
        while self.doc.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn integer(&mut self) -> Option<i64> {
        let start = self.pos;
        if self.doc.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        while self.doc.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.doc[start..self.pos]).ok()?.parse().ok()
    }

    /// A quoted string with JSON escapes and Go's extra ones (`\a`, `\v`, `\xNN`); raw bytes
    /// of any value pass through.
    fn string(&mut self) -> Option<Vec<u8>> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let b = *self.doc.get(self.pos)?;
            self.pos += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = *self.doc.get(self.pos)?;
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'\'' => out.push(e),
                        b'a' => out.push(0x07),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(0x0b),
                        b'x' => out.push(u8::from_str_radix(std::str::from_utf8(self.take(2)?).ok()?, 16).ok()?),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xD800..0xDC00).contains(&c) && self.doc[self.pos..].starts_with(b"\\u") {
                                self.pos += 2;
                                let low = self.hex4()?;
                                c = 0x10000 + ((c - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let c = char::from_u32(c).unwrap_or('\u{FFFD}');
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        other => {
                            out.push(b'\\');
                            out.push(other);
                        }
                    }
                }
                b => out.push(b),
            }
        }
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let bytes = self.doc.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(bytes)
    }

    fn hex4(&mut self) -> Option<u32> {
        u32::from_str_radix(std::str::from_utf8(self.take(4)?).ok()?, 16).ok()
    }

    /// Any value: strings unescaped, anything else as its raw text (nesting followed).
    fn value(&mut self) -> Option<Value> {
        if self.doc.get(self.pos) == Some(&b'"') {
            return self.string().map(Value::Text);
        }
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(&b) = self.doc.get(self.pos) {
            match b {
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => break,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                b'"' => {
                    self.string()?;
                    continue;
                }
                _ => {}
            }
            self.pos += 1;
        }
        Some(Value::Raw(self.doc[start..self.pos].trim_ascii().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(s: &[u8]) -> String {
        let mut out = BytesMut::new();
        go_quote(s, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote(b"/math/add"), "\"/math/add\"");
        assert_eq!(quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(b"\x07\x0b\x01\x7f"), "\"\\a\\v\\x01\\x7f\"");
        assert_eq!(quote("é中".as_bytes()), "\"é中\"");
        assert_eq!(quote(b"\xff"), "\"\\xff\"");
    }

    #[test]
    fn lenient_reading_of_other_layouts() {
        let doc = Bytes::from_static(
            br#" { "body" : "x\\y\u00e9" , "mtype":"1", "seq": 7.9, "extra": {"a":[1,2]}, "serviceMethod":"/a", "bodyCodec":106 } "#,
        );
        assert!(go_layout(&doc).is_none());
        let f = lenient(&doc).unwrap();
        assert_eq!((f.seq, f.mtype, f.body_codec), (7, 1, 106));
        assert_eq!(f.service_method, b"/a");
        assert_eq!(&f.body[..], "x\\yé".as_bytes());
        assert!(lenient(&Bytes::from_static(b"[1,2]")).is_none());
        assert!(lenient(&Bytes::from_static(b"{\"seq\":\"unterminated")).is_none());
    }
}
