//! The server's state as one node of a cluster: joins for names homed
//! elsewhere are forwarded, members on other nodes get their frames through the
//! broker, and what other nodes send is applied here. Runs under the state's
//! mutex like everything else; the broker task (`broker.rs`) moves the messages.

// The broker task that drives these is built only with the `cluster` feature.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use std::time::Instant as StdInstant;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{error_frame, Queued, Shared, State};
use crate::datagram::PeerId;
use crate::signaling::cluster::table::{ClusterTable, Home, RemoteJoin, MAX_HOME_TRIES};
use crate::signaling::cluster::wire::{NodeId, NodeMessage};
use crate::signaling::cluster::ClusterConfig;
use crate::signaling::protocol::{ErrorCode, SignalData};
use crate::signaling::rooms::{ConnId, JoinRequest, Refusal};
use crate::signaling::SignalingError;

/// The cluster table of a new node, or why the configuration cannot work.
pub(super) fn cluster_table(config: &ClusterConfig) -> Result<ClusterTable, SignalingError> {
    if !cfg!(feature = "cluster") {
        return Err(SignalingError::Cluster(
            "this build of rtcplay has no `cluster` feature".into(),
        ));
    }
    if !config.valid_prefix() {
        return Err(SignalingError::Cluster(format!(
            "prefix {:?} must be 1-32 letters, digits, `-` or `_`",
            config.prefix
        )));
    }
    let me = getrandom::u64()
        .map_err(|e| SignalingError::Cluster(format!("no random source for the node id: {e}")))?;
    Ok(ClusterTable::new(
        me,
        config.node_timeout,
        config.release_after,
    ))
}

/// The answer to a join sent to a node that does not hold the name.
fn not_home(remote: RemoteJoin) -> NodeMessage {
    NodeMessage::NotHome {
        conn: remote.conn,
        seq: remote.seq,
        join: remote.join,
        tries: remote.tries,
    }
}

/// What the broker found out about a room name's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// This node holds the claim now, at this revision (`takeover`: it was a
    /// dead node's).
    Here { revision: u64, takeover: bool },
    /// Another node holds it.
    Node(NodeId),
    /// No answer (the broker is unreachable or failing): the message says why.
    Unavailable(String),
}

impl State {
    /// A client's `join`: served here, forwarded to the room's home node, or
    /// held until the broker says where that is.
    pub(super) fn join(
        &mut self,
        id: ConnId,
        req: JoinRequest,
        mine: &mut Vec<Utf8Bytes>,
        shared: &Shared,
    ) -> Result<(), Refusal> {
        if let Some(cluster) = &mut self.cluster {
            if self.rooms.is_member(id) || cluster.is_busy(id) {
                return Err((
                    ErrorCode::AlreadyInRoom,
                    "already in a room; send leave first".into(),
                ));
            }
            self.rooms.check_request(&req)?;
            let home = cluster.home_of(&req.name);
            if home != Home::Here && !cluster.broker_connected() {
                // Without the broker only the names held here can be served.
                cluster.counters_mut().unavailable += 1;
                return Err((
                    ErrorCode::Unavailable,
                    "this server cannot reach the rest of its cluster now; try again or \
                     another server"
                        .into(),
                ));
            }
            match home {
                Home::Here => {}
                Home::Node(node) => {
                    cluster.route_join(id, node, req, 0);
                    shared.broker_wake.notify_one();
                    return Ok(());
                }
                Home::Unknown => {
                    cluster.wait_for_home(id, req, 0);
                    shared.broker_wake.notify_one();
                    return Ok(());
                }
            }
        }
        self.join_here(id, req, mine, shared)
    }

    /// Join `id` (a client here or a remote member) into a room here.
    fn join_here(
        &mut self,
        id: ConnId,
        req: JoinRequest,
        mine: &mut Vec<Utf8Bytes>,
        shared: &Shared,
    ) -> Result<(), Refusal> {
        let mut out = Vec::new();
        let res = self.rooms.join(id, req, &mut out);
        self.deliver(id, out, mine, shared);
        self.dispatch_probes();
        res
    }

    /// A client's `signal`.
    pub(super) fn relay(
        &mut self,
        id: ConnId,
        to: PeerId,
        data: SignalData,
        mine: &mut Vec<Utf8Bytes>,
        shared: &Shared,
    ) -> Result<(), Refusal> {
        if let Some(route) = self.cluster.as_ref().and_then(|c| c.route(id)) {
            self.send_to(
                route.home,
                NodeMessage::Signal {
                    conn: id,
                    seq: route.seq,
                    to,
                    data,
                },
                shared,
            );
            return Ok(());
        }
        let mut out = Vec::new();
        let res = self.rooms.relay(id, to, data, &mut out);
        self.deliver(id, out, mine, shared);
        res
    }

