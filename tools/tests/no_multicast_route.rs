//! Native peers connect on a host with no multicast route (a LAN of two machines
//! with static addresses and no default route; here a network namespace with only
//! `lo`). webrtc-rs's mDNS socket cannot join its group there (ENODEV); the
//! transport used to fail every connection with it. A real signaling server and
//! two real `rtcplay-peer` processes run inside the namespace. Needs root (CI
//! runs as root), like the NAT lab.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A network namespace with only `lo` up, deleted on drop.
struct Namespace(String);

impl Namespace {
    fn new() -> Namespace {
        let name = format!("rtcplay-nomc-{}", std::process::id());
        let ok = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("run ip");
            assert!(status.success(), "ip {args:?} failed (the test needs root)");
        };
        ok(&["netns", "add", &name]);
        let ns = Namespace(name);
        ok(&["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]);
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.0, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process killed on drop, with its stdout lines on a channel.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn start(mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start process");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines }
    }

    /// Lines until one starts with `wanted`; panics on an `error` line or after
    /// `timeout`.
    fn wait_for(&self, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(wanted) => return line,
                Ok(line) => assert!(!line.starts_with("error"), "peer failed: {line}"),
                Err(_) => panic!("no `{wanted}` line within {timeout:?}"),
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn peers_connect_where_there_is_no_multicast_route() {
    let ns = Namespace::new();
    // The condition itself: no route to the mDNS group in this namespace.
    let route = ns
        .command("ip")
        .args(["route", "get", "224.0.0.251"])
        .output()
        .unwrap();
    assert!(
        !route.status.success(),
        "the namespace has a multicast route: {}",
        String::from_utf8_lossy(&route.stdout)
    );
    let mut signal = ns.command(env!("CARGO_BIN_EXE_rtcplay-signal"));
    signal.args(["--bind", "127.0.0.1:0", "--log", "error"]);
    let server = Process::start(signal);
    let url = server.wait_for("ws://", Duration::from_secs(10));
    let peers: Vec<Process> = (0..2)
        .map(|_| {
            let mut peer = ns.command(env!("CARGO_BIN_EXE_rtcplay-peer"));
            peer.args(["--url", &url, "--room", "no-multicast", "--loopback"]);
            Process::start(peer)
        })
        .collect();
    for peer in &peers {
        peer.wait_for("all-connected", Duration::from_secs(20));
    }
}
