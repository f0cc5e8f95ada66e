//! Router dispatch and the whole call path (session, router, handler, codecs) over an
//! in-memory pipe, so no socket noise: `cargo bench -p erpc --bench dispatch`.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use erpc::net::Conn;
use erpc::proto::RawProto;
use erpc::{Peer, Router, Session, Status};

fn connected(rt: &tokio::runtime::Runtime) -> Session {
    rt.block_on(async {
        let mut router = Router::new();
        router.group("math").call("add", |nums: Vec<i64>| async move {
            Ok::<_, Status>(nums.iter().sum::<i64>())
        });
        for i in 0..200 {
            router.call_at(&format!("/filler/route{i}"), |_: ()| async move { Ok::<_, Status>(()) });
        }
        let server = Peer::builder().router(router).build().unwrap();
        let client = Peer::builder().build().unwrap();
        let (a, b) = tokio::io::duplex(1 << 20);
        let conn = |io: tokio::io::DuplexStream, local: &str, remote: &str| Conn::new(io, local, remote);
        server
            .serve_conn(conn(a, "server", "client"), Arc::new(RawProto))
            .await
            .unwrap();
        let session = client
            .connect_conn(conn(b, "client", "server"), Arc::new(RawProto))
            .await
            .unwrap();
        // Keep the peers alive for the whole benchmark.
        std::mem::forget((server, client));
        session
    })
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let session = connected(&rt);
    c.bench_function("call/one_at_a_time", |b| {
        b.iter(|| rt.block_on(async { session.call::<_, i64>("/math/add", &[1, 2, 3]).await.unwrap() }))
    });
    c.bench_function("call/100_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls: Vec<_> = (0..100)
                    .map(|i| session.call::<_, i64>("/math/add", &[i, 1]).start())
                    .collect();
                for call in calls {
                    call.await.unwrap();
                }
            })
        })
    });
    c.bench_function("call/not_found", |b| {
        b.iter(|| rt.block_on(async { session.call::<_, ()>("/nope", &()).await.unwrap_err() }))
    });
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
