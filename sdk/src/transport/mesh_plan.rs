//! Who connects to whom in a room, and how, sans-IO: the mesh plan every backend
//! follows between the signaling server and its peer connections.
//!
//! - players wait until the room is full, then connect to every other player; the
//!   member with the higher [`PeerId`] sends the offer;
//! - in a drop-in room the match starts with fewer players (`Seats` tells who
//!   holds which seat); a player who drops in later connects to every player
//!   listed in its `room_full`, and they connect to it on `dropped_in`;
//! - the room's first player (the host) also connects to every spectator; a
//!   spectator connects to the host only;
//! - signals that arrive before their attempt exists are held (at most
//!   [`MAX_EARLY_SIGNALS`] per sender) and handed over when it starts;
//! - with a TURN server known, a direct attempt gets `relay_fallback_after` and,
//!   when it fails (or the remote starts over with a second offer), a relay-only
//!   attempt gets what is left of the handshake timeout;
//! - a connected link that stalls is restarted, not given up (see [`recovery`]);
//! - the game hears `WaitingForPlayers`, `RoomFull`, `PeerConnected`,
//!   `SpectatorConnected`, `AllConnected` (once), `PeerReconnecting`,
//!   `PeerReconnected`, `PeerDisconnected`, `SignalingLost`,
//!   `SignalingResumed` and errors;
//! - a member whose signaling connection moved to another node of a cluster
//!   (`peer_resumed`) keeps its connections.
//!
//! A driver feeds in what the signaling server says and what its connection
//! attempts report, with the time, and carries out the [`MeshAction`]s: start or
//! close an attempt, hand it a signal, tell the game. No clock, no sockets, no
//! tasks: the rules are unit-tested on simulated time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::datagram::PeerId;
use crate::signaling::{ServerMessage, SignalData};

use super::{DisconnectReason, SocketConfig, SocketEvent, TransportError};

pub mod recovery;

use recovery::Recovery;

/// Signals held per sender whose attempt has not started yet.
pub const MAX_EARLY_SIGNALS: usize = 64;

/// What the plan needs from the socket's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshSettings {
    /// Players in the room.
    pub players: u8,
    /// We watch the match instead of playing.
    pub spectator: bool,
    /// Relay candidates only, from the first attempt.
    pub relay_only: bool,
    /// A peer must be connected within this long of the first attempt.
    pub handshake_timeout: Duration,
    /// With a TURN server known: how long the direct attempt gets.
    pub relay_fallback_after: Duration,
    /// How long a stalled link may take to come back before the peer is given up.
    pub disconnect_timeout: Duration,
}

impl From<&SocketConfig> for MeshSettings {
    fn from(config: &SocketConfig) -> Self {
        MeshSettings {
            players: config.players,
            spectator: config.spectator,
            relay_only: config.relay_only,
            handshake_timeout: config.handshake_timeout,
            relay_fallback_after: config.relay_fallback_after,
            disconnect_timeout: config.disconnect_timeout,
        }
    }
}

/// A connection attempt the driver must start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSpec {
    /// The remote member.
    pub remote: PeerId,
    /// Numbers attempts: reports of a replaced attempt are stale
    /// ([`MeshPlan::is_current`]).
    pub number: u32,
    /// We send the offer.
    pub offerer: bool,
    /// Gather and use relay candidates only.
    pub relay_only: bool,
    /// The attempt fails if not connected within this long.
    pub handshake_timeout: Duration,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshAction {
    /// Start this attempt, replacing (and closing) any earlier one to its remote.
    Start(AttemptSpec),
    /// Hand a signal from `remote` to its current attempt.
    Signal {
        /// The remote member.
        remote: PeerId,
        /// The offer, answer or candidate.
        data: SignalData,
    },
    /// Close the attempt or connection to this member and forget it.
    Close(PeerId),
    /// Stop routing the game's sends to this member.
    Unlink(PeerId),
    /// Send this signal to `remote` through the signaling server (the plan's own
    /// signals; an attempt's offers, answers and candidates come from the attempt).
    SendSignal {
        /// The remote member.
        remote: PeerId,
        /// What to send.
        data: SignalData,
    },
    /// Tell the game.
    Event(SocketEvent),
    /// Check that the signaling connection is alive (a link stalled): a `ping`
    /// that must be answered within the client's probe timeout, else the
    /// connection is closed and the driver calls
    /// [`MeshPlan::signaling_closed`].
    ProbeSignaling,
}

