//! Go's ready plugins over every protocol where Go's work (extensions.md §1.2, §7): auth,
//! secure bodies, the overloader and heartbeats together, on raw, json, protobuf and http.
//! (thriftproto cannot carry AUTH_CALL, as in Go.)

use std::time::Duration;

use erpc::heartbeat::Pong;
use erpc::plugin::{AuthInfo, Bearer, Checker, Overloader, OverloaderConfig, SECURE_KEY, Secure, SecureMode};
use erpc::{CodecId, Peer, Router, Status};

const KEY: &[u8] = b"cipherkey1234567";

#[tokio::test]
async fn auth_secure_overloader_and_heartbeat_work_on_every_protocol() {
    for name in ["raw", "json", "pb", "http"] {
        let proto = erpc::proto::by_name(name).unwrap();
        let mut router = Router::new();
        router.group("math").call("add", |nums: Vec<i64>| async move {
            Ok::<_, Status>(nums.iter().sum::<i64>())
        });
        let checker = Checker::new(|token: String, _: AuthInfo| async move {
            if token == "t0ken" {
                Ok("pass")
            } else {
                Err(Status::with_cause(403, "auth fail", "wrong token"))
            }
        })
        .codec(CodecId::PLAIN);
        let overloader = Overloader::new(OverloaderConfig {
            max_total_qps: 1000,
            qps_interval: Duration::from_secs(1),
            ..OverloaderConfig::default()
        })
        .unwrap();
        let server = Peer::builder()
            .router(router)
            .proto(proto.clone())
            .plugin(checker)
            .plugin(overloader)
            .plugin(Secure::new(SecureMode::Go, 600, KEY).unwrap())
            .with(Pong::new())
            .build()
            .unwrap();
        let addr = server.listen_on("127.0.0.1:0").await.unwrap();

        let bearer =
            |token: &'static str| Bearer::new(move || async move { Ok::<_, Status>(token) }).codec(CodecId::PLAIN);
        let client = Peer::builder()
            .plugin(bearer("t0ken"))
            .plugin(Secure::new(SecureMode::Go, 600, KEY).unwrap())
            .build()
            .unwrap();
        let session = client.dial_with(&addr, proto.clone()).await.unwrap();
        let sum: i64 = session
            .call("/math/add", &[1, 2, 3])
            .meta(SECURE_KEY, "true")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sum, 6, "{name}");
        let pong: Option<()> = session
            .call("/heartbeat", &())
            .meta("hb_", "3")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pong, None, "{name}");

        let stranger = Peer::builder().plugin(bearer("guess")).build().unwrap();
        let refused = stranger.dial_with(&addr, proto).await.unwrap_err();
        assert_eq!(refused.code(), erpc::status::Code::DIAL_FAILED, "{name}: {refused}");
    }
}
