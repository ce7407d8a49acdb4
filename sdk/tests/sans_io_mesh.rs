//! The transport's sans-IO cores composed, on simulated time: three members, each a
//! `MeshPlan` with one `LinkProtocol` per attempt, over a stand-in for WebRTC that
//! opens a pair's channels once offer and answer have crossed, delivers messages
//! after 1 ms and loses the first message on every channel (as webrtc-rs does when
//! a message arrives with the last SCTP handshake packet). This is the work a
//! backend's driver does, minus the real sockets: the browser backend drives the
//! same cores. A member can be frozen (a suspended process, or every packet of a
//! player dropped): its timers stop, frames to and from it are lost, and signals
//! (TCP to the signaling server) wait until it runs again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rtcplay::signaling::SignalData;
use rtcplay::transport::link_protocol::{Incoming, LinkAction, LinkProtocol, LinkTimers};
use rtcplay::transport::mesh_plan::{MeshAction, MeshPlan, MeshSettings};
use rtcplay::transport::wire::WireFrame;
use rtcplay::transport::{
    Channel, DisconnectReason, PeerId, SocketConfig, SocketEvent, TransportError,
};

const MS: Duration = Duration::from_millis(1);
const LATENCY: Duration = MS;
/// From offer/answer crossing to both channels open (ICE, DTLS, SCTP).
const SETUP: Duration = Duration::from_millis(8);

/// One member: its plan, its links, what the game was told.
struct Member {
    id: PeerId,
    plan: MeshPlan,
    /// The current attempt to each remote: (number, protocol).
    links: BTreeMap<PeerId, (u32, LinkProtocol)>,
    config: SocketConfig,
    events: Vec<(Duration, SocketEvent)>,
    /// Game payloads received: (from, bytes).
    received: Vec<(PeerId, Vec<u8>)>,
    alive: bool,
}

/// One side of an attempt: the member and its attempt number.
type Side = (PeerId, u32);

/// Something in flight between members.
enum Wire {
    Signal(SignalData),
    Frame(Channel, Vec<u8>),
}

struct World {
    now: Duration,
    members: Vec<Member>,
    /// (deliver at, from, to, what).
    in_flight: Vec<(Duration, PeerId, PeerId, Wire)>,
    /// Pairs whose channels open at this time: (offerer, its attempt number),
    /// (answerer, its attempt number).
    opening: Vec<(Duration, Side, Side)>,
    /// Directed channels that have carried a message (the first one is lost).
    used: BTreeSet<(PeerId, PeerId, u8)>,
}

fn config(players: u8) -> SocketConfig {
    let mut config = SocketConfig::new("ws://simulated", "mesh", players);
    config.restart_after = Duration::from_millis(1500);
    config.disconnect_timeout = Duration::from_secs(8);
    config
}

impl World {
    fn new(players: u8) -> World {
        let mut members = Vec::new();
        let mut start_actions = Vec::new();
        for id in 1..=u32::from(players) {
            let config = config(players);
            let mut out = Vec::new();
            let plan = MeshPlan::new(MeshSettings::from(&config), PeerId(id), false, &mut out);
            start_actions.push(out);
            members.push(Member {
                id: PeerId(id),
                plan,
                links: BTreeMap::new(),
                config,
                events: Vec::new(),
                received: Vec::new(),
                alive: true,
            });
        }
        let mut world = World {
            now: Duration::ZERO,
            members,
            in_flight: Vec::new(),
            opening: Vec::new(),
            used: BTreeSet::new(),
        };
        for (i, out) in start_actions.into_iter().enumerate() {
            world.mesh_actions(i, out);
        }
        world
    }

    fn index(&self, id: PeerId) -> usize {
        (id.0 - 1) as usize
    }

    /// Everyone has joined: the server says the room is full.
    fn room_full(&mut self) {
        let players: Vec<PeerId> = self.members.iter().map(|m| m.id).collect();
        for i in 0..self.members.len() {
            let mut out = Vec::new();
            let now = self.now;
            self.members[i]
                .plan
                .room_full(now, players.clone(), &mut out);
            self.mesh_actions(i, out);
        }
    }

