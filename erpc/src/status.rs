//! [`Status`]: the result of every call, and the error type at the RPC surface.
//!
//! A status is `{code, msg, cause}` where `code == 0` means OK. It travels as a query string
//! (`code=404&msg=Not%20Found&cause=`) and, in httproto error replies, as JSON.
//! An *absent* cause and a *present but empty* cause are different on the wire and
//! both are preserved.

use std::borrow::Cow;
use std::fmt;

use bytes::BufMut;

use crate::escape;

/// The result status of a call: OK (`code == 0`) or an error with a message and a cause.
///
/// `Status` implements [`std::error::Error`], so handlers return `Result<T, Status>` and use
/// `?` on it. The framework's own codes are constants of [`Code`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Status {
    code: Code,
    /// `None` exactly when the message is empty and the cause absent (every OK status): boxed,
    /// because every [`Message`](crate::Message) holds a status and moves it along with the
    /// rest, and most carry no text at all.
    text: Option<Box<Text>>,
}

/// The message and cause of a [`Status`].
#[derive(Clone, PartialEq, Eq)]
struct Text {
    msg: Cow<'static, str>,
    cause: Option<Cow<'static, str>>,
}

/// A status code: Go eRPC's `int32` code, with the framework's codes as constants.
///
/// `0` ([`Code::OK`]) means success; any other value is an error. Applications use their own
/// codes freely (`Code::new(10005)`, or a plain `i32` wherever `impl Into<Code>` is taken).
/// A code compares with an `i32` both ways (`status.code() == 404`), displays as its number
/// and text (`404 Not Found`) and serializes as the bare number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Code(i32);

impl Code {
    /// Go's `CodeUnknownError`: any code without a text of its own; also recovered
    /// non-status panics.
    pub const UNKNOWN_ERROR: Code = Code(-1);
    /// Success.
    pub const OK: Code = Code(0);
    /// Go's `CodeInvalidOp`: a pre-session operation was used outside PostDial/PostAccept.
    pub const INVALID_OP: Code = Code(1);
    /// Go's `CodeWrongConn`: the connection is of a kind the operation cannot use.
    pub const WRONG_CONN: Code = Code(100);
    /// The session is closed or its connection was lost.
    pub const CONN_CLOSED: Code = Code(102);
    /// A message could not be written.
    pub const WRITE_FAILED: Code = Code(104);
    /// Dialing failed after every attempt.
    pub const DIAL_FAILED: Code = Code(105);
    /// A message could not be decoded (or had no service method).
    pub const BAD_MESSAGE: Code = Code(400);
    /// Authentication failed.
    pub const UNAUTHORIZED: Code = Code(401);
    /// No handler for the service method.
    pub const NOT_FOUND: Code = Code(404);
    /// A message type that is not allowed here.
    pub const MTYPE_NOT_ALLOWED: Code = Code(405);
    /// A handler or a call ran out of time.
    pub const HANDLE_TIMEOUT: Code = Code(408);
    /// erpc's own, never sent on the wire: the caller gave up on its call (`PendingCall::abort`
    /// in the session module).
    pub const CANCELED: Code = Code(499);
    /// A handler failed (panicked) or the reply could not be produced.
    pub const INTERNAL_SERVER_ERROR: Code = Code(500);
    /// An upstream behind a proxy answered with a connection-level code.
    pub const BAD_GATEWAY: Code = Code(502);
    /// erpc's own: a route's load-shed layer refused the call. Go gives 503 no text, so
    /// [`text`](Code::text) reads `Unknown Error` as Go's `CodeText` does.
    pub const SERVICE_UNAVAILABLE: Code = Code(503);

    /// The code with this number.
    pub const fn new(code: i32) -> Code {
        Code(code)
    }

    /// The number, as it travels on the wire.
    pub const fn get(self) -> i32 {
        self.0
    }

    /// Whether this is [`Code::OK`].
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The text Go eRPC gives the code (`CodeText`); undefined codes read `Unknown Error`,
    /// OK reads the empty string. [`Code::CANCELED`], which never travels, reads `Canceled`.
    pub const fn text(self) -> &'static str {
        match self {
            Code::OK => "",
            Code::INVALID_OP => "Invalid Operation",
            Code::WRONG_CONN => "Wrong Connection",
            Code::CONN_CLOSED => "Connection Closed",
            Code::WRITE_FAILED => "Write Failed",
            Code::DIAL_FAILED => "Dial Failed",
            Code::BAD_MESSAGE => "Bad Message",
            Code::UNAUTHORIZED => "Unauthorized",
            Code::NOT_FOUND => "Not Found",
            Code::MTYPE_NOT_ALLOWED => "Message Type Not Allowed",
            Code::HANDLE_TIMEOUT => "Handle Timeout",
            Code::CANCELED => "Canceled",
            Code::INTERNAL_SERVER_ERROR => "Internal Server Error",
            Code::BAD_GATEWAY => "Bad Gateway",
            _ => "Unknown Error",
        }
    }
}