/// One remote member's current attempt.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    number: u32,
    relay_only: bool,
    /// The remote's offer for this attempt has arrived (answerer side).
    got_offer: bool,
    /// The remote's answer for this attempt has arrived (offerer side).
    got_answer: bool,
}

/// The plan of one socket in one room. Times are any monotonic clock's, as
/// `Duration`s since one epoch (the driver's choice).
#[derive(Debug)]
pub struct MeshPlan {
    settings: MeshSettings,
    me: PeerId,
    /// A TURN server is known, so a failed direct attempt can fall back.
    has_turn: bool,
    /// When we started connecting to each remote.
    first_attempt: BTreeMap<PeerId, Duration>,
    attempts: BTreeMap<PeerId, Attempt>,
    connected: BTreeSet<PeerId>,
    early: BTreeMap<PeerId, Vec<SignalData>>,
    started: u32,
    full: bool,
    all_connected_sent: bool,
    /// Other players in the room so far (before it is full).
    waiting: BTreeSet<PeerId>,
    /// The room's players, once full (ascending; the first is the host).
    players: Vec<PeerId>,
    /// Spectators we know of (as the host).
    spectators: BTreeSet<PeerId>,
    /// Members whose link stalled and is being restarted.
    recovering: BTreeMap<PeerId, Recovery>,
    /// Connected members whose signaling connection closed: their links can no
    /// longer be restarted.
    left_signaling: BTreeSet<PeerId>,
    /// Our own signaling connection is up.
    signaling_up: bool,
}

impl MeshPlan {
    /// We joined as `me`; `has_turn` when any ICE server is a TURN server.
    pub fn new(
        settings: MeshSettings,
        me: PeerId,
        has_turn: bool,
        out: &mut Vec<MeshAction>,
    ) -> Self {
        let plan = MeshPlan {
            settings,
            me,
            has_turn,
            first_attempt: BTreeMap::new(),
            attempts: BTreeMap::new(),
            connected: BTreeSet::new(),
            early: BTreeMap::new(),
            started: 0,
            full: false,
            all_connected_sent: false,
            waiting: BTreeSet::new(),
            players: Vec::new(),
            spectators: BTreeSet::new(),
            recovering: BTreeMap::new(),
            left_signaling: BTreeSet::new(),
            signaling_up: true,
        };
        if !settings.spectator {
            plan.announce_waiting(out);
        }
        plan
    }

    /// Whether `attempt` is the current attempt to `peer` (reports of replaced
    /// attempts are stale: ignore them).
    pub fn is_current(&self, peer: PeerId, attempt: u32) -> bool {
        self.attempts
            .get(&peer)
            .is_some_and(|a| a.number == attempt)
    }

    /// Whether `AllConnected` has been reported.
    pub fn all_connected(&self) -> bool {
        self.all_connected_sent
    }

    /// Members we have an attempt or connection to.
    pub fn members(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.attempts.keys().copied()
    }

    fn is_host(&self) -> bool {
        self.players.first() == Some(&self.me)
    }

    fn announce_waiting(&self, out: &mut Vec<MeshAction>) {
        let have = self.waiting.len() + usize::from(!self.settings.spectator);
        out.push(MeshAction::Event(SocketEvent::WaitingForPlayers {
            have,
            need: usize::from(self.settings.players),
        }));
    }

    /// The server announced a new member.
    pub fn peer_joined(
        &mut self,
        now: Duration,
        peer: PeerId,
        spectator: bool,
        out: &mut Vec<MeshAction>,
    ) {
        if spectator {
            self.spectators.insert(peer);
            if self.full && self.is_host() {
                self.connect_to(now, peer, out);
            }
        } else if !self.full && self.waiting.insert(peer) {
            self.announce_waiting(out);
        }
    }

