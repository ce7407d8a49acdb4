//! Who is where in a cluster of signaling nodes, free of sockets and of the
//! broker: the names homed here, where this node's clients' rooms live, the
//! remote members of the rooms here, which nodes are alive, and the messages
//! waiting to be published. The server's state holds one, behind its mutex.

// The broker task that drives these is built only with the `cluster` feature.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::wire::{NodeId, NodeMessage};
use super::ClusterStats;
use crate::signaling::rooms::{ConnId, JoinRequest};

/// Messages waiting for the broker at most (all nodes together); further ones
/// are dropped and counted (`dropped_out`) while the broker is unreachable.
pub(crate) const MAX_OUTBOUND: usize = 65_536;

/// Times a join is sent to a node that turns out not to be its name's home
/// before the client is told `unavailable`.
pub(crate) const MAX_HOME_TRIES: u8 = 3;

/// Where a room name's rooms live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    /// On this node.
    Here,
    /// On that node, as last learned.
    Node(NodeId),
    /// Not known: the claims bucket must be asked.
    Unknown,
}

/// A name homed here: the revision of our claim in the bucket.
#[derive(Debug, Clone, Copy)]
struct Claim {
    revision: u64,
    /// Since when the name has had no room.
    idle_since: Option<Instant>,
}

/// A client of this node in (or joining) a room homed elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub home: NodeId,
    pub seq: u32,
}

/// A member of a room here whose connection is on another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemoteMember {
    pub node: NodeId,
    pub conn: ConnId,
    pub seq: u32,
}

/// A join waiting for its name's home to be found.
#[derive(Debug)]
pub(crate) struct WaitingJoin {
    pub conn: ConnId,
    pub join: JoinRequest,
    pub tries: u8,
}

/// A join another node forwarded, held until this node knows whether it holds
/// the name.
#[derive(Debug)]
pub(crate) struct RemoteJoin {
    pub node: NodeId,
    pub conn: ConnId,
    pub seq: u32,
    pub join: JoinRequest,
    pub tries: u8,
}

/// The cluster part of a node's state.
#[derive(Debug)]
pub(crate) struct ClusterTable {
    me: NodeId,
    node_timeout: Duration,
    release_after: Duration,
    homed: HashMap<String, Claim>,
    /// Edge: the home of names this node's clients joined lately.
    homes: HashMap<String, NodeId>,
    routes: HashMap<ConnId, Route>,
    next_seq: u32,
    waiting: HashMap<String, Vec<WaitingJoin>>,
    waiting_conns: HashSet<ConnId>,
    /// Joins other nodes sent for a name this node is finding the home of
    /// (they may have found our claim before we did).
    remote_waiting: HashMap<String, Vec<RemoteJoin>>,
    to_resolve: Vec<String>,
    /// Home: remote members by the id they have in the rooms here.
    members: HashMap<ConnId, RemoteMember>,
    member_ids: HashMap<(NodeId, ConnId, u32), ConnId>,
    outbound: HashMap<NodeId, Vec<NodeMessage>>,
    outbound_len: usize,
    to_release: Vec<(String, u64)>,
    /// When each other node was last heard.
    nodes: HashMap<NodeId, Instant>,
    broker_up_since: Option<Instant>,
    counters: ClusterStats,
}

impl ClusterTable {
    pub(crate) fn new(me: NodeId, node_timeout: Duration, release_after: Duration) -> Self {
        Self {
            me,
            node_timeout,
            release_after,
            homed: HashMap::new(),
            homes: HashMap::new(),
            routes: HashMap::new(),
            next_seq: 0,
            waiting: HashMap::new(),
            waiting_conns: HashSet::new(),
            remote_waiting: HashMap::new(),
            to_resolve: Vec::new(),
            members: HashMap::new(),
            member_ids: HashMap::new(),
            outbound: HashMap::new(),
            outbound_len: 0,
            to_release: Vec::new(),
            nodes: HashMap::new(),
            broker_up_since: None,
            counters: ClusterStats {
                node: me,
                ..ClusterStats::default()
            },
        }
    }

