//! Several signaling servers (nodes) sharing rooms through a NATS server.
//!
//! Every room name has one **home** node, the only one that runs that name's
//! rooms (the same [`Rooms`](super::rooms) logic as a lone server): so a room
//! fills exactly once and no client is in two rooms, whichever nodes the joiners
//! reached. The home is whoever claimed the name first in a key-value bucket of
//! the NATS server (JetStream, an atomic "create"); a claim of a node that stopped
//! sending heartbeats is taken over (an atomic "update" at the revision seen).
//!
//! A client talks to the node it connected to (its **edge**). The edge keeps the
//! connection's own limits (rates, sizes, queues) and forwards the client's
//! `join`, `signal` and `leave` to the room's home as NATS messages; the home
//! answers with the frames for the client. Clients whose room is homed on their
//! own node cost no broker message at all.
//!
//! - [`wire`]: the messages between nodes (JSON batches on NATS subjects);
//! - [`table`]: who is where (homes, routes, remote members), sans-IO;
//! - the driver (the NATS connection, heartbeats, claims) is in the server.
//!
//! The protocol between nodes and their failure rules are written down in
//! `docs/cluster.md`.

use std::time::Duration;

pub(crate) mod table;
pub(crate) mod wire;

/// Settings of a signaling node that shares rooms with others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://10.0.0.5:4222` (user and password may be in
    /// the URL: `nats://user:pass@host:4222`). It must run with JetStream
    /// enabled (`nats-server -js`): the room-name claims live in a key-value
    /// bucket.
    pub nats_url: String,
    /// Subjects and the claims bucket are named after this, so that several
    /// clusters can share one NATS server: `<prefix>.node.<id>`,
    /// `<prefix>.alive`, bucket `<prefix>_rooms`. Letters, digits, `-` and `_`.
    pub prefix: String,
    /// How often the node says it is alive (and measures the broker round trip).
    pub heartbeat: Duration,
    /// A node not heard from for this long is dead: its remote members leave
    /// their rooms (their seats held for rejoin) and its room names may be
    /// claimed by others. Only judged while this node's own broker connection
    /// has been up this long.
    pub node_timeout: Duration,
    /// A room name without rooms for this long is given up (its claim deleted).
    pub release_after: Duration,
}

impl ClusterConfig {
    /// Settings for the NATS server at `nats_url`, with default timing.
    pub fn new(nats_url: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            prefix: "rtcplay".into(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(5),
            release_after: Duration::from_secs(30),
        }
    }

    /// Whether the prefix names valid subjects and a valid bucket.
    pub(crate) fn valid_prefix(&self) -> bool {
        !self.prefix.is_empty()
            && self.prefix.len() <= 32
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// A signaling node's view of its cluster (in [`ServerStats`](super::ServerStats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStats {
    /// This node's id (as in the logs and the claims bucket).
    pub node: u64,
    /// The connection to the NATS server is up.
    pub broker_connected: bool,
    /// Times the connection to the NATS server was lost since start.
    pub broker_disconnects: u64,
    /// The last measured round trip to the NATS server, in microseconds.
    pub broker_rtt_us: u64,
    /// Nodes heard from within the node timeout, this one included.
    pub nodes: usize,
    /// Room names whose rooms live on this node.
    pub homed_names: usize,
    /// Members of rooms on this node that are connected to other nodes.
    pub remote_members: usize,
    /// This node's clients in rooms that live on other nodes.
    pub routed_clients: usize,
    /// Messages (batches) sent to other nodes (heartbeats and claims not
    /// counted).
    pub messages_out: u64,
    /// Messages received from other nodes.
    pub messages_in: u64,
    /// Bytes of broker messages sent.
    pub bytes_out: u64,
    /// Bytes of broker messages received.
    pub bytes_in: u64,
    /// Room names claimed (a fresh claim or a dead node's taken over).
    pub claims: u64,
    /// Of those, claims taken over from a dead node.
    pub takeovers: u64,
    /// Clients told `room_lost` (their room's home node died).
    pub rooms_lost: u64,
    /// Joins refused with `unavailable` (no broker, or no home found).
    pub unavailable: u64,
    /// Broker messages that could not be decoded, or came for nobody (dropped).
    pub garbage: u64,
    /// Messages for other nodes dropped because the broker could not take them.
    pub dropped_out: u64,
}

/// Compiles the example in `docs/cluster.md` as a doc test.
#[cfg(all(doctest, feature = "cluster"))]
#[doc = include_str!("../../../../docs/cluster.md")]
struct ClusterGuide;
