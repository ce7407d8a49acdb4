//! A network lab in Linux network namespaces (needs root, as CI runs).
//!
//! ```text
//!   public ns: br0 10.99.0.1 ── coturn (STUN/TURN :3478), rtcplay-signal (:3536)
//!      │ veth            │ veth
//!   router 0: wan 10.99.0.10, NAT   router 1: wan 10.99.0.11, NAT   ...
//!      │ veth            │ veth
//!   host 0: 192.168.10.2            host 1: 192.168.11.2            ...
//! ```
//!
//! Each player's `rtcplay-lab-peer` process runs in its host namespace; its router
//! masquerades (cone-like or `fully-random`) and may firewall peer-to-peer UDP. The
//! lab removes every namespace and process it made when dropped, also when a test
//! fails, and removes leftovers of killed runs when it starts.

#![allow(dead_code)]

pub mod net;
pub mod process;
pub mod servers;

use std::time::Duration;

pub use net::NatKind;
use net::Topology;
use process::{Guarded, LabPeer};

/// The shared secret between the signaling server and coturn. Clients never see it.
const TURN_SECRET: &str = "lab-secret-not-for-clients";

/// A running lab. Field order matters: processes die before namespaces go.
pub struct Lab {
    /// Players started with [`Lab::spawn_players`].
    pub peers: Vec<LabPeer>,
    signaling: Option<Guarded>,
    coturn: Guarded,
    /// The namespaces.
    pub topology: Topology,
}

/// Fail (not skip) when the lab cannot run: CI runs these tests as root.
pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the NAT lab needs root (network namespaces, nftables); run the tests as root"
    );
    for tool in ["ip", "nft", "turnserver", "conntrack", "ss"] {
        assert!(
            net::run("sh", &["-c", &format!("command -v {tool}")]).is_ok(),
            "the NAT lab needs `{tool}`: .ci/test installs it (apt-get install coturn nftables conntrack iproute2)"
        );
    }
}

impl Lab {
    /// Build the namespaces for one player per entry of `nats` and start the servers.
    pub fn start(nats: &[NatKind]) -> Lab {
        require_root();
        let topology = Topology::build(nats).expect("build the lab network");
        let public = topology.public();
        let coturn = servers::start_coturn(&public, TURN_SECRET).expect("start coturn");
        let signaling =
            servers::start_signaling(&public, TURN_SECRET).expect("start the signaling server");
        Lab {
            peers: Vec::new(),
            signaling: Some(signaling),
            coturn,
            topology,
        }
    }

    /// Start one `rtcplay-lab-peer` per player, all in `room`, playing `frames` frames.
    pub fn spawn_players(&mut self, room: &str, frames: u32, extra: &[&str]) {
        for i in 0..self.topology.players() {
            let peer = self.spawn_player(i, room, frames, extra);
            self.peers.push(peer);
        }
    }

    /// Start player `i`'s `rtcplay-lab-peer` (again, after a kill: put it in
    /// `peers[i]` yourself).
    pub fn spawn_player(&self, i: usize, room: &str, frames: u32, extra: &[&str]) -> LabPeer {
        let mut args: Vec<String> = vec![
            "--url".into(),
            servers::signaling_url(),
            "--room".into(),
            room.into(),
            "--players".into(),
            self.topology.players().to_string(),
            "--frames".into(),
            frames.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        LabPeer::spawn(i, &self.topology.host(i), &args).expect("start a lab peer")
    }

    /// SIGKILL the signaling server and start a new one on the same address.
    pub fn restart_signaling(&mut self) {
        if let Some(mut old) = self.signaling.take() {
            old.kill();
        }
        let public = self.topology.public();
        self.signaling = Some(
            servers::start_signaling(&public, TURN_SECRET).expect("restart the signaling server"),
        );
    }
}

/// What a player printed about one connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The remote peer id.
    pub peer: u32,
    /// Our side of the selected candidate pair.
    pub local: String,
    /// The remote side.
    pub remote: String,
    /// Setup time of the attempt that connected (its start to hello
    /// acknowledged), ms.
    pub setup_ms: u64,
    /// Time from room full to connected, ms (includes a failed direct attempt).
    pub since_full_ms: u64,
}

impl Connection {
    /// The path type: relay if either side is relayed, else srflx/prflx if either
    /// side is reflexive, else host.
    pub fn path(&self) -> &'static str {
        let sides = [self.local.as_str(), self.remote.as_str()];
        if sides.contains(&"relay") {
            "relay"
        } else if sides.contains(&"srflx") || sides.contains(&"prflx") {
            "srflx"
        } else {
            "host"
        }
    }
}

impl LabPeer {
    /// Wait until this player has connected to everyone; its connections.
    pub fn connections(&mut self, timeout: Duration) -> Vec<Connection> {
        self.wait_for("running", timeout)
            .unwrap_or_else(|e| panic!("{e}"));
        self.seen
            .iter()
            .filter_map(|line| {
                let mut words = line.text.split_whitespace();
                if words.next()? != "connected" {
                    return None;
                }
                Some(Connection {
                    peer: words.next()?.parse().ok()?,
                    local: words.next()?.to_string(),
                    remote: words.next()?.to_string(),
                    setup_ms: words.next()?.parse().ok()?,
                    since_full_ms: words.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    /// Wait for the final checksum line; returns the checksum text.
    pub fn checksum(&mut self, timeout: Duration) -> String {
        let line = self
            .wait_for("checksum", timeout)
            .unwrap_or_else(|e| panic!("{e}"));
        line.text
    }

    /// Lines starting with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|l| l.text.starts_with(prefix))
            .map(|l| l.text.clone())
            .collect()
    }
}