    /// The room is full with these players.
    pub fn room_full(
        &mut self,
        now: Duration,
        mut players: Vec<PeerId>,
        out: &mut Vec<MeshAction>,
    ) {
        if self.full {
            return;
        }
        self.full = true;
        players.sort_unstable();
        self.players = players.clone();
        out.push(MeshAction::Event(SocketEvent::RoomFull {
            players: players.clone(),
        }));
        let remotes: Vec<PeerId> = if self.settings.spectator {
            // A spectator follows the host only.
            players.first().copied().into_iter().collect()
        } else if self.is_host() {
            players
                .into_iter()
                .chain(self.spectators.iter().copied())
                .collect()
        } else {
            players
        };
        for remote in remotes {
            if remote != self.me {
                self.connect_to(now, remote, out);
            }
        }
        self.early.clear();
    }

    /// A player took a free seat of our running drop-in match: connect to it (it
    /// offers, having the higher id) and tell the game.
    fn dropped_in(&mut self, now: Duration, peer: PeerId, seat: u8, out: &mut Vec<MeshAction>) {
        if !self.full || self.settings.spectator || peer == self.me || self.players.contains(&peer)
        {
            return;
        }
        self.players.push(peer);
        self.players.sort_unstable();
        out.push(MeshAction::Event(SocketEvent::PlayerDroppedIn {
            peer,
            seat: usize::from(seat),
        }));
        self.connect_to(now, peer, out);
    }

    /// Start the first attempt to `remote` and hand it the signals that came early.
    fn connect_to(&mut self, now: Duration, remote: PeerId, out: &mut Vec<MeshAction>) {
        if self.attempts.contains_key(&remote) {
            return;
        }
        self.first_attempt.insert(remote, now);
        self.start_attempt(now, remote, self.settings.relay_only, out);
        for data in self.early.remove(&remote).unwrap_or_default() {
            self.signal(now, remote, data, out);
        }
    }

    fn start_attempt(
        &mut self,
        now: Duration,
        remote: PeerId,
        relay_only: bool,
        out: &mut Vec<MeshAction>,
    ) {
        let s = &self.settings;
        let handshake_timeout = if self.has_turn && !relay_only {
            s.relay_fallback_after.min(s.handshake_timeout)
        } else {
            let spent = self
                .first_attempt
                .get(&remote)
                .map_or(Duration::ZERO, |t| now.saturating_sub(*t));
            s.handshake_timeout.saturating_sub(spent)
        };
        self.start(remote, relay_only, handshake_timeout, out);
    }

    /// Start an attempt to `remote` in our role (the higher id offers).
    fn start(
        &mut self,
        remote: PeerId,
        relay_only: bool,
        handshake_timeout: Duration,
        out: &mut Vec<MeshAction>,
    ) {
        self.started += 1;
        let number = self.started;
        let offerer = self.me > remote;
        self.attempts.insert(
            remote,
            Attempt {
                number,
                relay_only,
                got_offer: false,
                got_answer: false,
            },
        );
        out.push(MeshAction::Start(AttemptSpec {
            remote,
            number,
            offerer,
            relay_only,
            handshake_timeout,
        }));
    }

    /// The direct attempt to `remote` failed (or the remote gave up on it): try
    /// again over the TURN relay only. `false` when there is nothing to fall back to.
    fn fall_back_to_relay(
        &mut self,
        now: Duration,
        remote: PeerId,
        out: &mut Vec<MeshAction>,
    ) -> bool {
        let direct = self.attempts.get(&remote).is_some_and(|a| !a.relay_only);
        if !direct || !self.has_turn || self.connected.contains(&remote) {
            return false;
        }
        tracing::info!(peer = %remote, "direct connection failed; retrying over the TURN relay");
        self.start_attempt(now, remote, true, out);
        true
    }