    pub(crate) fn me(&self) -> NodeId {
        self.me
    }

    /// Where `name`'s rooms live, as far as this node knows.
    pub(crate) fn home_of(&self, name: &str) -> Home {
        if self.homed.contains_key(name) {
            Home::Here
        } else if let Some(&node) = self.homes.get(name) {
            Home::Node(node)
        } else {
            Home::Unknown
        }
    }

    /// The client is in (or joining) a room, here or elsewhere, as the edge
    /// knows it (rooms here answer for themselves).
    pub(crate) fn is_busy(&self, conn: ConnId) -> bool {
        self.routes.contains_key(&conn) || self.waiting_conns.contains(&conn)
    }

    /// Hold `join` until `name`'s home is known (the driver asks the bucket).
    pub(crate) fn wait_for_home(&mut self, conn: ConnId, join: JoinRequest, tries: u8) {
        let name = join.name.clone();
        self.waiting_conns.insert(conn);
        let list = self.waiting.entry(name.clone()).or_default();
        if list.is_empty() {
            self.to_resolve.push(name);
        }
        list.push(WaitingJoin { conn, join, tries });
    }

    /// Whether this node is asking the bucket for `name`'s home right now.
    pub(crate) fn is_resolving(&self, name: &str) -> bool {
        self.waiting.contains_key(name)
    }

    /// Hold another node's join for `name` until our own lookup is answered.
    pub(crate) fn hold_remote_join(&mut self, join: RemoteJoin) {
        self.remote_waiting
            .entry(join.join.name.clone())
            .or_default()
            .push(join);
    }

    /// Other nodes' joins held for `name`.
    pub(crate) fn take_remote_waiting(&mut self, name: &str) -> Vec<RemoteJoin> {
        self.remote_waiting.remove(name).unwrap_or_default()
    }

    /// Names whose home the driver must find.
    pub(crate) fn take_to_resolve(&mut self) -> Vec<String> {
        std::mem::take(&mut self.to_resolve)
    }

    /// The joins that waited for `name`'s home, from clients still connected.
    pub(crate) fn take_waiting(&mut self, name: &str) -> Vec<WaitingJoin> {
        let list = self.waiting.remove(name).unwrap_or_default();
        list.into_iter()
            .filter(|w| self.waiting_conns.remove(&w.conn))
            .collect()
    }

    /// The client's connection closed: forget its waiting join and route.
    pub(crate) fn forget_client(&mut self, conn: ConnId) -> Option<Route> {
        self.waiting_conns.remove(&conn);
        self.routes.remove(&conn)
    }

    /// This node now holds `name`'s claim at `revision`.
    pub(crate) fn claimed(&mut self, name: &str, revision: u64, takeover: bool) {
        self.homes.remove(name);
        self.homed.insert(
            name.to_owned(),
            Claim {
                revision,
                idle_since: None,
            },
        );
        self.counters.claims += 1;
        if takeover {
            self.counters.takeovers += 1;
        }
    }

    /// Our claim of `name` is someone else's now (found after the broker came
    /// back): new joins go to the name's real home; the rooms here live on.
    pub(crate) fn lost_claim(&mut self, name: &str) {
        self.homed.remove(name);
    }

    /// Our claim of `name` was renewed at `revision` (after the broker came back).
    pub(crate) fn renewed(&mut self, name: &str, revision: u64) {
        if let Some(claim) = self.homed.get_mut(name) {
            claim.revision = revision;
        }
    }

    /// Every name homed here with its claim's revision.
    pub(crate) fn claims(&self) -> Vec<(String, u64)> {
        self.homed
            .iter()
            .map(|(name, claim)| (name.clone(), claim.revision))
            .collect()
    }

    /// Send `join` to `home` for the client: it is routed there from now on.
    pub(crate) fn route_join(&mut self, conn: ConnId, home: NodeId, join: JoinRequest, tries: u8) {
        self.next_seq = self.next_seq.wrapping_add(1);
        let seq = self.next_seq;
        self.homes.insert(join.name.clone(), home);
        self.routes.insert(conn, Route { home, seq });
        self.send(
            home,
            NodeMessage::Join {
                conn,
                seq,
                join,
                tries,
            },
        );
    }

