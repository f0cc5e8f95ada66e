//! The thrift codec's deserializer on arbitrary bytes, into a struct with every kind of field.
#![no_main]

use std::collections::BTreeMap;

use erpc::codec::{CodecId, DecodeBody};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Everything {
    flag: Option<bool>,
    small: Option<i8>,
    num: Option<i32>,
    big: Option<i64>,
    ratio: Option<f64>,
    name: Option<String>,
    list: Option<Vec<i64>>,
    map: Option<BTreeMap<String, Vec<String>>>,
    inner: Option<Box<Everything>>,
}

fuzz_target!(|data: &[u8]| {
    let _ = Everything::decode_body(CodecId::THRIFT, bytes::Bytes::copy_from_slice(data));
    let _ = Vec::<i32>::decode_body(CodecId::XML, bytes::Bytes::copy_from_slice(data));
});