    /// A signal from another member.
    pub fn signal(
        &mut self,
        now: Duration,
        from: PeerId,
        data: SignalData,
        out: &mut Vec<MeshAction>,
    ) {
        let is_offer = matches!(data, SignalData::Offer { .. });
        if data == SignalData::Restart {
            self.restart_requested(now, from, out);
            return;
        }
        if is_offer && self.is_established(from) {
            // An offer for a link that was up: the remote restarts it.
            if !self.restart_offered(now, from, out) {
                return;
            }
        } else if let Some(attempt) = self.attempts.get(&from).filter(|a| is_offer && a.got_offer) {
            // A second offer means the remote (the offerer) gave up its attempt
            // and started over (relay-only, after a failed direct attempt): follow
            // it on a fresh connection, relayed too where we can.
            let relay_only = attempt.relay_only;
            if !self.fall_back_to_relay(now, from, out) {
                self.start_attempt(now, from, relay_only, out);
            }
        }
        let established = self.is_established(from);
        match self.attempts.get_mut(&from) {
            Some(attempt) => {
                attempt.got_offer |= is_offer;
                attempt.got_answer |= matches!(data, SignalData::Answer { .. });
                out.push(MeshAction::Signal { remote: from, data });
            }
            None if established => {}
            None if !self.full || self.spectators.contains(&from) => {
                let queue = self.early.entry(from).or_default();
                if queue.len() < MAX_EARLY_SIGNALS {
                    queue.push(data);
                }
            }
            None => {}
        }
    }

    /// A member's signaling connection closed. A connected link does not need
    /// signaling any more and is judged by its own keepalives (but can no longer be
    /// restarted); a link being set up or restarted cannot finish without it.
    pub fn peer_left(&mut self, peer: PeerId, out: &mut Vec<MeshAction>) {
        if self.recovering.contains_key(&peer) {
            self.give_up(peer, DisconnectReason::Left, out);
        } else if self.connected.contains(&peer) {
            self.left_signaling.insert(peer);
        }
        self.early.remove(&peer);
        self.first_attempt.remove(&peer);
        if !self.full && self.waiting.remove(&peer) {
            self.announce_waiting(out);
        }
        let spectator = self.spectators.remove(&peer);
        if !self.connected.contains(&peer) && self.attempts.remove(&peer).is_some() {
            out.push(MeshAction::Close(peer));
            if !spectator {
                out.push(MeshAction::Event(SocketEvent::Error(
                    TransportError::PeerLeft(peer),
                )));
            }
        }
    }

    /// The current attempt to `peer` connected.
    pub fn attempt_connected(&mut self, peer: PeerId, out: &mut Vec<MeshAction>) {
        if self.recovering.remove(&peer).is_some() {
            self.connected.insert(peer);
            out.push(MeshAction::Event(SocketEvent::PeerReconnected(peer)));
            return;
        }
        self.connected.insert(peer);
        if self.spectators.contains(&peer) {
            out.push(MeshAction::Event(SocketEvent::SpectatorConnected(peer)));
            return;
        }
        out.push(MeshAction::Event(SocketEvent::PeerConnected(peer)));
        // Every player `room_full` listed: all N, or in a drop-in room (and for a
        // player who rejoins) those in the match now.
        let others = if self.settings.spectator {
            1
        } else {
            self.players.len().saturating_sub(1)
        };
        let players = self
            .connected
            .iter()
            .filter(|p| !self.spectators.contains(p))
            .count();
        if self.full && !self.all_connected_sent && players == others {
            self.all_connected_sent = true;
            out.push(MeshAction::Event(SocketEvent::AllConnected));
        }
    }

    /// The connection to `peer` ended after it had connected. A goodbye ends the
    /// peer; a silent or failed link is restarted (see [`recovery`]).
    pub fn attempt_disconnected(
        &mut self,
        now: Duration,
        peer: PeerId,
        reason: DisconnectReason,
        out: &mut Vec<MeshAction>,
    ) {
        if reason == DisconnectReason::Closed {
            self.give_up(peer, reason, out);
        } else {
            self.link_stalled(now, peer, reason, out);
        }
    }