    pub(crate) fn route(&self, conn: ConnId) -> Option<Route> {
        self.routes.get(&conn).copied()
    }

    /// End the client's route if it is still membership `seq`.
    pub(crate) fn unroute(&mut self, conn: ConnId, seq: u32) -> bool {
        if self.routes.get(&conn).is_some_and(|r| r.seq == seq) {
            self.routes.remove(&conn);
            true
        } else {
            false
        }
    }

    /// `name`'s home as learned was wrong.
    pub(crate) fn forget_home(&mut self, name: &str) {
        self.homes.remove(name);
    }

    /// Queue a message for `node` (dropped and counted beyond [`MAX_OUTBOUND`]).
    pub(crate) fn send(&mut self, node: NodeId, message: NodeMessage) {
        if self.outbound_len >= MAX_OUTBOUND {
            self.counters.dropped_out += 1;
            return;
        }
        self.outbound_len += 1;
        self.outbound.entry(node).or_default().push(message);
    }

    /// Queue a frame for remote member `member` (to its node).
    pub(crate) fn deliver_to(
        &mut self,
        member: RemoteMember,
        frame: &str,
        relay_from: Option<(NodeId, ConnId)>,
    ) {
        self.send(
            member.node,
            NodeMessage::Deliver {
                conn: member.conn,
                seq: member.seq,
                frame: frame.to_owned(),
                relay_from,
            },
        );
    }

    /// Whether messages wait for the broker.
    pub(crate) fn has_outbound(&self) -> bool {
        self.outbound_len > 0 || !self.to_resolve.is_empty() || !self.to_release.is_empty()
    }

    /// The messages to publish, per node.
    pub(crate) fn take_outbound(&mut self) -> HashMap<NodeId, Vec<NodeMessage>> {
        self.outbound_len = 0;
        std::mem::take(&mut self.outbound)
    }

    /// The id the rooms here give a remote member (a new one from `next_id`).
    pub(crate) fn member_id(
        &mut self,
        node: NodeId,
        conn: ConnId,
        seq: u32,
        next_id: &mut ConnId,
    ) -> ConnId {
        if let Some(&id) = self.member_ids.get(&(node, conn, seq)) {
            return id;
        }
        let id = *next_id;
        *next_id += 1;
        self.member_ids.insert((node, conn, seq), id);
        self.members.insert(id, RemoteMember { node, conn, seq });
        id
    }

    /// The id a remote member already has here.
    pub(crate) fn known_member(&self, node: NodeId, conn: ConnId, seq: u32) -> Option<ConnId> {
        self.member_ids.get(&(node, conn, seq)).copied()
    }

    pub(crate) fn remote_member(&self, id: ConnId) -> Option<RemoteMember> {
        self.members.get(&id).copied()
    }

    pub(crate) fn drop_member(&mut self, id: ConnId) -> Option<RemoteMember> {
        let member = self.members.remove(&id)?;
        self.member_ids
            .remove(&(member.node, member.conn, member.seq));
        Some(member)
    }

    /// A heartbeat (or any message) from `node`.
    pub(crate) fn heard(&mut self, node: NodeId, now: Instant) {
        if node != self.me {
            self.nodes.insert(node, now);
        }
    }

    /// Whether `node` counts as alive: heard within the node timeout, or this
    /// node's broker connection is too young to tell.
    pub(crate) fn alive(&self, node: NodeId, now: Instant) -> bool {
        node == self.me
            || !self.can_judge(now)
            || self
                .nodes
                .get(&node)
                .is_some_and(|heard| now.saturating_duration_since(*heard) < self.node_timeout)
    }

    fn can_judge(&self, now: Instant) -> bool {
        self.broker_up_since
            .is_some_and(|up| now.saturating_duration_since(up) >= self.node_timeout)
    }