impl From<i32> for Code {
    fn from(code: i32) -> Code {
        Code(code)
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code.0
    }
}

impl PartialEq<i32> for Code {
    fn eq(&self, other: &i32) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Code> for i32 {
    fn eq(&self, other: &Code) -> bool {
        *self == other.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({})", self.0)
    }
}

/// `404 Not Found`; OK shows as `0 OK`.
impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.is_ok() { "OK" } else { self.text() };
        write!(f, "{} {}", self.0, text)
    }
}

impl Status {
    /// The OK status (`code=0` on the wire).
    pub const OK: Status = Status {
        code: Code::OK,
        text: None,
    };

    fn from_parts(code: Code, msg: Cow<'static, str>, cause: Option<Cow<'static, str>>) -> Self {
        let text = (!msg.is_empty() || cause.is_some()).then(|| Box::new(Text { msg, cause }));
        Status { code, text }
    }

    /// A status with a code and a message and no cause.
    pub fn new(code: impl Into<Code>, msg: impl Into<Cow<'static, str>>) -> Self {
        Status::from_parts(code.into(), msg.into(), None)
    }

    /// A status with a code, a message and a cause (which may be empty but is present).
    pub fn with_cause(
        code: impl Into<Code>,
        msg: impl Into<Cow<'static, str>>,
        cause: impl Into<Cow<'static, str>>,
    ) -> Self {
        Status::from_parts(code.into(), msg.into(), Some(cause.into()))
    }

    /// A status whose message is the code's text and whose cause is given, as the framework
    /// writes its own errors (`code=404&msg=Not%20Found&cause=`).
    pub fn from_code(code: impl Into<Code>, cause: impl Into<Cow<'static, str>>) -> Self {
        let code = code.into();
        Status::with_cause(code, code.text(), cause)
    }

    /// `404 Not Found` with an empty cause, exactly as Go answers an unknown route.
    pub fn not_found() -> Self {
        Status::from_code(Code::NOT_FOUND, "")
    }

    /// `400 Bad Message` with the given cause.
    pub fn bad_message(cause: impl Into<Cow<'static, str>>) -> Self {
        Status::from_code(Code::BAD_MESSAGE, cause)
    }

    /// `102 Connection Closed` with the given cause.
    pub fn conn_closed(cause: impl Into<Cow<'static, str>>) -> Self {
        Status::from_code(Code::CONN_CLOSED, cause)
    }

    /// `500 Internal Server Error` with the given cause.
    pub fn internal(cause: impl Into<Cow<'static, str>>) -> Self {
        Status::from_code(Code::INTERNAL_SERVER_ERROR, cause)
    }

    /// `408 Handle Timeout` with the given cause.
    pub fn timeout(cause: impl Into<Cow<'static, str>>) -> Self {
        Status::from_code(Code::HANDLE_TIMEOUT, cause)
    }

    /// The code; [`Code::OK`] (0) means OK.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Whether this is the OK status.
    pub fn is_ok(&self) -> bool {
        self.code.is_ok()
    }

    /// Whether the code says the connection failed (102 or 105), as Go's `IsConnError`.
    pub fn is_conn_error(&self) -> bool {
        matches!(self.code, Code::CONN_CLOSED | Code::DIAL_FAILED)
    }

    /// The message as sent (may be empty).
    pub fn msg(&self) -> &str {
        self.text.as_ref().map_or("", |text| &text.msg)
    }

    /// The cause, if present (it may be present and empty).
    pub fn cause(&self) -> Option<&str> {
        self.text.as_ref().and_then(|text| text.cause.as_deref())
    }

    /// Replaces the cause.
    pub fn set_cause(self, cause: impl Into<Cow<'static, str>>) -> Self {
        let msg = self.text.map_or(Cow::Borrowed(""), |text| text.msg);
        Status::from_parts(self.code, msg, Some(cause.into()))
    }