    /// The current attempt to `peer` failed. `can_signal`: signaling is still up
    /// (a relay attempt needs it).
    pub fn attempt_failed(
        &mut self,
        now: Duration,
        peer: PeerId,
        error: TransportError,
        can_signal: bool,
        out: &mut Vec<MeshAction>,
    ) {
        if self.recovering.contains_key(&peer) {
            tracing::debug!(%peer, %error, "restart attempt failed");
            self.restart_failed(now, peer, out);
            return;
        }
        // Its link may have been handed out early (a message arrived first).
        out.push(MeshAction::Unlink(peer));
        if can_signal && self.fall_back_to_relay(now, peer, out) {
            tracing::debug!(%peer, %error, "direct attempt failed");
            return;
        }
        self.attempts.remove(&peer);
        out.push(MeshAction::Close(peer));
        if self.spectators.contains(&peer) {
            // A spectator's trouble is not the match's.
            tracing::warn!(%peer, %error, "could not connect a spectator");
            return;
        }
        out.push(MeshAction::Event(SocketEvent::Error(error)));
    }

    /// A server event (what the signaling client hands over once joined): room
    /// full, a relayed signal, a member joining or leaving, an error.
    pub fn server_message(
        &mut self,
        now: Duration,
        message: ServerMessage,
        out: &mut Vec<MeshAction>,
    ) {
        match message {
            ServerMessage::RoomFull { peers } => self.room_full(now, peers, out),
            ServerMessage::Signal { from, data } => self.signal(now, from, data, out),
            ServerMessage::PeerLeft { peer_id } => self.peer_left(peer_id, out),
            ServerMessage::PeerRejoined { peer_id } => self.peer_rejoined(now, peer_id, out),
            ServerMessage::PeerResumed { peer_id } => {
                // Same process, same connections: it can be signaled again.
                self.left_signaling.remove(&peer_id);
            }
            ServerMessage::PeerJoined { peer_id, spectator } => {
                self.peer_joined(now, peer_id, spectator, out);
            }
            ServerMessage::Seats { seats, in_progress } => {
                out.push(MeshAction::Event(SocketEvent::Seats { seats, in_progress }));
            }
            ServerMessage::DroppedIn { peer_id, seat } => {
                self.dropped_in(now, peer_id, seat, out);
            }
            ServerMessage::Error { code, message } => {
                out.push(MeshAction::Event(SocketEvent::Error(
                    TransportError::Signaling(format!("{code:?}: {message}")),
                )));
            }
            _ => {}
        }
    }

    /// Our signaling connection was replaced by one to another node of the
    /// server's cluster (a `join` with `resume`): our seat and connections are
    /// the same, and stalled links can be restarted again.
    pub fn signaling_resumed(&mut self, out: &mut Vec<MeshAction>) {
        self.signaling_up = true;
        out.push(MeshAction::Event(SocketEvent::SignalingResumed));
    }

