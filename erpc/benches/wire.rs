//! Frame encode/decode and query-string costs: `cargo bench -p erpc --bench wire`.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use erpc::proto::{Limits, Proto, RawProto};
use erpc::{CodecId, Message, MessageType, Meta, Status};

const LIMIT: usize = 16 << 20;

fn call(body_len: usize) -> Message {
    let mut msg = Message::new(MessageType::Call, 123_456)
        .with_service_method("Hello.Say")
        .with_body(CodecId::PROTOBUF, Bytes::from(vec![b'x'; body_len]));
    msg.meta = [("author", "andeya")].into_iter().collect::<Meta>();
    msg
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("rawproto");
    for body_len in [7usize, 581, 64 * 1024] {
        let msg = call(body_len);
        let mut frame = BytesMut::new();
        RawProto.encode(&msg, &mut frame, LIMIT).unwrap();
        let frame = frame.freeze();
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(format!("encode/{body_len}"), |b| {
            let mut out = BytesMut::with_capacity(frame.len() * 64);
            b.iter(|| {
                out.clear();
                RawProto.encode(&msg, &mut out, LIMIT).unwrap();
            })
        });
        group.bench_function(format!("decode/{body_len}"), |b| {
            b.iter(|| {
                let mut input = BytesMut::from(&frame[..]);
                RawProto
                    .decode(&mut input, &Limits::with_max_message_size(LIMIT))
                    .unwrap()
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn queries(c: &mut Criterion) {
    let status = Status::with_cause(500, "a&b=c+d é/_.-*~", "line1\nline2");
    let query = status.encode_query();
    c.bench_function("status/encode", |b| b.iter(|| status.encode_query()));
    c.bench_function("status/decode", |b| b.iter(|| Status::decode_query(&query)));
    let meta: Meta = [("author", "andeya"), ("X-Real-IP", "10.0.0.1:5555"), ("k", "a b c")]
        .into_iter()
        .collect();
    let query = meta.encode_query();
    c.bench_function("meta/encode", |b| b.iter(|| meta.encode_query()));
    c.bench_function("meta/decode", |b| b.iter(|| Meta::decode_query(&query)));
}

criterion_group!(benches, frames, queries);
criterion_main!(benches);