    /// Appends the query form to `out`.
    pub fn encode_query_into(&self, out: &mut impl BufMut) {
        out.put_slice(b"code=");
        if self.code.is_ok() {
            out.put_u8(b'0');
        } else {
            out.put_slice(self.code.get().to_string().as_bytes());
        }
        let msg = self.msg();
        if !msg.is_empty() {
            out.put_slice(b"&msg=");
            escape::escape_into(msg.as_bytes(), out);
        }
        if let Some(cause) = self.cause() {
            out.put_slice(b"&cause=");
            escape::escape_into(cause.as_bytes(), out);
        }
    }

    /// The query form: `code=0` for OK.
    pub fn encode_query(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.msg().len() + self.cause().map_or(0, |c| c.len() + 7));
        self.encode_query_into(&mut out);
        out
    }

    /// Parses the query form leniently, as Go does: first occurrence wins,
    /// a bad code reads 0, an out-of-range code is clamped. Never fails.
    pub fn decode_query(query: &[u8]) -> Status {
        if query.is_empty() || query == b"code=0" {
            return Status::OK; // every OK message carries exactly this
        }
        let (mut code, mut msg, mut cause) = (None, None, None);
        for (key, value) in escape::pairs(query) {
            match escape::unescape(key).as_slice() {
                b"code" if code.is_none() => code = Some(Code(parse_code(&escape::unescape(value)))),
                b"msg" if msg.is_none() => msg = Some(lossy(escape::unescape(value))),
                b"cause" if cause.is_none() => cause = Some(lossy(escape::unescape(value))),
                _ => {}
            }
        }
        Status::from_parts(code.unwrap_or(Code::OK), msg.unwrap_or_default(), cause)
    }

    /// The JSON form used by httproto error replies:
    /// `{"code":404,"msg":"Not Found","cause":""}`, an absent cause written as `""`.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            code: i32,
            msg: &'a str,
            cause: &'a str,
        }
        let json = Json {
            code: self.code.get(),
            msg: self.msg(),
            cause: self.cause().unwrap_or(""),
        };
        // Go's encoder escapes U+2028/U+2029; serde_json leaves them raw, which any JSON
        // parser reads the same way.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Parses the JSON form; an empty cause reads as absent, empty input as OK.
    pub fn from_json(json: &[u8]) -> Result<Status, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Json {
            #[serde(default)]
            code: i32,
            #[serde(default)]
            msg: String,
            #[serde(default)]
            cause: String,
        }
        if json.is_empty() {
            return Ok(Status::OK);
        }
        let json: Json = serde_json::from_slice(json)?;
        let cause = (!json.cause.is_empty()).then_some(Cow::Owned(json.cause));
        Ok(Status::from_parts(Code(json.code), json.msg.into(), cause))
    }
}

fn lossy(bytes: Vec<u8>) -> Cow<'static, str> {
    match String::from_utf8(bytes) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Go's `strconv.Atoi` semantics as used by the status decoder: syntax errors give 0 and