    fn mesh_actions(&mut self, i: usize, actions: Vec<MeshAction>) {
        let me = self.members[i].id;
        for action in actions {
            match action {
                MeshAction::Start(spec) => {
                    let timers =
                        LinkTimers::from_config(&self.members[i].config, spec.handshake_timeout);
                    self.members[i].links.insert(
                        spec.remote,
                        (spec.number, LinkProtocol::new(timers, self.now)),
                    );
                    if spec.offerer {
                        let offer = SignalData::Offer {
                            sdp: format!("offer {}", spec.number),
                        };
                        self.in_flight.push((
                            self.now + LATENCY,
                            me,
                            spec.remote,
                            Wire::Signal(offer),
                        ));
                    }
                }
                MeshAction::Signal { remote, data } => {
                    let Some(&(mine, _)) = self.members[i].links.get(&remote) else {
                        continue;
                    };
                    match data {
                        // The answerer's attempt answers; the pair's channels open
                        // once the answer has reached the offerer.
                        SignalData::Offer { sdp } => {
                            let answer = SignalData::Answer {
                                sdp: format!("{sdp} answer {mine}"),
                            };
                            self.in_flight.push((
                                self.now + LATENCY,
                                me,
                                remote,
                                Wire::Signal(answer),
                            ));
                        }
                        SignalData::Answer { sdp } => {
                            // "offer N answer M": an answer to another of our
                            // offers opens nothing.
                            let numbers: Vec<u32> = sdp
                                .split(' ')
                                .filter_map(|word| word.parse().ok())
                                .collect();
                            if numbers[0] == mine {
                                self.opening.push((
                                    self.now + SETUP,
                                    (me, mine),
                                    (remote, numbers[1]),
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                MeshAction::SendSignal { remote, data } => {
                    self.in_flight
                        .push((self.now + LATENCY, me, remote, Wire::Signal(data)));
                }
                MeshAction::Close(peer) => {
                    self.members[i].links.remove(&peer);
                }
                // The simulated signaling server never goes away: probes pass.
                MeshAction::Unlink(_) | MeshAction::ProbeSignaling => {}
                MeshAction::Event(event) => self.members[i].events.push((self.now, event)),
            }
        }
    }

    fn link_actions(&mut self, i: usize, remote: PeerId, actions: Vec<LinkAction>) {
        let me = self.members[i].id;
        let mut mesh = Vec::new();
        for action in actions {
            match action {
                LinkAction::Send(channel, bytes) => {
                    self.in_flight.push((
                        self.now + LATENCY,
                        me,
                        remote,
                        Wire::Frame(channel, bytes),
                    ));
                }
                LinkAction::PeerReady | LinkAction::SetupDone => {}
                LinkAction::Connected => self.members[i].plan.attempt_connected(remote, &mut mesh),
                LinkAction::Disconnected(reason) => {
                    let now = self.now;
                    self.members[i]
                        .plan
                        .attempt_disconnected(now, remote, reason, &mut mesh);
                }
                LinkAction::Failed(_) => {
                    let now = self.now;
                    self.members[i].plan.attempt_failed(
                        now,
                        remote,
                        TransportError::HandshakeTimeout(remote),
                        true,
                        &mut mesh,
                    );
                }
            }
        }
        self.mesh_actions(i, mesh);
    }

    /// Advance one millisecond: deliver, open channels, run the links' timers.
    fn step(&mut self) {
        self.now += MS;
        let now = self.now;
        // Channels opening on both sides of a pair.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.opening)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.opening = later;
        for (_, a, b) in due {
            for ((me, number), (remote, _)) in [(a, b), (b, a)] {
                let i = self.index(me);
                let mut out = Vec::new();
                if let Some((_, link)) = self.members[i]
                    .links
                    .get_mut(&remote)
                    .filter(|(current, _)| *current == number)
                {
                    for channel in [Channel::Unreliable, Channel::Reliable] {
                        link.channel_open(now, channel, &mut out);
                    }
                }
                self.link_actions(i, remote, out);
            }
        }
        // Deliveries.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _, _, _)| *at <= now);
        self.in_flight = later;
        for (at, from, to, wire) in due {
            let i = self.index(to);
            if !self.members[i].alive || !self.members[self.index(from)].alive {
                // Signals go over TCP: held until both ends run again. Frames go
                // over UDP: lost.
                if matches!(wire, Wire::Signal(_)) {
                    self.in_flight.push((at, from, to, wire));
                }
                continue;
            }
            match wire {
                Wire::Signal(data) => {
                    let mut out = Vec::new();
                    self.members[i].plan.signal(now, from, data, &mut out);
                    self.mesh_actions(i, out);
                }
                Wire::Frame(channel, bytes) => {
                    let key = (from, to, channel as u8);
                    if self.used.insert(key) {
                        continue; // the first message on a fresh channel is lost
                    }
                    let mut out = Vec::new();
                    let Some((_, link)) = self.members[i].links.get_mut(&from) else {
                        continue;
                    };
                    if let Incoming::Data(payload) = link.message(now, channel, &bytes, &mut out) {
                        self.members[i].received.push((from, payload.to_vec()));
                    }
                    self.link_actions(i, from, out);
                }
            }
        }
        // Timers.
        for i in 0..self.members.len() {
            if !self.members[i].alive {
                continue;
            }
            if self.members[i].plan.next_wakeup().is_some_and(|t| t <= now) {
                let mut out = Vec::new();
                self.members[i].plan.poll(now, &mut out);
                self.mesh_actions(i, out);
            }
            let remotes: Vec<PeerId> = self.members[i].links.keys().copied().collect();
            for remote in remotes {
                let mut out = Vec::new();
                if let Some((_, link)) = self.members[i].links.get_mut(&remote) {
                    if link.next_wakeup().is_some_and(|t| t <= now) {
                        link.poll(now, &mut out);
                    }
                }
                self.link_actions(i, remote, out);
            }
        }
    }

    /// Member `i` sends a game payload to `to` on the reliable channel.
    fn send_data(&mut self, i: usize, to: PeerId, payload: &[u8]) {
        let me = self.members[i].id;
        let frame = WireFrame::Data(payload).encode();
        self.in_flight.push((
            self.now + LATENCY,
            me,
            to,
            Wire::Frame(Channel::Reliable, frame),
        ));
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) {
        while !done(self) {
            assert!(self.now < limit, "not done after {limit:?}");
            self.step();
        }
    }
}

fn saw(member: &Member, event: &SocketEvent) -> bool {
    member.events.iter().any(|(_, e)| e == event)
}

#[test]
fn three_members_connect_through_the_cores_and_a_silent_one_is_dropped() {
    let mut world = World::new(3);
    world.room_full();
    world.run_until(Duration::from_secs(2), |w| {
        w.members.iter().all(|m| saw(m, &SocketEvent::AllConnected))
    });
    // Every pair connected despite every channel's first message being lost: the
    // hellos were repeated (1 ms, then every 5 ms).
    let connected_at = world.now;
    assert!(connected_at < Duration::from_millis(40), "{connected_at:?}");
    for member in &world.members {
        for other in &world.members {
            if other.id != member.id {
                assert!(
                    saw(member, &SocketEvent::PeerConnected(other.id)),
                    "{}",
                    member.id
                );
            }
        }
        let all = member
            .events
            .iter()
            .filter(|(_, e)| *e == SocketEvent::AllConnected)
            .count();
        assert_eq!(all, 1);
    }

    // Member 3 goes silent for good (a pulled cable): 1 and 2 notice by their
    // pings' silence check after restart_after, try to restart the link, and give
    // it up disconnect_timeout later; they keep each other.
    world.members[2].alive = false;
    let silent_from = world.now;
    let config = config(3);
    world.run_until(Duration::from_secs(20), |w| {
        w.members[..2].iter().all(|m| {
            saw(
                m,
                &SocketEvent::PeerDisconnected {
                    peer: PeerId(3),
                    reason: DisconnectReason::Timeout,
                },
            )
        })
    });
    let detected = world.now - silent_from;
    let budget = config.restart_after + config.disconnect_timeout;
    assert!(detected >= budget, "{detected:?}");
    assert!(
        detected <= budget + config.ping_interval + 10 * MS,
        "{detected:?}"
    );
    for member in &world.members[..2] {
        let reconnecting = member
            .events
            .iter()
            .find(|(_, e)| *e == SocketEvent::PeerReconnecting(PeerId(3)))
            .map(|(at, _)| *at - silent_from)
            .expect("reconnecting first");
        assert!(reconnecting >= config.restart_after, "{reconnecting:?}");
    }
    // 1 and 2 stay connected (their pings keep each other alive) and still talk.
    for _ in 0..5000 {
        world.step();
    }
    for member in &world.members[..2] {
        let dropped = member.events.iter().any(
            |(_, e)| matches!(e, SocketEvent::PeerDisconnected { peer, .. } if *peer != PeerId(3)),
        );
        assert!(!dropped, "{}: {:?}", member.id, member.events);
    }
    world.send_data(0, PeerId(2), b"still here");
    for _ in 0..5 {
        world.step();
    }
    assert_eq!(
        world.members[1].received,
        vec![(PeerId(1), b"still here".to_vec())]
    );
}

/// Freeze one member for `outage`, then let it run again: every link to it must
/// come back without a disconnect, and carry data both ways.
fn outage_is_survived(frozen: usize, outage: Duration) {
    let mut world = World::new(3);
    world.room_full();
    world.run_until(Duration::from_secs(2), |w| {
        w.members.iter().all(|m| saw(m, &SocketEvent::AllConnected))
    });
    world.members[frozen].alive = false;
    for _ in 0..outage.as_millis() {
        world.step();
    }
    world.members[frozen].alive = true;
    let back = world.now;
    let id = world.members[frozen].id;
    world.run_until(back + Duration::from_secs(10), |w| {
        w.members
            .iter()
            .filter(|m| m.id != id)
            .all(|m| saw(m, &SocketEvent::PeerReconnected(id)))
    });
    let restored = world.now - back;
    // The member's own links notice the silence at their next ping (within
    // ping_interval) and the fresh connections take one setup.
    assert!(restored < Duration::from_secs(1), "{restored:?}");
    for member in &world.members {
        let gone = member
            .events
            .iter()
            .filter(|(_, e)| matches!(e, SocketEvent::PeerDisconnected { .. }))
            .count();
        assert_eq!(gone, 0, "{}: {:?}", member.id, member.events);
    }
    // Let every side finish its handshake, then talk both ways.
    for _ in 0..100 {
        world.step();
    }
    for other in 0..3 {
        if other != frozen {
            let other_id = world.members[other].id;
            world.send_data(frozen, other_id, b"back");
            world.send_data(other, id, b"welcome back");
        }
    }
    for _ in 0..5 {
        world.step();
    }
    for (i, member) in world.members.iter().enumerate() {
        let got: Vec<&[u8]> = member
            .received
            .iter()
            .map(|(_, bytes)| bytes.as_slice())
            .collect();
        let expected: &[u8] = if i == frozen {
            b"welcome back"
        } else {
            b"back"
        };
        assert_eq!(
            got,
            vec![expected; if i == frozen { 2 } else { 1 }],
            "{}",
            member.id
        );
    }
    eprintln!("outage {outage:?} of member {id}: links restored {restored:?} after it came back");
}

#[test]
fn a_frozen_member_with_the_highest_id_comes_back_without_a_disconnect() {
    outage_is_survived(2, Duration::from_secs(2));
    outage_is_survived(2, Duration::from_secs(6));
}

#[test]
fn a_frozen_member_with_the_lowest_id_comes_back_without_a_disconnect() {
    outage_is_survived(0, Duration::from_secs(2));
    outage_is_survived(0, Duration::from_secs(6));
}
