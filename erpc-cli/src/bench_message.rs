//! The seed benchmark's message: the proto2 `BenchmarkMessage` of the common RPC benchmark
//! workload (eRPC's self test, rpcx-benchmark, the peer benchmark harness), as a prost struct.
//! Filled by [`prepare_args`] it encodes to 581 bytes.

/// `msg.BenchmarkMessage`: 40 scalar fields by field number (every scalar is sent, so they
/// are written as `required`), and the repeated `field5`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BenchmarkMessage {
    /// Field 1.
    #[prost(string, required, tag = "1")]
    pub field1: String,
    /// Field 2.
    #[prost(int32, required, tag = "2")]
    pub field2: i32,
    /// Field 3.
    #[prost(int32, required, tag = "3")]
    pub field3: i32,
    /// Field 4.
    #[prost(string, required, tag = "4")]
    pub field4: String,
    /// Field 5.
    #[prost(fixed64, repeated, packed = "false", tag = "5")]
    pub field5: Vec<u64>,
    /// Field 6.
    #[prost(int32, required, tag = "6")]
    pub field6: i32,
    /// Field 7.
    #[prost(string, required, tag = "7")]
    pub field7: String,
    /// Field 9.
    #[prost(string, required, tag = "9")]
    pub field9: String,
    /// Field 12.
    #[prost(bool, required, tag = "12")]
    pub field12: bool,
    /// Field 13.
    #[prost(bool, required, tag = "13")]
    pub field13: bool,
    /// Field 14.
    #[prost(bool, required, tag = "14")]
    pub field14: bool,
    /// Field 16.
    #[prost(int32, required, tag = "16")]
    pub field16: i32,
    /// Field 17.
    #[prost(bool, required, tag = "17")]
    pub field17: bool,
    /// Field 18.
    #[prost(string, required, tag = "18")]
    pub field18: String,
    /// Field 22.
    #[prost(int64, required, tag = "22")]
    pub field22: i64,
    /// Field 23.
    #[prost(int32, required, tag = "23")]
    pub field23: i32,
    /// Field 24.
    #[prost(bool, required, tag = "24")]
    pub field24: bool,
    /// Field 25.
    #[prost(int32, required, tag = "25")]
    pub field25: i32,
    /// Field 29.
    #[prost(int32, required, tag = "29")]
    pub field29: i32,
    /// Field 30.
    #[prost(bool, required, tag = "30")]
    pub field30: bool,
    /// Field 59.
    #[prost(bool, required, tag = "59")]
    pub field59: bool,
    /// Field 60.
    #[prost(int32, required, tag = "60")]
    pub field60: i32,
    /// Field 67.
    #[prost(int32, required, tag = "67")]
    pub field67: i32,
    /// Field 68.
    #[prost(int32, required, tag = "68")]
    pub field68: i32,
    /// Field 78.
    #[prost(bool, required, tag = "78")]
    pub field78: bool,
    /// Field 80.
    #[prost(bool, required, tag = "80")]
    pub field80: bool,
    /// Field 81.
    #[prost(bool, required, tag = "81")]
    pub field81: bool,
    /// Field 100.
    #[prost(int32, required, tag = "100")]
    pub field100: i32,
    /// Field 101.
    #[prost(int32, required, tag = "101")]
    pub field101: i32,
    /// Field 102.
    #[prost(string, required, tag = "102")]
    pub field102: String,
    /// Field 103.
    #[prost(string, required, tag = "103")]
    pub field103: String,
    /// Field 104.
    #[prost(int32, required, tag = "104")]
    pub field104: i32,
    /// Field 128.
    #[prost(int32, required, tag = "128")]
    pub field128: i32,
    /// Field 129.
    #[prost(string, required, tag = "129")]
    pub field129: String,
    /// Field 130.
    #[prost(int32, required, tag = "130")]
    pub field130: i32,
    /// Field 131.
    #[prost(int32, required, tag = "131")]
    pub field131: i32,
    /// Field 150.
    #[prost(int32, required, tag = "150")]
    pub field150: i32,
    /// Field 271.
    #[prost(int32, required, tag = "271")]
    pub field271: i32,
    /// Field 272.
    #[prost(int32, required, tag = "272")]
    pub field272: i32,
    /// Field 280.
    #[prost(int32, required, tag = "280")]
    pub field280: i32,
}

const SENTENCE: &str = "许多往事在眼前一幕一幕，变的那麼模糊";

/// The workload's argument: every integer field 100000, every bool true, every string the
/// same Chinese sentence, `field5` empty.
pub fn prepare_args() -> BenchmarkMessage {
    let s = || SENTENCE.to_string();
    let n = 100_000;
    BenchmarkMessage {
        field1: s(),
        field2: n,
        field3: n,
        field4: s(),
        field5: Vec::new(),
        field6: n,
        field7: s(),
        field9: s(),
        field12: true,
        field13: true,
        field14: true,
        field16: n,
        field17: true,
        field18: s(),
        field22: i64::from(n),
        field23: n,
        field24: true,
        field25: n,
        field29: n,
        field30: true,
        field59: true,
        field60: n,
        field67: n,
        field68: n,
        field78: true,
        field80: true,
        field81: true,
        field100: n,
        field101: n,
        field102: s(),
        field103: s(),
        field104: n,
        field128: n,
        field129: s(),
        field130: n,
        field131: n,
        field150: n,
        field271: n,
        field272: n,
        field280: n,
    }
}

/// What the server does: `field1 = "OK"`, `field2 = 100`.
pub fn answer(mut msg: BenchmarkMessage) -> BenchmarkMessage {
    msg.field1 = "OK".to_string();
    msg.field2 = 100;
    msg
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn encodes_to_581_bytes_and_back() {
        let msg = prepare_args();
        let bytes = msg.encode_to_vec();
        assert_eq!(bytes.len(), 581);
        assert_eq!(BenchmarkMessage::decode(&bytes[..]).unwrap(), msg);
        let answered = answer(msg);
        assert_eq!((answered.field1.as_str(), answered.field2), ("OK", 100));
    }
}