/// out-of-range values clamp.
fn parse_code(text: &[u8]) -> i32 {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut value: i64 = 0;
    for &d in digits {
        value = value * 10 + i64::from(d - b'0');
        if value > i64::from(i32::MAX) + 1 {
            break;
        }
    }
    let value = if negative { -value } else { value };
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = self.encode_query();
        write!(f, "Status({})", String::from_utf8_lossy(&query))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self.msg() {
            "" => self.code.text(),
            msg => msg,
        };
        write!(f, "{} {}", self.code.get(), msg)?;
        match self.cause() {
            Some(cause) if !cause.is_empty() => write!(f, ": {cause}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for Status {}

/// The text of a panic payload (`panic!("boom")` → `boom`).
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(status) = payload.downcast_ref::<Status>() {
        status.to_string()
    } else {
        "panicked".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &Status) -> String {
        String::from_utf8(s.encode_query()).unwrap()
    }

    #[test]
    fn encodes_every_example_of_the_spec() {
        assert_eq!(query(&Status::OK), "code=0");
        assert_eq!(query(&Status::new(0, "ok msg")), "code=0&msg=ok%20msg");
        assert_eq!(query(&Status::not_found()), "code=404&msg=Not%20Found&cause=");
        assert_eq!(query(&Status::new(404, "Not Found")), "code=404&msg=Not%20Found");
        assert_eq!(
            query(&Status::with_cause(1, "test error", "this is test:110")),
            "code=1&msg=test%20error&cause=this%20is%20test%3A110"
        );
        assert_eq!(
            query(&Status::with_cause(-1, "", "panic: x y")),
            "code=-1&cause=panic%3A%20x%20y"
        );
        assert_eq!(
            query(&Status::with_cause(500, "a&b=c+d é/_.-*~", "line1\nline2")),
            "code=500&msg=a%26b%3Dc%2Bd%20%C3%A9%2F_.-*%7E&cause=line1%0Aline2"
        );
    }

    #[test]
    fn decodes_leniently_like_go() {
        assert_eq!(Status::decode_query(b""), Status::OK);
        assert_eq!(Status::decode_query(b"msg=x&code=7"), Status::new(7, "x"));
        assert_eq!(Status::decode_query(b"c%6Fde=5"), Status::new(5, ""));
        assert_eq!(Status::decode_query(b"code=5&code=6&msg=a&msg=b"), Status::new(5, "a"));
        assert_eq!(Status::decode_query(b"code=x1"), Status::OK);
        assert_eq!(Status::decode_query(b"code=99999999999").code(), i32::MAX);
        assert_eq!(Status::decode_query(b"code=-99999999999").code(), i32::MIN);
        assert_eq!(Status::decode_query(b"code=1&cause"), Status::with_cause(1, "", ""));
        assert_eq!(Status::decode_query(b"code=1&cause=a&cause=b").cause(), Some("a"));
        assert_eq!(
            Status::decode_query(b"code=404&msg=Not%20Found&cause="),
            Status::not_found()
        );
    }

    #[test]
    fn a_status_is_two_words_and_equal_however_it_was_made() {
        // Every message holds a status and moves it along with the rest: the text is boxed.
        assert_eq!(std::mem::size_of::<Status>(), 16);
        assert_eq!(Status::new(0, ""), Status::OK);
        assert_eq!(Status::decode_query(b"code=0&msg="), Status::OK);
        assert_eq!(Status::from_json(br#"{"code":0}"#).unwrap(), Status::OK);
        // A present but empty cause is kept, and distinguished from an absent one.
        let empty_cause = Status::with_cause(404, "", "");
        assert_eq!(empty_cause.cause(), Some(""));
        assert_ne!(empty_cause, Status::new(404, ""));
        assert_eq!(Status::new(404, "").set_cause(""), empty_cause);
        assert_eq!(Status::new(404, "Not Found").set_cause("x").msg(), "Not Found");
    }

    #[test]
    fn hostile_escapes_do_not_panic() {
        let s = Status::decode_query(b"code=1&msg=%\xFF\xFF&cause=%FF%");
        assert_eq!(s.code(), 1);
        assert_eq!(s.cause(), Some("\u{FFFD}%"));
    }

    #[test]
    fn json_form_round_trips() {
        assert_eq!(
            Status::not_found().to_json(),
            r#"{"code":404,"msg":"Not Found","cause":""}"#
        );
        let s = Status::from_json(br#"{"code":10005,"msg":"custom error","cause":"because"}"#).unwrap();
        assert_eq!(s, Status::with_cause(10005, "custom error", "because"));
        assert_eq!(
            Status::from_json(br#"{"code":404,"msg":"Not Found","cause":""}"#).unwrap(),
            Status::new(404, "Not Found")
        );
        assert!(Status::from_json(br#"{"code":99999999999}"#).is_err());
    }

    #[test]
    fn codes_read_as_numbers_and_texts() {
        assert_eq!(Code::NOT_FOUND, 404);
        assert_eq!(404, Code::NOT_FOUND);
        assert_eq!(Code::from(105), Code::DIAL_FAILED);
        assert_eq!(i32::from(Code::UNKNOWN_ERROR), -1);
        assert_eq!(Code::new(10005).get(), 10005);
        assert_eq!(Code::NOT_FOUND.to_string(), "404 Not Found");
        assert_eq!(Code::OK.to_string(), "0 OK");
        assert_eq!(Code::new(10005).to_string(), "10005 Unknown Error");
        assert_eq!(Code::MTYPE_NOT_ALLOWED.text(), "Message Type Not Allowed");
        assert_eq!(serde_json::to_string(&Code::BAD_GATEWAY).unwrap(), "502");
        assert_eq!(serde_json::from_str::<Code>("-1").unwrap(), Code::UNKNOWN_ERROR);
        assert_eq!(Status::new(Code::UNAUTHORIZED, "no").code(), 401);
        assert!(Status::from_code(102, "").is_conn_error());
    }

    #[test]
    fn displays_for_people() {
        assert_eq!(
            Status::with_cause(10005, "custom error", "because").to_string(),
            "10005 custom error: because"
        );
        assert_eq!(Status::not_found().to_string(), "404 Not Found");
    }
}