    /// Nodes found dead now: not heard for the node timeout (judged only while
    /// the broker connection has been up that long), and nodes never heard
    /// that routes or members point to.
    pub(crate) fn take_dead(&mut self, now: Instant) -> Vec<NodeId> {
        if !self.can_judge(now) {
            return Vec::new();
        }
        let timeout = self.node_timeout;
        let mut dead: HashSet<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, heard)| now.saturating_duration_since(**heard) >= timeout)
            .map(|(&node, _)| node)
            .collect();
        let unknown = |node: &NodeId| *node != self.me && !self.nodes.contains_key(node);
        dead.extend(self.routes.values().map(|r| r.home).filter(unknown));
        dead.extend(self.members.values().map(|m| m.node).filter(unknown));
        for node in &dead {
            self.nodes.remove(node);
            let dropped = self.outbound.remove(node).map_or(0, |q| q.len());
            self.outbound_len = self.outbound_len.saturating_sub(dropped);
        }
        dead.into_iter().collect()
    }

    /// The clients routed to `node` (which died): no longer routed.
    pub(crate) fn unroute_node(&mut self, node: NodeId) -> Vec<ConnId> {
        self.homes.retain(|_, home| *home != node);
        let conns: Vec<ConnId> = self
            .routes
            .iter()
            .filter(|(_, r)| r.home == node)
            .map(|(&c, _)| c)
            .collect();
        for conn in &conns {
            self.routes.remove(conn);
        }
        self.counters.rooms_lost += conns.len() as u64;
        conns
    }

    /// The ids of the members from `node`.
    pub(crate) fn members_of(&self, node: NodeId) -> Vec<ConnId> {
        self.members
            .iter()
            .filter(|(_, m)| m.node == node)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The broker connection is up (again) since `now`.
    pub(crate) fn broker_up(&mut self, now: Instant) {
        if self.broker_up_since.is_none() {
            self.broker_up_since = Some(now);
        }
        self.counters.broker_connected = true;
    }

    /// Whether the broker connection is up now.
    pub(crate) fn broker_connected(&self) -> bool {
        self.counters.broker_connected
    }

    pub(crate) fn broker_down(&mut self) {
        if self.broker_up_since.take().is_some() {
            self.counters.broker_disconnects += 1;
        }
        self.counters.broker_connected = false;
    }

    /// Names without rooms for `release_after` stop being homed here; the
    /// driver deletes their claims ([`Self::take_releases`]).
    pub(crate) fn idle_names(&mut self, now: Instant, has_rooms: impl Fn(&str) -> bool) {
        let after = self.release_after;
        let mut released = Vec::new();
        for (name, claim) in &mut self.homed {
            if has_rooms(name) {
                claim.idle_since = None;
                continue;
            }
            let since = *claim.idle_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= after {
                released.push((name.clone(), claim.revision));
            }
        }
        for (name, _) in &released {
            self.homed.remove(name);
        }
        self.to_release.extend(released);
    }

    pub(crate) fn take_releases(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.to_release)
    }

    pub(crate) fn counters_mut(&mut self) -> &mut ClusterStats {
        &mut self.counters
    }

    /// The node's cluster figures now.
    pub(crate) fn stats(&self, now: Instant) -> ClusterStats {
        let alive = self
            .nodes
            .values()
            .filter(|heard| now.saturating_duration_since(**heard) < self.node_timeout)
            .count();
        ClusterStats {
            nodes: alive + 1,
            homed_names: self.homed.len(),
            remote_members: self.members.len(),
            routed_clients: self.routes.len(),
            ..self.counters
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::protocol::PROTOCOL_VERSION;
    use crate::signaling::rooms::tests::request;

    const TIMEOUT: Duration = Duration::from_secs(5);
    const S: Duration = Duration::from_secs(1);

    fn table() -> ClusterTable {
        ClusterTable::new(1, TIMEOUT, Duration::from_secs(30))
    }

    fn join(name: &str) -> JoinRequest {
        request(PROTOCOL_VERSION, name, 2)
    }

    #[test]
    fn nodes_are_judged_dead_only_while_the_broker_has_been_up_long_enough() {
        let mut t = table();
        let t0 = Instant::now();
        // Never connected: nobody can be judged.
        assert!(t.alive(7, t0 + 60 * S));
        assert!(t.take_dead(t0 + 60 * S).is_empty());
        t.broker_up(t0);
        t.heard(7, t0 + 2 * S);
        t.route_join(10, 8, join("r"), 0); // a node never heard from
                                           // Too soon after connecting to tell.
        assert!(t.alive(8, t0 + 4 * S));
        assert!(t.take_dead(t0 + 4 * S).is_empty());
        // Node 7 was heard 4 s ago: alive; node 8 never: dead.
        assert!(t.alive(7, t0 + 6 * S));
        assert!(!t.alive(8, t0 + 6 * S));
        assert_eq!(t.take_dead(t0 + 6 * S), vec![8]);
        assert_eq!(t.unroute_node(8), vec![10]);
        assert_eq!(t.home_of("r"), Home::Unknown);
        // Node 7 silent for the timeout: dead, once.
        assert_eq!(t.take_dead(t0 + 7 * S), vec![7]);
        assert!(t.take_dead(t0 + 8 * S).is_empty());
        // The broker went away: no judgement until it is back long enough.
        t.heard(9, t0 + 8 * S);
        t.broker_down();
        assert!(t.take_dead(t0 + 20 * S).is_empty());
        t.broker_up(t0 + 20 * S);
        assert!(t.take_dead(t0 + 22 * S).is_empty());
        assert_eq!(t.take_dead(t0 + 25 * S), vec![9]);
        assert_eq!(t.stats(t0 + 25 * S).broker_disconnects, 1);
    }

    #[test]
    fn routes_end_only_for_their_own_membership() {
        let mut t = table();
        t.route_join(5, 2, join("a"), 0);
        let first = t.route(5).expect("routed");
        assert_eq!(t.home_of("a"), Home::Node(2));
        assert!(t.is_busy(5));
        // The client left and joined again: the old membership's release
        // must not end the new one.
        assert!(t.unroute(5, first.seq));
        t.route_join(5, 2, join("b"), 0);
        assert!(!t.unroute(5, first.seq));
        assert!(t.route(5).is_some());
        let sent = t.take_outbound();
        assert_eq!(sent[&2].len(), 2, "two joins for node 2");
    }

    #[test]
    fn one_lookup_per_name_and_closed_clients_are_skipped() {
        let mut t = table();
        t.wait_for_home(1, join("x"), 0);
        t.wait_for_home(2, join("x"), 0);
        t.wait_for_home(3, join("y"), 0);
        assert_eq!(t.take_to_resolve(), vec!["x".to_owned(), "y".to_owned()]);
        assert!(t.is_resolving("x"));
        t.forget_client(2);
        let waiting: Vec<ConnId> = t.take_waiting("x").iter().map(|w| w.conn).collect();
        assert_eq!(waiting, vec![1]);
        assert!(!t.is_resolving("x"));
        t.claimed("x", 4, false);
        assert_eq!(t.home_of("x"), Home::Here);
        assert_eq!(t.claims(), vec![("x".to_owned(), 4)]);
    }

    #[test]
    fn the_outbound_queue_is_bounded() {
        let mut t = table();
        for conn in 0..=MAX_OUTBOUND as u64 {
            t.send(2, NodeMessage::Leave { conn, seq: 0 });
        }
        assert_eq!(t.stats(Instant::now()).dropped_out, 1);
        assert_eq!(t.take_outbound()[&2].len(), MAX_OUTBOUND);
        assert!(!t.has_outbound());
    }

    #[test]
    fn names_without_rooms_are_released_after_the_delay() {
        let mut t = table();
        let t0 = Instant::now();
        t.claimed("busy", 1, false);
        t.claimed("idle", 2, false);
        t.idle_names(t0, |name| name == "busy");
        t.idle_names(t0 + 29 * S, |name| name == "busy");
        assert!(t.take_releases().is_empty());
        t.idle_names(t0 + 30 * S, |name| name == "busy");
        assert_eq!(t.take_releases(), vec![("idle".to_owned(), 2)]);
        assert_eq!(t.home_of("idle"), Home::Unknown);
        assert_eq!(t.home_of("busy"), Home::Here);
    }
}
