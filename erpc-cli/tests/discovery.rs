//! Service discovery on a real etcd: `erpc serve --register` servers, clients that resolve
//! the service by name and balance over it (the library's `ServiceClient`, `erpc call`,
//! `erpc bench --target`). Skipped where etcd is not installed, unless `REQUIRE_ETCD=1`.
#![cfg(feature = "discovery")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::etcd::EtcdServer;
use erpc::{Peer, PeerConfig};
use erpc_discovery::{Balance, ClientConfig, Etcd, EtcdTarget, LiveInstance, ServiceClient};
use tokio::sync::watch;

/// The registration TTL of the test servers: a killed one leaves etcd within it.
const TTL: Duration = Duration::from_secs(2);
/// How long anything expected may take on a slow, shared machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// `erpc serve --register`, SIGKILLed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(etcd: &EtcdServer, service: &str, ttl: Duration) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_erpc"))
            .args(["serve", "--listen", "127.0.0.1:0", "--push-interval", "0", "--register"])
            .arg(etcd.target(service))
            .arg("--register-ttl")
            .arg(format!("{}s", ttl.as_secs()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Printed once registered.
        let addr = common::listening_addr(&mut child);
        Server { child, addr }
    }

    /// What `/instance/id` answers for this server.
    fn identity(&self) -> String {
        format!("pid {}", self.child.id())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&self) {
        // SAFETY: signalling a child process we own.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client peer as discovery wants it (no redial: a lost instance fails at once), and a
/// client of `service`.
async fn client(etcd: &EtcdServer, service: &str, balance: Balance) -> (Peer, ServiceClient) {
    let peer = Peer::builder()
        .config(PeerConfig {
            redial_times: 0,
            call_timeout: Duration::from_secs(10),
            ..PeerConfig::default()
        })
        .build()
        .unwrap();
    let target: EtcdTarget = etcd.target(service).parse().unwrap();
    let config = ClientConfig {
        balance,
        ..ClientConfig::default()
    };
    let client = ServiceClient::connect(&peer, &target, config).await.unwrap();
    (peer, client)
}

/// Waits until the live set is exactly `servers`' addresses.
async fn wait_for_live(client: &ServiceClient, servers: &[&Server]) -> Vec<LiveInstance> {
    let want: BTreeSet<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    client
        .wait_until(PATIENCE, |live| {
            live.iter().map(|l| l.instance.addr.as_str()).collect::<BTreeSet<_>>() == want
        })
        .await
        .unwrap_or_else(|live| panic!("the live set did not become {want:?}; it is {live:?}"))
}

/// Which server answers a call (idempotent, optionally keyed).
async fn who(client: &ServiceClient, key: Option<&str>) -> Result<String, erpc::Status> {
    let mut call = client.call::<_, String>("/instance/id", &()).idempotent();
    if let Some(key) = key {
        call = call.hash_key(key);
    }
    call.await
}

/// `calls` idempotent calls from `workers` concurrent tasks; answers per server identity.
async fn spread(client: &ServiceClient, calls: usize, workers: usize) -> BTreeMap<String, usize> {
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let client = client.clone();
            let quota = calls / workers + usize::from(w < calls % workers);
            tokio::spawn(async move {
                let mut answers = Vec::with_capacity(quota);
                for _ in 0..quota {
                    answers.push(who(&client, None).await.expect("an idempotent call succeeds"));
                }
                answers
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for task in tasks {
        for answer in task.await.unwrap() {
            *counts.entry(answer).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_registered_servers_share_3000_calls_evenly() {
    let Some(etcd) = EtcdServer::start() else { return };
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, "even", TTL)).collect();
    let (_peer, client) = client(&etcd, "even", Balance::RoundRobin).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;

    let counts = spread(&client, 3000, 30).await;
    let identities: BTreeSet<String> = servers.iter().map(Server::identity).collect();
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        identities,
        "{counts:?}"
    );
    for (server, count) in &counts {
        assert!(
            (800..=1200).contains(count),
            "{server} answered {count} of 3000 calls: {counts:?}"
        );
    }
    // The client's own count agrees with the servers' answers.
    let stats = client.stats();
    assert_eq!(stats.iter().map(|s| s.calls).sum::<u64>(), 3000, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_idempotent_call_and_leaves_etcd_within_its_ttl() {
    let Some(etcd) = EtcdServer::start() else { return };
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, "kill", TTL)).collect();
    let (_peer, client) = client(&etcd, "kill", Balance::RoundRobin).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;
    let watcher = Etcd::connect(std::slice::from_ref(&etcd.endpoint), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(watcher.service_keys("kill").await.unwrap().len(), 3);

    // Calls keep flowing from 8 workers while a server is killed under them.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(watch::Sender::new(0usize));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    match who(&client, None).await {
                        Ok(_) => answered.send_modify(|n| *n += 1),
                        Err(status) => failures.push(status.to_string()),
                    }
                }
                failures
            })
        })
        .collect();
    reach(&answered, 300, "300 calls before the kill").await;

    let victim = servers.remove(0);
    let victim_addr = victim.addr.clone();
    let mut victim = victim;
    victim.kill();
    let killed_at = Instant::now();

    // The client drops it at once (its next call to it fails at the connection).
    client
        .wait_until(PATIENCE, |live| {
            live.len() == 2 && live.iter().all(|l| l.instance.addr != victim_addr)
        })
        .await
        .unwrap_or_else(|live| panic!("the killed server stayed in the live set: {live:?}"));
    // etcd deletes its key when the lease's TTL runs out.
    loop {
        let keys = watcher.service_keys("kill").await.unwrap();
        if keys.len() == 2 {
            break;
        }
        // etcd looks for expired leases every 500 ms and then deletes their keys through
        // raft: allow it that much past the TTL, and some scheduling on a loaded machine.
        assert!(
            killed_at.elapsed() < TTL + Duration::from_secs(2),
            "the killed server's key is still in etcd {:?} after the kill (TTL {TTL:?}): {keys:?}",
            killed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_kill = *answered.borrow();
    reach(&answered, after_kill + 300, "300 more calls after the kill").await;
    stop.store(true, Ordering::Release);
    for worker in workers {
        let failures = worker.await.unwrap();
        assert!(failures.is_empty(), "idempotent calls failed: {failures:?}");
    }
    let stats = client.stats();
    let dropped = stats.iter().find(|s| s.addr == victim_addr).unwrap();
    assert!(!dropped.live && dropped.failures >= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_not_marked_idempotent_fails_once_and_is_not_retried() {
    let Some(etcd) = EtcdServer::start() else { return };
    // A long TTL: etcd keeps listing the killed server, only the failure can drop it.
    let long_ttl = Duration::from_secs(60);
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, "once", long_ttl)).collect();
    let (_peer, client) = client(&etcd, "once", Balance::RoundRobin).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;
    let victim = servers.remove(0);
    let victim_addr = victim.addr.clone();
    let mut victim = victim;
    victim.kill();

    // Round robin reaches the dead server within three calls; that one call fails with a
    // connection status (not retried), and it is the only one.
    let mut failures = Vec::new();
    for _ in 0..30 {
        if let Err(status) = client.call::<_, String>("/instance/id", &()).await {
            failures.push(status);
        }
    }
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(erpc_discovery::is_connection_failure(&failures[0]), "{:?}", failures[0]);
    let stats = client.stats();
    let dead = stats.iter().find(|s| s.addr == victim_addr).unwrap();
    assert_eq!((dead.calls, dead.failures, dead.live), (0, 1, false), "{stats:?}");
    assert_eq!(stats.iter().map(|s| s.calls).sum::<u64>(), 29, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_server_starts_taking_calls() {
    let Some(etcd) = EtcdServer::start() else { return };
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, "join", TTL)).collect();
    let (_peer, client) = client(&etcd, "join", Balance::RoundRobin).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;

    servers.push(Server::start(&etcd, "join", TTL));
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;
    let counts = spread(&client, 400, 8).await;
    let newcomer = servers[3].identity();
    let taken = counts.get(&newcomer).copied().unwrap_or(0);
    assert!(
        (80..=120).contains(&taken),
        "the new server took {taken} of 400 calls: {counts:?}"
    );
    // Calls started in the background go through the same balancer: 4 in turn reach all 4.
    let started: Vec<_> = (0..4)
        .map(|_| client.call::<_, String>("/instance/id", &()).start())
        .collect();
    let mut answered = BTreeSet::new();
    for pending in started {
        answered.insert(pending.await.unwrap().body);
    }
    assert_eq!(answered, servers.iter().map(Server::identity).collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hashing_keeps_keys_on_their_server_while_it_lives() {
    let Some(etcd) = EtcdServer::start() else { return };
    let mut servers: Vec<Server> = (0..3).map(|_| Server::start(&etcd, "hash", TTL)).collect();
    let (_peer, client) = client(&etcd, "hash", Balance::Hash).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;

    let keys: Vec<String> = (0..200).map(|k| format!("user-{k}")).collect();
    let owners = |client: ServiceClient, keys: Vec<String>| async move {
        let mut owners = BTreeMap::new();
        for key in keys {
            let owner = who(&client, Some(&key)).await.expect("a keyed call succeeds");
            owners.insert(key, owner);
        }
        owners
    };
    let first = owners(client.clone(), keys.clone()).await;
    assert_eq!(
        first.values().collect::<BTreeSet<_>>().len(),
        3,
        "keys spread over all three"
    );
    assert_eq!(
        owners(client.clone(), keys.clone()).await,
        first,
        "a key sticks to its server"
    );

    // A fourth server takes some keys, each from wherever it was; no other key moves.
    servers.push(Server::start(&etcd, "hash", TTL));
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;
    let newcomer = servers[3].identity();
    let second = owners(client.clone(), keys.clone()).await;
    let moved: Vec<&String> = keys.iter().filter(|k| first[*k] != second[*k]).collect();
    assert!(!moved.is_empty(), "the new server took no key");
    for key in &moved {
        assert_eq!(second[*key], newcomer, "{key} moved between servers that stayed");
    }

    // A server killed: its keys go elsewhere (no keyed call fails), every other key stays.
    let victim = servers[0].identity();
    servers[0].kill();
    let third = owners(client.clone(), keys.clone()).await;
    for key in &keys {
        if second[key] == victim {
            assert_ne!(third[key], victim);
        } else {
            assert_eq!(third[key], second[key], "{key} moved though its server lives");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_gracefully_deregisters_at_once() {
    let Some(etcd) = EtcdServer::start() else { return };
    // A TTL far longer than the wait below: the key can only go by the revoke.
    let long_ttl = Duration::from_secs(60);
    let stays = Server::start(&etcd, "graceful", long_ttl);
    let mut leaves = Server::start(&etcd, "graceful", long_ttl);
    let (_peer, client) = client(&etcd, "graceful", Balance::RoundRobin).await;
    wait_for_live(&client, &[&stays, &leaves]).await;

    leaves.terminate();
    wait_for_live(&client, &[&stays]).await;
    let status = tokio::task::spawn_blocking(move || leaves.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "serve exits 0 after SIGTERM, got {status}");
    let watcher = Etcd::connect(std::slice::from_ref(&etcd.endpoint), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(watcher.service_keys("graceful").await.unwrap().len(), 1);
    // And a non-idempotent call now goes to the server that stayed.
    let answer: String = client.call("/instance/id", &()).await.unwrap();
    assert_eq!(answer, stays.identity());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_servers_ride_out_an_etcd_restart() {
    let Some(mut etcd) = EtcdServer::start() else { return };
    let before = Server::start(&etcd, "restart", Duration::from_secs(10));
    let (_peer, client) = client(&etcd, "restart", Balance::RoundRobin).await;
    wait_for_live(&client, &[&before]).await;

    // The client's watch breaks (the server's keep-alive stream too) and must be reopened.
    tokio::task::block_in_place(|| etcd.restart());
    // The instance last known stays callable while etcd is away or the watch is reopened.
    assert_eq!(who(&client, None).await.unwrap(), before.identity());
    let after = Server::start(&etcd, "restart", Duration::from_secs(10));
    wait_for_live(&client, &[&before, &after]).await;
    // And it still follows changes: a graceful stop is seen through the reopened watch.
    after.terminate();
    wait_for_live(&client, &[&before]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erpc_call_and_bench_reach_a_service_by_name() {
    let Some(etcd) = EtcdServer::start() else { return };
    let servers: Vec<Server> = (0..2).map(|_| Server::start(&etcd, "cli", TTL)).collect();
    let (_peer, client) = client(&etcd, "cli", Balance::RoundRobin).await;
    wait_for_live(&client, &servers.iter().collect::<Vec<_>>()).await;
    let target = etcd.target("cli");

    let out = run(&["call", &target, "/math/add", "[1,2,3]"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");

    let out = run(&["push", &target, "/push/status", "\"hi\""]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = run(&[
        "bench",
        "--target",
        &target,
        "--balance",
        "least-inflight",
        "-c",
        "4",
        "-n",
        "400",
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("calls per instance:"), "{text}");
    for server in &servers {
        let line = text
            .lines()
            .find(|l| l.contains(&server.addr))
            .unwrap_or_else(|| panic!("no count for {}: {text}", server.addr));
        let calls: u64 = line
            .split(": ")
            .nth(1)
            .and_then(|c| c.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(calls > 0, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_is_one_clear_error() {
    // Nothing listens on port 1: no etcd needed for this one.
    let out = run(&["call", "--timeout", "3s", "etcd://127.0.0.1:1/svc", "/math/add", "[1]"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve etcd://127.0.0.1:1/svc") && err.contains("etcd"),
        "{err}"
    );
    let out = run(&["call", "etcd://127.0.0.1:1", "/math/add"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("etcd://HOST:PORT/SERVICE"));
}

/// Runs `erpc ARGS` to completion, at most a minute.
async fn run(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_erpc"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    match waited {
        Ok(output) => output.unwrap().unwrap(),
        Err(_) => {
            // SAFETY: signalling a child process we own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("erpc {args:?} did not finish within a minute");
        }
    }
}

/// Waits until `count` reaches `n`, failing the test after [`PATIENCE`].
async fn reach(count: &watch::Sender<usize>, n: usize, what: &str) {
    let mut seen = count.subscribe();
    if tokio::time::timeout(PATIENCE, seen.wait_for(|&count| count >= n))
        .await
        .is_err()
    {
        panic!("waited {PATIENCE:?} for {what}");
    }
}