    /// A client's `leave`.
    pub(super) fn leave(
        &mut self,
        id: ConnId,
        mine: &mut Vec<Utf8Bytes>,
        shared: &Shared,
    ) -> Result<(), Refusal> {
        if let Some(cluster) = &mut self.cluster {
            if let Some(route) = cluster.route(id) {
                // Out of the room at once (a new join may follow right away);
                // the home announces the departure.
                cluster.unroute(id, route.seq);
                self.send_to(
                    route.home,
                    NodeMessage::Leave {
                        conn: id,
                        seq: route.seq,
                    },
                    shared,
                );
                return Ok(());
            }
        }
        let mut out = Vec::new();
        let res = self.rooms.leave(id, &mut out);
        self.deliver(id, out, mine, shared);
        res
    }

    /// A client's connection closed: its room's home (if elsewhere) is told.
    pub(super) fn client_gone(&mut self, id: ConnId, shared: &Shared) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if let Some(route) = cluster.forget_client(id) {
            self.send_to(
                route.home,
                NodeMessage::Gone {
                    conn: id,
                    seq: route.seq,
                },
                shared,
            );
        }
    }

    /// A frame for `to`, a member of a room here connected to another node.
    pub(super) fn deliver_remote(&mut self, me: ConnId, to: ConnId, text: Utf8Bytes, relay: bool) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let Some(member) = cluster.remote_member(to) else {
            return; // a connection that just closed
        };
        let relay_from = relay.then(|| match cluster.remote_member(me) {
            Some(sender) => (sender.node, sender.conn),
            None => (cluster.me(), me),
        });
        cluster.deliver_to(member, text.as_str(), relay_from);
        self.touched.push(to);
    }

    /// Send `message` to `node` through the broker.
    fn send_to(&mut self, node: NodeId, message: NodeMessage, shared: &Shared) {
        if let Some(cluster) = &mut self.cluster {
            cluster.send(node, message);
            shared.broker_wake.notify_one();
        }
    }

    /// Ask the connections a rejoin wants the seats of to prove they are alive
    /// (here, or through their node).
    fn dispatch_probes(&mut self) {
        for holder in self.rooms.take_probes() {
            if let Some(queue) = self.conns.get_mut(&holder) {
                queue.request_probe();
            } else if let Some(cluster) = &mut self.cluster {
                if let Some(member) = cluster.remote_member(holder) {
                    cluster.send(
                        member.node,
                        NodeMessage::Probe {
                            conn: member.conn,
                            seq: member.seq,
                        },
                    );
                }
            }
        }
    }

    /// Remote members whose membership ended during the last operation are
    /// forgotten and their nodes told.
    fn settle_members(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        for id in touched {
            if self.rooms.is_member(id) {
                continue;
            }
            if let Some(member) = cluster.drop_member(id) {
                cluster.send(
                    member.node,
                    NodeMessage::Released {
                        conn: member.conn,
                        seq: member.seq,
                    },
                );
            }
        }
    }

    /// A batch of messages from node `from`.
    pub(super) fn on_node_batch(&mut self, from: NodeId, batch: Vec<NodeMessage>, shared: &Shared) {
        for message in batch {
            self.on_node_message(from, message, shared);
        }
        self.settle_members();
    }

    fn on_node_message(&mut self, from: NodeId, message: NodeMessage, shared: &Shared) {
        let now = Instant::now();
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        match message {
            // --- as the home of a room name ----------------------------------
            NodeMessage::Join {
                conn,
                seq,
                join,
                tries,
            } => {
                let remote = RemoteJoin {
                    node: from,
                    conn,
                    seq,
                    join,
                    tries,
                };
                if cluster.home_of(&remote.join.name) == Home::Here {
                    self.remote_join_here(remote, shared);
                } else if cluster.is_resolving(&remote.join.name) {
                    // The sender found our claim in the bucket before our own
                    // lookup came back: wait for it.
                    cluster.hold_remote_join(remote);
                } else {
                    cluster.send(from, not_home(remote));
                }
            }
            NodeMessage::Signal {
                conn,
                seq,
                to,
                data,
            } => {
                let Some(id) = cluster.known_member(from, conn, seq) else {
                    let frame = error_frame(ErrorCode::NotInRoom, "join a room before signaling");
                    cluster.send(
                        from,
                        NodeMessage::Notice {
                            conn,
                            frame: frame.as_str().to_owned(),
                        },
                    );
                    return;
                };
                let mut out = Vec::new();
                let res = self.rooms.relay(id, to, data, &mut out);
                let mut mine = Vec::new();
                self.deliver(id, out, &mut mine, shared);
                if let Err((code, message)) = res {
                    mine.push(error_frame(code, &message));
                }
                // The sender's own frames (errors, `peer_busy`) whatever its
                // membership is by now.
                if let Some(cluster) = &mut self.cluster {
                    for frame in mine {
                        cluster.send(
                            from,
                            NodeMessage::Notice {
                                conn,
                                frame: frame.as_str().to_owned(),
                            },
                        );
                    }
                }
            }
            NodeMessage::Leave { conn, seq } | NodeMessage::Gone { conn, seq } => {
                let gone = matches!(message, NodeMessage::Gone { .. });
                let Some(id) = cluster.known_member(from, conn, seq) else {
                    return;
                };
                cluster.drop_member(id);
                let mut out = Vec::new();
                let _ = if gone {
                    self.rooms
                        .disconnect(id, std::time::Instant::now(), &mut out)
                } else {
                    self.rooms.leave(id, &mut out)
                };
                self.deliver(id, out, &mut Vec::new(), shared);
            }
            // --- as the edge of a client -------------------------------------
            NodeMessage::Deliver {
                conn,
                seq,
                frame,
                relay_from,
            } => {
                if cluster.route(conn).is_none_or(|r| r.seq != seq) {
                    return; // a membership the client has left
                }
                self.edge_frame(conn, Utf8Bytes::from(frame), relay_from, now, shared);
            }
            NodeMessage::Notice { conn, frame } => {
                self.edge_frame(conn, Utf8Bytes::from(frame), None, now, shared);
            }
            NodeMessage::Refused {
                conn,
                seq,
                code,
                message,
            } => {
                if cluster.unroute(conn, seq) {
                    self.edge_frame(conn, error_frame(code, &message), None, now, shared);
                }
            }
            NodeMessage::NotHome {
                conn,
                seq,
                join,
                tries,
            } => {
                if !cluster.unroute(conn, seq) {
                    return;
                }
                cluster.forget_home(&join.name);
                // `tries` comes from another node: never trusted to be small.
                let tries = tries.saturating_add(1);
                if tries >= MAX_HOME_TRIES {
                    cluster.counters_mut().unavailable += 1;
                    let frame = error_frame(
                        ErrorCode::Unavailable,
                        "could not find the server that holds this room; try again",
                    );
                    self.edge_frame(conn, frame, None, now, shared);
                } else {
                    cluster.wait_for_home(conn, join, tries);
                    shared.broker_wake.notify_one();
                }
            }
            NodeMessage::Released { conn, seq } => {
                cluster.unroute(conn, seq);
            }
            NodeMessage::Probe { conn, seq } => {
                if cluster.route(conn).is_some_and(|r| r.seq == seq) {
                    if let Some(queue) = self.conns.get_mut(&conn) {
                        queue.request_probe();
                    }
                }
            }
        }
    }

    /// Another node's client joins a room here.
    fn remote_join_here(&mut self, remote: RemoteJoin, shared: &Shared) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let RemoteJoin {
            node,
            conn,
            seq,
            mut join,
            ..
        } = remote;
        let id = cluster.member_id(node, conn, seq, &mut self.next_conn);
        join.received_at = StdInstant::now();
        let mut mine = Vec::new();
        let res = self.join_here(id, join, &mut mine, shared);
        self.send_member_frames(id, mine);
        if let Err((code, message)) = res {
            if !self.rooms.is_member(id) {
                if let Some(cluster) = &mut self.cluster {
                    cluster.drop_member(id);
                    cluster.send(
                        node,
                        NodeMessage::Refused {
                            conn,
                            seq,
                            code,
                            message,
                        },
                    );
                }
            }
        }
    }

    /// The frames a rooms operation had for remote member `id` itself.
    fn send_member_frames(&mut self, id: ConnId, frames: Vec<Utf8Bytes>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let Some(member) = cluster.remote_member(id) else {
            return;
        };
        for frame in frames {
            cluster.deliver_to(member, frame.as_str(), None);
        }
        self.touched.push(id);
    }

    /// A frame from another node for client `conn` of this node.
    fn edge_frame(
        &mut self,
        conn: ConnId,
        text: Utf8Bytes,
        relay_from: Option<(NodeId, ConnId)>,
        now: Instant,
        shared: &Shared,
    ) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let queued = self.queue_frame(conn, text, relay_from.is_some(), now, shared);
        let busy = match queued {
            Queued::Yes => false,
            Queued::Busy => true,
            Queued::Lost { busy } => {
                self.client_gone(conn, shared);
                busy
            }
        };
        if let (true, Some((node, sender))) = (busy, relay_from) {
            let frame = super::peer_busy_frame();
            if node == self.cluster.as_ref().map_or(node, ClusterTable::me) {
                let _ = self.queue_frame(sender, frame, false, now, shared);
            } else {
                self.send_to(
                    node,
                    NodeMessage::Notice {
                        conn: sender,
                        frame: frame.as_str().to_owned(),
                    },
                    shared,
                );
            }
        }
    }

    /// The broker found `name`'s home: the joins that waited for it go on.
    pub(super) fn on_found(&mut self, name: &str, found: Found, shared: &Shared) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let waiting = cluster.take_waiting(name);
        let remote_waiting = cluster.take_remote_waiting(name);
        match &found {
            Found::Here { revision, takeover } => cluster.claimed(name, *revision, *takeover),
            Found::Node(_) => {}
            Found::Unavailable(why) => {
                tracing::warn!("signaling cluster: no home for room `{name}`: {why}");
                cluster.counters_mut().unavailable += waiting.len() as u64;
            }
        }
        let now = Instant::now();
        for wait in waiting {
            match &found {
                Found::Here { .. } => {
                    let mut mine = Vec::new();
                    let res = self.join_here(wait.conn, wait.join, &mut mine, shared);
                    if let Err((code, message)) = res {
                        mine.push(error_frame(code, &message));
                    }
                    for frame in mine {
                        let _ = self.queue_frame(wait.conn, frame, false, now, shared);
                    }
                }
                Found::Node(node) => {
                    if let Some(cluster) = &mut self.cluster {
                        cluster.route_join(wait.conn, *node, wait.join, wait.tries);
                    }
                }
                Found::Unavailable(_) => {
                    let frame = error_frame(
                        ErrorCode::Unavailable,
                        "this server cannot reach the rest of its cluster now; try again or \
                         another server",
                    );
                    let _ = self.queue_frame(wait.conn, frame, false, now, shared);
                }
            }
        }
        for remote in remote_waiting {
            if matches!(found, Found::Here { .. }) {
                self.remote_join_here(remote, shared);
            } else if let Some(cluster) = &mut self.cluster {
                cluster.send(remote.node, not_home(remote));
            }
        }
        self.settle_members();
    }

    /// After the broker came back, another node holds `name` (it was taken
    /// over while we were cut off): new joins go there; members of our rooms
    /// of it still filling are told `room_lost` (nobody can join them any
    /// more); running matches keep their members.
    pub(super) fn on_claim_lost(&mut self, name: &str, shared: &Shared) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.lost_claim(name);
        let conns = self.rooms.close_filling(name);
        let frame = error_frame(
            ErrorCode::RoomLost,
            "another server holds this room name now (this one was cut off from its cluster); \
             join again",
        );
        let now = Instant::now();
        for conn in conns {
            if self.conns.contains_key(&conn) {
                let _ = self.queue_frame(conn, frame.clone(), false, now, shared);
            } else if let Some(cluster) = &mut self.cluster {
                if let Some(member) = cluster.drop_member(conn) {
                    cluster.deliver_to(member, frame.as_str(), None);
                    cluster.send(
                        member.node,
                        NodeMessage::Released {
                            conn: member.conn,
                            seq: member.seq,
                        },
                    );
                }
            }
            if let Some(cluster) = &mut self.cluster {
                cluster.counters_mut().rooms_lost += 1;
            }
        }
        shared.broker_wake.notify_one();
    }

    /// Nodes found dead: their members leave the rooms here (their seats held
    /// for a rejoin), and this node's clients in rooms that lived there are
    /// told `room_lost`.
    pub(super) fn on_nodes_dead(&mut self, nodes: &[NodeId], shared: &Shared) {
        let now = Instant::now();
        for &node in nodes {
            let Some(cluster) = &mut self.cluster else {
                return;
            };
            tracing::warn!("signaling cluster: node {node:016x} is gone");
            let members = cluster.members_of(node);
            let lost = cluster.unroute_node(node);
            for id in members {
                if let Some(cluster) = &mut self.cluster {
                    cluster.drop_member(id);
                }
                let mut out = Vec::new();
                let _ = self
                    .rooms
                    .disconnect(id, std::time::Instant::now(), &mut out);
                self.deliver(id, out, &mut Vec::new(), shared);
            }
            for conn in lost {
                let frame = error_frame(
                    ErrorCode::RoomLost,
                    "the server that held this room went away; WebRTC connections already \
                     up are not affected",
                );
                let _ = self.queue_frame(conn, frame, false, now, shared);
            }
        }
        self.settle_members();
    }
}
