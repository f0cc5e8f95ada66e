//! A `PeerConfig` from a TOML file (YAML works the same way), with Go's keys and duration
//! syntax.
//!
//! `cargo run -p erpc-examples --example config`

use erpc::{Peer, PeerConfig, Router, Status};

const CONFIG: &str = r#"
# The same keys as Go eRPC's config files.
network = "tcp"
local_ip = "127.0.0.1"
listen_port = 0           # a free port
default_body_codec = "json"
default_context_age = "2s"
redial_times = 3
redial_interval = "250ms"
count_time = true
slow_comet_duration = "500ms"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("erpc-example-{}.toml", std::process::id()));
    std::fs::write(&path, CONFIG)?;
    let config = PeerConfig::from_file(&path)?;
    std::fs::remove_file(&path)?;
    println!(
        "loaded: listen {} redial {}x every {:?}",
        config.listen_addr(),
        config.redial_times,
        config.redial_interval()
    );

    let mut router = Router::new();
    router.call("ping", |_: ()| async move { Ok::<_, Status>("pong".to_string()) });
    let server = Peer::builder().config(config.clone()).router(router).build()?;
    let addr = server.listen().await?;
    println!("listening on {addr}");

    let client = Peer::builder().config(config).build()?;
    let session = client.dial(&addr).await?;
    println!("/ping -> {}", session.call::<_, String>("/ping", &()).await?);

    client.close().await;
    server.close().await;
    Ok(())
}
