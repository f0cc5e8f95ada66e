//! gzip and md5 unpacking of arbitrary bytes: errors, never panics, never exceeds the limit.
#![no_main]

use bytes::Bytes;
use erpc::XferPipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    const LIMIT: usize = 64 * 1024;
    for ids in [&b"g"[..], b"m", b"gm", b"mg"] {
        let pipe = XferPipe::from_ids(ids).expect("gzip and md5 are registered");
        if let Ok(out) = pipe.unpack(Bytes::copy_from_slice(data), LIMIT) {
            assert!(out.len() <= LIMIT);
        }
    }
});
