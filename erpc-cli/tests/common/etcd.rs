//! A real etcd for tests: started on free loopback ports with a data dir of its own, waited
//! for until it reports healthy, killed and removed when dropped.
//!
//! Where no `etcd` binary is installed (Debian: `apt-get install etcd-server`), `start` says so
//! and returns `None`, so the test skips — unless `REQUIRE_ETCD=1`, which makes it fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd.
pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    etcd: PathBuf,
    peer_port: u16,
    /// `127.0.0.1:PORT`, its client endpoint.
    pub endpoint: String,
}

fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether etcd's `/health` says it is healthy.
fn healthy(endpoint: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect_timeout(&endpoint.parse().unwrap(), Duration::from_millis(500)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.0\r\nHost: {endpoint}\r\n\r\n");
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.contains("\"health\":\"true\"")
}

impl EtcdServer {
    /// Starts etcd, or `None` (after saying why) where it is not installed.
    pub fn start() -> Option<EtcdServer> {
        let Some(etcd) = find_etcd() else {
            assert!(
                std::env::var("REQUIRE_ETCD").as_deref() != Ok("1"),
                "REQUIRE_ETCD=1 but no etcd binary is installed (apt-get install etcd-server)"
            );
            eprintln!("skipped: no etcd binary (apt-get install etcd-server to run this test)");
            return None;
        };
        // A port taken between choosing and binding makes etcd exit: choose again.
        let mut last_log = String::new();
        for _ in 0..3 {
            match EtcdServer::spawn(&etcd) {
                Ok(server) => return Some(server),
                Err(log) => last_log = log,
            }
        }
        panic!("etcd did not start; its last log:\n{last_log}");
    }

    fn spawn(etcd: &PathBuf) -> Result<EtcdServer, String> {
        let (client, peer) = (free_port(), free_port());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("erpc-etcd-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = run(etcd, &dir, client, peer)?;
        let mut server = EtcdServer {
            child,
            dir,
            etcd: etcd.clone(),
            peer_port: peer,
            endpoint: format!("127.0.0.1:{client}"),
        };
        server.wait_healthy()?;
        Ok(server)
    }

    /// Kills etcd and starts it again on the same ports and data (what a client sees when
    /// etcd restarts: its streams break, then it answers again with the same keys).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let client: u16 = self.endpoint.rsplit(':').next().unwrap().parse().unwrap();
        self.child = run(&self.etcd, &self.dir, client, self.peer_port).unwrap();
        self.wait_healthy()
            .unwrap_or_else(|log| panic!("etcd did not come back:\n{log}"));
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.log());
            }
            if healthy(&self.endpoint) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("not healthy within 30 s\n{}", self.log()))
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// `etcd://ENDPOINT/SERVICE`.
    pub fn target(&self, service: &str) -> String {
        format!("etcd://{}/{service}", self.endpoint)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs etcd on loopback `client` and `peer` ports, with its data and log in `dir`.
fn run(etcd: &PathBuf, dir: &std::path::Path, client: u16, peer: u16) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .unwrap();
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    Command::new(etcd)
        .arg("--name=erpc-test")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=erpc-test={peer_url}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", etcd.display()))
}
