//! Hostile frames against the decoders, with memory measured: a meta bomb (a small gzip frame
//! whose meta expands to millions of pairs) and partial frames that declare a huge length.
//! Every allocation of the decoding thread is counted, so the bound asserted is the memory
//! the decoder really took, not a proxy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{BufMut, BytesMut};
use erpc::proto::{self, Limits, Proto, ProtoError};
use erpc::{CodecId, Message, MessageType, Meta, XferPipe};

/// Counts the bytes allocated by each thread, and the peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most memory it held at once on this thread.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get) - start;
    (result, peak.max(0) as usize)
}

const MIB: usize = 1024 * 1024;

/// A CALL whose meta is `pairs` tiny pairs, gzip-filtered so the frame stays small.
fn meta_bomb(proto: &dyn Proto, pairs: usize) -> BytesMut {
    let mut meta = Meta::new();
    for _ in 0..pairs {
        meta.add("a", "");
    }
    let mut msg = Message::new(MessageType::Call, 1);
    msg.service_method = "/math/add".into();
    msg.meta = meta;
    msg.body_codec = CodecId::JSON;
    msg.body = "[1]".into();
    msg.xfer_pipe = XferPipe::from_ids(b"g").unwrap();
    let mut frame = BytesMut::new();
    proto.encode(&msg, &mut frame, 64 * MIB).expect("the bomb encodes");
    frame
}

#[test]
fn a_meta_bomb_is_refused_with_bounded_memory_in_every_framed_protocol() {
    let limits = Limits::with_max_message_size(4 * MIB);
    for name in ["json", "pb"] {
        let proto = proto::by_name(name).unwrap();
        // ~1.5 MiB of meta text in a frame of a few KiB: before the meta limits, decoding it
        // held ~40 MiB (a million pairs of 2 `Bytes` each).
        let frame = meta_bomb(proto.as_ref(), 500_000);
        assert!(
            frame.len() < 64 * 1024,
            "{name}: the bomb is small on the wire ({} bytes)",
            frame.len()
        );
        let mut input = frame.clone();
        let (result, peak) = peak_of(|| proto.decode(&mut input, &limits));
        match result {
            Err(ProtoError::MetaTooLarge { what, .. }) => assert_eq!(what, "bytes", "{name}"),
            other => panic!("{name}: expected MetaTooLarge, got {other:?}"),
        }
        // The document itself may be unpacked (it is within max_message_size); the meta
        // pairs are never built.
        assert!(peak < 3 * MIB, "{name}: decoding the bomb held {peak} bytes");
    }
}

#[test]
fn meta_with_too_many_pairs_is_refused_in_every_binary_protocol() {
    let limits = Limits {
        max_meta_pairs: 100,
        ..Limits::default()
    };
    for name in ["raw", "json", "pb", "thrift"] {
        let proto = proto::by_name(name).unwrap();
        let mut input = meta_bomb(proto.as_ref(), 101);
        match proto.decode(&mut input, &limits) {
            Err(ProtoError::MetaTooLarge { what, found, limit, .. }) => {
                assert_eq!((what, found, limit), ("pairs", 101, 100), "{name}");
            }
            other => panic!("{name}: expected MetaTooLarge, got {other:?}"),
        }
        // At the limit it is fine.
        let mut input = meta_bomb(proto.as_ref(), 100);
        let msg = proto.decode(&mut input, &limits).unwrap().expect("a whole frame");
        assert_eq!(msg.meta.len(), 100, "{name}");
    }
}

#[test]
fn a_raw_meta_of_64_kib_of_pairs_is_refused_by_the_pair_limit() {
    // rawproto's meta length is 16 bits: 32767 pairs fit in it, far over the default limit.
    let proto = proto::by_name("raw").unwrap();
    let mut input = meta_bomb(proto.as_ref(), 32_000);
    let (result, peak) = peak_of(|| proto.decode(&mut input, &Limits::default()));
    assert!(
        matches!(result, Err(ProtoError::MetaTooLarge { what: "pairs", .. })),
        "{result:?}"
    );
    assert!(peak < MIB, "decoding held {peak} bytes");
}

#[test]
fn a_partial_frame_costs_what_arrived_not_what_it_declares() {
    let limits = Limits::with_max_message_size(64 * MIB);
    let declared = 8 * MIB as u32;
    // Each protocol's length prefix, declaring 8 MiB, and a few bytes of the rest.
    let mut heads: Vec<(&str, BytesMut)> = Vec::new();
    for name in ["raw", "json", "pb", "thrift", "thrift-struct"] {
        let mut head = BytesMut::with_capacity(64);
        head.put_u32(declared);
        head.put_slice(&[0, 0, 0, 0, 0, 0]);
        heads.push((name, head));
    }
    let mut http = BytesMut::with_capacity(256);
    http.put_slice(format!("POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n[1", 8 * MIB).as_bytes());
    heads.push(("http", http));
    for (name, mut input) in heads {
        let proto = proto::by_name(name).unwrap();
        let capacity = input.capacity();
        let (result, peak) = peak_of(|| proto.decode(&mut input, &limits));
        assert!(matches!(result, Ok(None)), "{name}: {result:?}");
        assert_eq!(
            input.capacity(),
            capacity,
            "{name}: the buffer was grown for the declared size"
        );
        assert!(peak < 64 * 1024, "{name}: waiting for the rest held {peak} bytes");
    }
}
