//! A `PeerConfig` in layers: a TOML file (YAML, JSON and INI work the same way) with Go's keys
//! and duration syntax, then `ERPC_*` environment variables, then an override standing for a
//! command-line flag — and where each value came from.
//!
//! `ERPC_REDIAL_TIMES=5 cargo run -p erpc-examples --example config`

use std::time::Duration;

use erpc::config::ConfigLoader;
use erpc::{Peer, Router, Status};

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
call_timeout = "20s"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("erpc-example-{}.toml", std::process::id()));
    std::fs::write(&path, CONFIG)?;
    let with_file = ConfigLoader::new().file(&path); // the file's keys over the defaults,
    std::fs::remove_file(&path)?;
    let explained = with_file?
        .env() // then ERPC_* variables (ERPC_REDIAL_TIMES=5 …),
        .set_duration("call_timeout", Duration::from_secs(3), "--timeout") // then flags.
        .explain()?;
    for key in ["listen_port", "redial_times", "call_timeout", "max_message_size"] {
        let origin = explained.origin(key).map(ToString::to_string).unwrap_or_default();
        println!("{key:<16} from {origin}");
    }
    let config = explained.config;
    println!(
        "loaded: listen {} redial {}x every {:?}, calls wait {:?}",
        config.listen_addr(),
        config.redial_times,
        config.redial_interval(),
        config.call_timeout
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