    /// The signaling server is gone. Connections already up keep working; the ones
    /// still being set up can no longer exchange candidates.
    pub fn signaling_closed(&mut self, out: &mut Vec<MeshAction>) {
        self.signaling_up = false;
        let recovering: Vec<PeerId> = self.recovering.keys().copied().collect();
        for peer in recovering {
            let cause = self.recovering[&peer].cause;
            self.give_up(peer, cause, out);
        }
        if self.all_connected_sent {
            out.push(MeshAction::Event(SocketEvent::SignalingLost));
        } else {
            out.push(MeshAction::Event(SocketEvent::Error(
                TransportError::SignalingClosed,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    pub(super) fn settings(players: u8) -> MeshSettings {
        MeshSettings {
            players,
            spectator: false,
            relay_only: false,
            handshake_timeout: 10_000 * MS,
            relay_fallback_after: 4_000 * MS,
            disconnect_timeout: 10_000 * MS,
        }
    }

    pub(super) fn starts(out: &[MeshAction]) -> Vec<AttemptSpec> {
        out.iter()
            .filter_map(|a| match a {
                MeshAction::Start(spec) => Some(*spec),
                _ => None,
            })
            .collect()
    }

    pub(super) fn events(out: &[MeshAction]) -> Vec<SocketEvent> {
        out.iter()
            .filter_map(|a| match a {
                MeshAction::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn offer(text: &str) -> SignalData {
        SignalData::Offer { sdp: text.into() }
    }

    #[test]
    fn a_full_room_connects_to_every_other_player_and_the_higher_id_offers() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(3), PeerId(2), false, &mut out);
        plan.peer_joined(MS, PeerId(1), false, &mut out);
        plan.peer_joined(MS, PeerId(3), false, &mut out);
        assert_eq!(
            events(&out),
            vec![
                SocketEvent::WaitingForPlayers { have: 1, need: 3 },
                SocketEvent::WaitingForPlayers { have: 2, need: 3 },
                SocketEvent::WaitingForPlayers { have: 3, need: 3 },
            ]
        );
        out.clear();
        plan.room_full(2 * MS, vec![PeerId(3), PeerId(1), PeerId(2)], &mut out);
        let specs = starts(&out);
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].remote, specs[0].offerer), (PeerId(1), true));
        assert_eq!((specs[1].remote, specs[1].offerer), (PeerId(3), false));
        assert!(specs
            .iter()
            .all(|s| !s.relay_only && s.handshake_timeout == 10_000 * MS));
        // AllConnected once, after both.
        out.clear();
        plan.attempt_connected(PeerId(1), &mut out);
        plan.attempt_connected(PeerId(3), &mut out);
        plan.attempt_connected(PeerId(3), &mut out);
        assert_eq!(
            events(&out)
                .iter()
                .filter(|e| **e == SocketEvent::AllConnected)
                .count(),
            1
        );
        assert!(plan.all_connected());
    }

    #[test]
    fn early_signals_are_held_bounded_and_handed_over_in_order() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(2), PeerId(1), false, &mut out);
        for i in 0..MAX_EARLY_SIGNALS + 10 {
            plan.signal(MS, PeerId(2), offer(&i.to_string()), &mut out);
        }
        out.clear();
        plan.room_full(2 * MS, vec![PeerId(1), PeerId(2)], &mut out);
        let handed: Vec<&SignalData> = out
            .iter()
            .filter_map(|a| match a {
                MeshAction::Signal { remote, data } if *remote == PeerId(2) => Some(data),
                _ => None,
            })
            .collect();
        assert_eq!(handed.len(), MAX_EARLY_SIGNALS);
        assert_eq!(handed[0], &offer("0"));
        // The attempt starts before its signals.
        assert!(matches!(out[1], MeshAction::Start(_)), "{out:?}");
        // After the room is full, signals from strangers are dropped.
        out.clear();
        plan.signal(3 * MS, PeerId(9), offer("x"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_failed_direct_attempt_falls_back_to_the_relay_with_the_time_left() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(2), PeerId(1), true, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
        let direct = starts(&out)[0];
        assert_eq!(
            direct.handshake_timeout,
            4_000 * MS,
            "direct gets relay_fallback_after"
        );
        out.clear();
        plan.attempt_failed(
            4_000 * MS,
            PeerId(2),
            TransportError::HandshakeTimeout(PeerId(2)),
            true,
            &mut out,
        );
        let relay = starts(&out)[0];
        assert!(relay.relay_only);
        assert_eq!(relay.handshake_timeout, 6_000 * MS, "what is left of 10 s");
        assert!(plan.is_current(PeerId(2), relay.number));
        assert!(
            !plan.is_current(PeerId(2), direct.number),
            "reports of the old one are stale"
        );
        assert!(events(&out).is_empty(), "no error yet: {out:?}");
        // The relay attempt failing too is the game's error.
        out.clear();
        plan.attempt_failed(
            10_000 * MS,
            PeerId(2),
            TransportError::HandshakeTimeout(PeerId(2)),
            true,
            &mut out,
        );
        assert!(starts(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![SocketEvent::Error(TransportError::HandshakeTimeout(
                PeerId(2)
            ))]
        );
        assert!(out.contains(&MeshAction::Close(PeerId(2))));
    }

    #[test]
    fn a_second_offer_means_the_remote_started_over_on_the_relay() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(2), PeerId(1), true, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
        plan.signal(MS, PeerId(2), offer("direct"), &mut out);
        out.clear();
        plan.signal(4_000 * MS, PeerId(2), offer("relay"), &mut out);
        let specs = starts(&out);
        assert_eq!(specs.len(), 1);
        assert!(specs[0].relay_only && !specs[0].offerer);
        assert_eq!(
            out.last(),
            Some(&MeshAction::Signal {
                remote: PeerId(2),
                data: offer("relay")
            })
        );
    }

    #[test]
    fn a_second_offer_gets_a_fresh_attempt_also_when_we_are_relay_only_already() {
        let mut out = Vec::new();
        let settings = MeshSettings {
            relay_only: true,
            ..settings(2)
        };
        let mut plan = MeshPlan::new(settings, PeerId(1), true, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
        let first = starts(&out)[0];
        plan.signal(MS, PeerId(2), offer("direct"), &mut out);
        out.clear();
        plan.signal(800 * MS, PeerId(2), offer("relay"), &mut out);
        let second = starts(&out)[0];
        assert!(second.relay_only && !second.offerer && second.number > first.number);
        assert_eq!(second.handshake_timeout, 9_200 * MS, "what is left of 10 s");
        assert_eq!(
            out.last(),
            Some(&MeshAction::Signal {
                remote: PeerId(2),
                data: offer("relay")
            })
        );
    }

    #[test]
    fn without_turn_or_signaling_a_failure_is_final() {
        for (has_turn, can_signal) in [(false, true), (true, false)] {
            let mut out = Vec::new();
            let mut plan = MeshPlan::new(settings(2), PeerId(1), has_turn, &mut out);
            plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
            out.clear();
            plan.attempt_failed(
                MS,
                PeerId(2),
                TransportError::IceFailed(PeerId(2)),
                can_signal,
                &mut out,
            );
            assert!(starts(&out).is_empty());
            assert_eq!(
                events(&out),
                vec![SocketEvent::Error(TransportError::IceFailed(PeerId(2)))]
            );
        }
    }

    #[test]
    fn the_host_serves_spectators_and_a_spectator_follows_the_host_only() {
        // Host (lowest id): connects to the players, then to spectators as they come.
        let mut out = Vec::new();
        let mut host = MeshPlan::new(settings(2), PeerId(1), false, &mut out);
        host.peer_joined(MS, PeerId(5), true, &mut out);
        host.room_full(2 * MS, vec![PeerId(1), PeerId(2)], &mut out);
        let remotes: Vec<PeerId> = starts(&out).iter().map(|s| s.remote).collect();
        assert_eq!(remotes, vec![PeerId(2), PeerId(5)]);
        out.clear();
        host.peer_joined(3 * MS, PeerId(6), true, &mut out);
        assert_eq!(starts(&out)[0].remote, PeerId(6));
        out.clear();
        host.attempt_connected(PeerId(5), &mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::SpectatorConnected(PeerId(5))]
        );
        // A spectator that fails or leaves is not the match's error.
        out.clear();
        host.attempt_failed(
            4 * MS,
            PeerId(6),
            TransportError::IceFailed(PeerId(6)),
            true,
            &mut out,
        );
        assert!(events(&out).is_empty());
        // Another player does not connect to spectators.
        let mut out = Vec::new();
        let mut player = MeshPlan::new(settings(2), PeerId(2), false, &mut out);
        player.peer_joined(MS, PeerId(5), true, &mut out);
        player.room_full(2 * MS, vec![PeerId(1), PeerId(2)], &mut out);
        assert_eq!(
            starts(&out).iter().map(|s| s.remote).collect::<Vec<_>>(),
            vec![PeerId(1)]
        );
        // A spectator connects to the host only, and is all connected with it.
        let mut out = Vec::new();
        let spectator_settings = MeshSettings {
            spectator: true,
            ..settings(2)
        };
        let mut spectator = MeshPlan::new(spectator_settings, PeerId(7), false, &mut out);
        assert!(events(&out).is_empty(), "a spectator waits for no one");
        spectator.room_full(MS, vec![PeerId(2), PeerId(1)], &mut out);
        assert_eq!(
            starts(&out).iter().map(|s| s.remote).collect::<Vec<_>>(),
            vec![PeerId(1)]
        );
        out.clear();
        spectator.attempt_connected(PeerId(1), &mut out);
        assert_eq!(
            events(&out),
            vec![
                SocketEvent::PeerConnected(PeerId(1)),
                SocketEvent::AllConnected
            ]
        );
    }

    #[test]
    fn members_leaving_and_links_ending() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(3), PeerId(1), false, &mut out);
        plan.peer_joined(MS, PeerId(2), false, &mut out);
        out.clear();
        // Leaving before the room is full: the count goes down.
        plan.peer_left(PeerId(2), &mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::WaitingForPlayers { have: 1, need: 3 }]
        );
        out.clear();
        plan.room_full(2 * MS, vec![PeerId(1), PeerId(3), PeerId(4)], &mut out);
        plan.attempt_connected(PeerId(3), &mut out);
        out.clear();
        // Leaving mid-setup: the attempt is closed and the game told.
        plan.peer_left(PeerId(4), &mut out);
        assert_eq!(
            out,
            vec![
                MeshAction::Close(PeerId(4)),
                MeshAction::Event(SocketEvent::Error(TransportError::PeerLeft(PeerId(4))))
            ]
        );
        // A connected peer's signaling leaving changes nothing: its link decides.
        out.clear();
        plan.peer_left(PeerId(3), &mut out);
        assert!(out.is_empty());
        plan.attempt_disconnected(3 * MS, PeerId(3), DisconnectReason::Closed, &mut out);
        assert_eq!(
            out,
            vec![
                MeshAction::Close(PeerId(3)),
                MeshAction::Unlink(PeerId(3)),
                MeshAction::Event(SocketEvent::PeerDisconnected {
                    peer: PeerId(3),
                    reason: DisconnectReason::Closed
                })
            ]
        );
        // Signaling gone before everyone connected is an error; after, it is not.
        out.clear();
        plan.signaling_closed(&mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::Error(TransportError::SignalingClosed)]
        );
    }
    #[test]
    fn a_drop_in_match_starts_with_the_players_in_it_and_connects_to_newcomers() {
        // Seats 4, the match starts with players 1 and 2 (we are 1).
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(4), PeerId(1), false, &mut out);
        out.clear();
        plan.server_message(
            Duration::ZERO,
            ServerMessage::RoomFull {
                peers: vec![PeerId(1), PeerId(2)],
            },
            &mut out,
        );
        let seats = vec![Some(PeerId(1)), Some(PeerId(2)), None, None];
        plan.server_message(
            Duration::ZERO,
            ServerMessage::Seats {
                seats: seats.clone(),
                in_progress: false,
            },
            &mut out,
        );
        assert!(events(&out).contains(&SocketEvent::Seats {
            seats,
            in_progress: false
        }));
        out.clear();
        plan.attempt_connected(PeerId(2), &mut out);
        assert_eq!(
            events(&out),
            vec![
                SocketEvent::PeerConnected(PeerId(2)),
                SocketEvent::AllConnected
            ],
            "everyone in the match is connected: the two of us"
        );
        // Player 5 drops into seat 2: we wait for its offer (it has the higher id).
        out.clear();
        plan.server_message(
            MS,
            ServerMessage::PeerJoined {
                peer_id: PeerId(5),
                spectator: false,
            },
            &mut out,
        );
        assert!(
            out.is_empty(),
            "a player joining a running match is not a drop-in yet"
        );
        plan.server_message(
            MS,
            ServerMessage::DroppedIn {
                peer_id: PeerId(5),
                seat: 2,
            },
            &mut out,
        );
        assert_eq!(
            events(&out),
            vec![SocketEvent::PlayerDroppedIn {
                peer: PeerId(5),
                seat: 2
            }]
        );
        let spec = starts(&out)[0];
        assert!(spec.remote == PeerId(5) && !spec.offerer);
        out.clear();
        plan.attempt_connected(PeerId(5), &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerConnected(PeerId(5))]);

        // The newcomer's side: connected to every player `room_full` listed.
        let mut plan = MeshPlan::new(settings(4), PeerId(5), false, &mut out);
        out.clear();
        plan.room_full(
            Duration::ZERO,
            vec![PeerId(1), PeerId(2), PeerId(5)],
            &mut out,
        );
        assert!(starts(&out).iter().all(|s| s.offerer));
        plan.attempt_connected(PeerId(1), &mut out);
        out.clear();
        plan.attempt_connected(PeerId(2), &mut out);
        assert_eq!(
            events(&out),
            vec![
                SocketEvent::PeerConnected(PeerId(2)),
                SocketEvent::AllConnected
            ]
        );
    }
}
