//! A real NATS server and real `rtcplay-signal` nodes on 127.0.0.1, for the
//! cluster tests and benchmarks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// A `nats-server` with JetStream, killed on drop.
pub struct Nats {
    child: Option<Child>,
    port: u16,
    monitor_port: u16,
    dir: PathBuf,
}

impl Nats {
    /// Start one on a free port.
    pub fn start() -> Nats {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("rtcplay-nats-{}-{port}", std::process::id()));
        let mut nats = Nats {
            child: None,
            port,
            monitor_port: free_port(),
            dir,
        };
        nats.restart();
        nats
    }

    /// Its client address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its monitoring figures (`/varz`: messages and bytes in and out, CPU).
    pub fn varz(&self) -> Option<serde_json::Value> {
        http_json(self.monitor_port, "/varz")
    }

    /// Kill it (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it (again) on the same port, with empty storage, and wait until
    /// it takes connections.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string(), "-sd"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An `rtcplay-signal` process that is a node of a cluster, killed on drop.
pub struct SignalNode {
    child: Option<Child>,
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
    stats_port: u16,
}

impl SignalNode {
    /// Start the binary `bin` as a node of the cluster at `nats_url` (quick
    /// heartbeats and a short node timeout, no per-IP limit to speak of), with
    /// `extra` arguments.
    pub fn start(bin: &str, nats_url: &str, extra: &[&str]) -> SignalNode {
        let cluster = [
            "--cluster",
            nats_url,
            "--heartbeat-ms",
            "200",
            "--node-timeout-ms",
            "1500",
        ];
        Self::spawn(bin, &[&cluster[..], extra].concat())
    }

    /// Start the binary `bin` as a lone server (no cluster), with the same
    /// stats endpoint and limits as [`SignalNode::start`].
    pub fn start_lone(bin: &str, extra: &[&str]) -> SignalNode {
        Self::spawn(bin, extra)
    }

    fn spawn(bin: &str, args: &[&str]) -> SignalNode {
        let stats_port = free_port();
        let mut child = Command::new(bin)
            .args(["--bind", "127.0.0.1:0"])
            .args(["--max-connections-per-ip", "100000", "--log", "warn"])
            .args(["--stats-addr", &format!("127.0.0.1:{stats_port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rtcplay-signal");
        let mut url = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut url)
            .expect("read the URL line");
        assert!(url.starts_with("ws://"), "first line {url:?}");
        SignalNode {
            child: Some(child),
            url: url.trim().to_owned(),
            stats_port,
        }
    }

    /// Its process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its `/stats` (JSON), `None` while it does not answer.
    pub fn try_stats(&self) -> Option<serde_json::Value> {
        http_json(self.stats_port, "/stats")
    }

    /// Its `/stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.try_stats().expect("stats endpoint answers")
    }

    /// One of its cluster figures.
    pub fn cluster_stat(&self, name: &str) -> serde_json::Value {
        self.stats()["cluster"][name].clone()
    }

    /// Wait until `check` holds for its stats (sampled every second).
    pub fn wait_until(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) {
        let deadline = Instant::now() + within;
        loop {
            if self.try_stats().is_some_and(|s| check(&s)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; stats {:?}",
                self.try_stats()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kill it with SIGKILL (its connections die without a goodbye).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SignalNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `path` on 127.0.0.1:`port`; the JSON body.
fn http_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    // HTTP/1.0: the answer comes whole, never chunked.
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    tcp.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).ok()?;
    let body = response.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

/// Wait until every node is connected to the broker and hears all the others.
pub fn wait_for_cluster(nodes: &[&SignalNode]) {
    for node in nodes {
        node.wait_until("the cluster forms", START_DEADLINE, |stats| {
            stats["cluster"]["broker_connected"] == true
                && stats["cluster"]["nodes"].as_u64() == Some(nodes.len() as u64)
        });
    }
}
