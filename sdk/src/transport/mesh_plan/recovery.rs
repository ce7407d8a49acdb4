//! Link recovery, part of the mesh plan: a stalled link is not a dead peer.
//!
//! - a connected link that stalls (nothing arrived for `restart_after`, or its
//!   WebRTC connection failed) is restarted: a fresh connection negotiated through
//!   signaling, with the pair's usual roles (the higher id offers). The game hears
//!   `PeerReconnecting`, then `PeerReconnected`, or `PeerDisconnected` once
//!   `disconnect_timeout` has passed since the stall;
//! - the lower id asks for the restart with a `restart` signal and waits as the
//!   answerer; the higher id offers when its own link stalls or when asked, unless
//!   an offer of its own is still unanswered (the request crossed that offer, which
//!   answers it: signals to one member arrive in order);
//! - an offer for a link that was up is a restart: the lower id answers it on a
//!   fresh connection (a later offer replaces an earlier one);
//! - the answering side's attempts get [`RESTART_ATTEMPT`] each and it asks again
//!   when one runs out; the offering side's attempt waits for its answer until the
//!   deadline (the offer may sit in a TCP queue until the other side's network is
//!   back), and after a failure it waits to be asked: an answer to one of its
//!   offers never lands on a newer one;
//! - a member that left signaling while its link is down, and every member once our
//!   own signaling is gone, cannot be restarted: given up at once;
//! - a player that took its seat back (`peer_rejoined`: same id, a new process) is
//!   connected to afresh, whether its old link was up, stalled or given up: the
//!   game hears `PeerReconnecting` and then `PeerReconnected` (or
//!   `PeerDisconnected` once `disconnect_timeout` has passed).
//!
//! A fresh connection rather than an ICE restart of the old one: after seconds of
//! silence the old connection's SCTP association is deep in retransmission backoff
//! (its timer doubles from 1 s and also holds unreliable messages), so even a
//! restored path would stay silent for seconds more. A new connection starts clean
//! and costs one connection setup (tens of ms on a LAN).

use std::time::Duration;

use crate::datagram::PeerId;
use crate::signaling::SignalData;
use crate::transport::{DisconnectReason, SocketEvent};

use super::{MeshAction, MeshPlan};

/// The longest one restart attempt of the answering side may take before it asks
/// for another.
pub const RESTART_ATTEMPT: Duration = Duration::from_secs(3);

/// Restart attempts per stall before the peer is given up (a bound for attempts
/// that fail at once; normally the deadline ends recovery first).
pub const MAX_RESTART_ATTEMPTS: u32 = 16;

/// A member whose link is being restarted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovery {
    /// Given up at this time.
    deadline: Duration,
    /// Restart over the relay only (the link that stalled was relayed).
    relay_only: bool,
    /// Restart attempts so far.
    attempts: u32,
    /// Why the link stalled (reported if it cannot be restarted at all).
    pub(super) cause: DisconnectReason,
}

impl MeshPlan {
    /// The member's link is up or being restarted.
    pub(super) fn is_established(&self, peer: PeerId) -> bool {
        self.connected.contains(&peer) || self.recovering.contains_key(&peer)
    }

    /// Whether `peer` is being reconnected.
    pub fn is_recovering(&self, peer: PeerId) -> bool {
        self.recovering.contains_key(&peer)
    }

    fn can_restart(&self, peer: PeerId) -> bool {
        self.signaling_up && !self.left_signaling.contains(&peer)
    }

    /// A connected link ended without a goodbye: restart it if we can.
    pub(super) fn link_stalled(
        &mut self,
        now: Duration,
        peer: PeerId,
        cause: DisconnectReason,
        out: &mut Vec<MeshAction>,
    ) {
        if !self.can_restart(peer) {
            let reason = if self.left_signaling.contains(&peer) {
                DisconnectReason::Left
            } else {
                cause
            };
            self.give_up(peer, reason, out);
            return;
        }
        tracing::info!(%peer, ?cause, "link stalled; restarting it");
        self.begin_recovery(now, peer, cause, out);
        self.restart_attempt(now, peer, true, out);
    }

    fn begin_recovery(
        &mut self,
        now: Duration,
        peer: PeerId,
        cause: DisconnectReason,
        out: &mut Vec<MeshAction>,
    ) {
        let relay_only = self
            .attempts
            .get(&peer)
            .map_or(self.settings.relay_only, |a| a.relay_only);
        self.connected.remove(&peer);
        self.recovering.insert(
            peer,
            Recovery {
                deadline: now.saturating_add(self.settings.disconnect_timeout),
                relay_only,
                attempts: 0,
                cause,
            },
        );
        out.push(MeshAction::Unlink(peer));
        out.push(MeshAction::Event(SocketEvent::PeerReconnecting(peer)));
        // The stall may be our own network: find out whether signaling is still
        // there (a dead connection ends in `SignalingLost`).
        if self.signaling_up {
            out.push(MeshAction::ProbeSignaling);
        }
    }

    /// Start the next restart attempt in our role. As the answerer, `ask` the
    /// remote for an offer (not when its offer is what started this attempt).
    fn restart_attempt(
        &mut self,
        now: Duration,
        peer: PeerId,
        ask: bool,
        out: &mut Vec<MeshAction>,
    ) {
        let Some(recovery) = self.recovering.get_mut(&peer) else {
            return;
        };
        if recovery.attempts >= MAX_RESTART_ATTEMPTS || now >= recovery.deadline {
            self.give_up(peer, DisconnectReason::Timeout, out);
            return;
        }
        recovery.attempts += 1;
        let left = recovery.deadline - now;
        let timeout = if self.me > peer {
            left
        } else {
            RESTART_ATTEMPT.min(left)
        };
        let relay_only = recovery.relay_only;
        self.start(peer, relay_only, timeout, out);
        if ask && self.me < peer {
            out.push(MeshAction::SendSignal {
                remote: peer,
                data: SignalData::Restart,
            });
        }
    }

    /// A player took its seat back in a new process: connect to it again.
    pub(super) fn peer_rejoined(&mut self, now: Duration, peer: PeerId, out: &mut Vec<MeshAction>) {
        let follows = if self.settings.spectator {
            self.players.first() == Some(&peer)
        } else {
            self.players.contains(&peer)
        };
        if !self.full || peer == self.me || !follows {
            return;
        }
        self.left_signaling.remove(&peer);
        if !self.recovering.contains_key(&peer) {
            self.begin_recovery(now, peer, DisconnectReason::Left, out);
        }
        // Its old attempt (if any) talks to a process that is gone.
        self.attempts.remove(&peer);
        out.push(MeshAction::Close(peer));
        // The new process starts its attempts on `room_full` in the pair's roles;
        // as the answerer we only wait for its offer.
        self.restart_attempt(now, peer, false, out);
    }

    /// The remote (a lower id) asks us to offer again.
    pub(super) fn restart_requested(
        &mut self,
        now: Duration,
        from: PeerId,
        out: &mut Vec<MeshAction>,
    ) {
        if self.me < from {
            tracing::debug!(peer = %from, "ignoring a restart request from the offering side");
            return;
        }
        if self.connected.contains(&from) {
            if !self.can_restart(from) {
                return;
            }
            self.begin_recovery(now, from, DisconnectReason::Timeout, out);
            self.restart_attempt(now, from, false, out);
        } else if self.recovering.contains_key(&from)
            && self.attempts.get(&from).is_none_or(|a| a.got_answer)
        {
            // No attempt, or the remote answered ours and then gave up on it.
            self.restart_attempt(now, from, false, out);
        }
        // Otherwise the request crossed our unanswered offer, which answers it.
    }

    /// An offer for a link that was up: the remote (the higher id) restarts it.
    /// Returns whether to hand the offer to our (new) attempt.
    pub(super) fn restart_offered(
        &mut self,
        now: Duration,
        from: PeerId,
        out: &mut Vec<MeshAction>,
    ) -> bool {
        if self.me > from {
            tracing::debug!(peer = %from, "ignoring an offer from the answering side");
            return false;
        }
        if self.connected.contains(&from) {
            self.begin_recovery(now, from, DisconnectReason::Timeout, out);
        } else if self.attempts.get(&from).is_some_and(|a| !a.got_offer) {
            // Our waiting attempt takes it.
            return true;
        }
        self.restart_attempt(now, from, false, out);
        self.attempts.contains_key(&from)
    }

    /// The current restart attempt to `peer` failed.
    pub(super) fn restart_failed(
        &mut self,
        now: Duration,
        peer: PeerId,
        out: &mut Vec<MeshAction>,
    ) {
        self.attempts.remove(&peer);
        out.push(MeshAction::Close(peer));
        if !self.can_restart(peer) {
            self.give_up(peer, DisconnectReason::Left, out);
        } else if self.me < peer {
            self.restart_attempt(now, peer, true, out);
        }
        // The offering side waits to be asked again (or for the deadline).
    }

    /// Forget `peer` and tell the game it is gone.
    pub(super) fn give_up(
        &mut self,
        peer: PeerId,
        reason: DisconnectReason,
        out: &mut Vec<MeshAction>,
    ) {
        self.recovering.remove(&peer);
        self.attempts.remove(&peer);
        self.connected.remove(&peer);
        self.left_signaling.remove(&peer);
        out.push(MeshAction::Close(peer));
        out.push(MeshAction::Unlink(peer));
        out.push(MeshAction::Event(SocketEvent::PeerDisconnected {
            peer,
            reason,
        }));
    }

    /// Timers: give up the members whose recovery ran past its deadline.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<MeshAction>) {
        let expired: Vec<PeerId> = self
            .recovering
            .iter()
            .filter(|(_, r)| now >= r.deadline)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            tracing::info!(%peer, "link not restored in time");
            self.give_up(peer, DisconnectReason::Timeout, out);
        }
    }

    /// When [`poll`](Self::poll) is next due.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.recovering.values().map(|r| r.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{events, offer, settings, starts};
    use super::super::MeshSettings;
    use super::*;
    use crate::signaling::ServerMessage;
    use crate::transport::TransportError;

    const MS: Duration = Duration::from_millis(1);

    /// A two-player plan for `me` whose link to `remote` is up.
    fn connected_pair(me: u32, remote: u32) -> MeshPlan {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(2), PeerId(me), false, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(me), PeerId(remote)], &mut out);
        plan.attempt_connected(PeerId(remote), &mut out);
        plan
    }

    fn sent_signals(out: &[MeshAction]) -> Vec<(PeerId, SignalData)> {
        out.iter()
            .filter_map(|a| match a {
                MeshAction::SendSignal { remote, data } => Some((*remote, data.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_offering_side_restarts_a_stalled_link_and_the_game_hears_it_come_back() {
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.attempt_disconnected(1_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnecting(PeerId(1))]);
        assert!(out.contains(&MeshAction::Unlink(PeerId(1))));
        assert!(
            out.contains(&MeshAction::ProbeSignaling),
            "a stall may be our own network: signaling is checked"
        );
        let spec = starts(&out)[0];
        assert!(spec.offerer && spec.remote == PeerId(1));
        assert_eq!(
            spec.handshake_timeout,
            10_000 * MS,
            "the offer waits for its answer until the deadline"
        );
        assert!(sent_signals(&out).is_empty(), "the offer itself asks");
        assert!(plan.is_recovering(PeerId(1)));
        out.clear();
        plan.attempt_connected(PeerId(1), &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnected(PeerId(1))]);
        assert!(!plan.is_recovering(PeerId(1)));
        assert_eq!(plan.next_wakeup(), None);
    }

    #[test]
    fn the_answering_side_asks_for_an_offer_and_answers_it_on_a_fresh_attempt() {
        let mut plan = connected_pair(1, 2);
        let mut out = Vec::new();
        plan.attempt_disconnected(
            1_000 * MS,
            PeerId(2),
            DisconnectReason::ConnectionFailed,
            &mut out,
        );
        let waiting = starts(&out)[0];
        assert!(!waiting.offerer);
        assert_eq!(waiting.handshake_timeout, RESTART_ATTEMPT);
        assert_eq!(sent_signals(&out), vec![(PeerId(2), SignalData::Restart)]);
        out.clear();
        plan.signal(1_100 * MS, PeerId(2), offer("restart"), &mut out);
        assert!(
            starts(&out).is_empty(),
            "the waiting attempt takes the offer"
        );
        assert_eq!(
            out,
            vec![MeshAction::Signal {
                remote: PeerId(2),
                data: offer("restart")
            }]
        );
        // A later offer replaces it (the remote started over).
        out.clear();
        plan.signal(2_000 * MS, PeerId(2), offer("again"), &mut out);
        let replaced = starts(&out)[0];
        assert!(!replaced.offerer && replaced.number > waiting.number);
        assert!(sent_signals(&out).is_empty());
        assert_eq!(
            out.last(),
            Some(&MeshAction::Signal {
                remote: PeerId(2),
                data: offer("again")
            })
        );
    }

    #[test]
    fn an_offer_for_a_link_we_think_is_up_restarts_it() {
        // Only the remote noticed (one direction of the path failed).
        let mut plan = connected_pair(1, 2);
        let mut out = Vec::new();
        plan.signal(5_000 * MS, PeerId(2), offer("restart"), &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnecting(PeerId(2))]);
        let spec = starts(&out)[0];
        assert!(!spec.offerer);
        assert!(sent_signals(&out).is_empty());
        assert!(matches!(out.last(), Some(MeshAction::Signal { .. })));
    }

    #[test]
    fn a_request_that_crosses_our_pending_offer_is_ignored_and_a_later_one_is_not() {
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.attempt_disconnected(1_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        out.clear();
        plan.signal(1_010 * MS, PeerId(1), SignalData::Restart, &mut out);
        assert!(out.is_empty(), "our pending offer answers it: {out:?}");
        // Our attempt runs out: we wait to be asked, so a late answer to it can
        // never reach a newer offer.
        plan.attempt_failed(
            4_000 * MS,
            PeerId(1),
            TransportError::HandshakeTimeout(PeerId(1)),
            true,
            &mut out,
        );
        assert!(starts(&out).is_empty());
        assert!(events(&out).is_empty());
        out.clear();
        plan.signal(4_100 * MS, PeerId(1), offer("late answer?"), &mut out);
        assert!(out.is_empty(), "no attempt, nothing handed over");
        plan.signal(4_200 * MS, PeerId(1), SignalData::Restart, &mut out);
        let spec = starts(&out)[0];
        assert!(spec.offerer);
        assert_eq!(spec.handshake_timeout, 6_800 * MS, "what is left");
    }

    #[test]
    fn a_request_after_the_answer_to_our_offer_gets_a_new_offer() {
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.attempt_disconnected(1_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        let first = starts(&out)[0];
        plan.signal(
            1_100 * MS,
            PeerId(1),
            SignalData::Answer { sdp: "a".into() },
            &mut out,
        );
        out.clear();
        // The remote answered, its attempt never connected, and it asks again.
        plan.signal(4_100 * MS, PeerId(1), SignalData::Restart, &mut out);
        let second = starts(&out)[0];
        assert!(second.offerer && second.number > first.number);
    }

    #[test]
    fn roles_are_kept_a_lower_id_never_offers_and_a_higher_id_never_asks() {
        // We (2) are the offerer of the pair: an offer from 1 is out of turn.
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.signal(MS, PeerId(1), offer("out of turn"), &mut out);
        assert!(out.is_empty());
        // We (1) are the answerer: a restart request from 2 is out of turn.
        let mut plan = connected_pair(1, 2);
        plan.signal(MS, PeerId(2), SignalData::Restart, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn the_answering_side_keeps_asking_until_the_deadline_then_gives_up() {
        let mut plan = connected_pair(1, 2);
        let mut out = Vec::new();
        plan.attempt_disconnected(
            Duration::ZERO,
            PeerId(2),
            DisconnectReason::Timeout,
            &mut out,
        );
        assert_eq!(plan.next_wakeup(), Some(10_000 * MS));
        let mut now = Duration::ZERO;
        let mut asks = 1;
        loop {
            now += RESTART_ATTEMPT;
            out.clear();
            plan.attempt_failed(
                now,
                PeerId(2),
                TransportError::HandshakeTimeout(PeerId(2)),
                true,
                &mut out,
            );
            if !plan.is_recovering(PeerId(2)) {
                break;
            }
            asks += sent_signals(&out).len();
            // The last attempt gets what is left.
            let spec = starts(&out)[0];
            assert_eq!(
                spec.handshake_timeout,
                RESTART_ATTEMPT.min(10_000 * MS - now)
            );
        }
        assert_eq!(asks, 4, "at 0, 3, 6 and 9 s");
        assert_eq!(
            events(&out),
            vec![SocketEvent::PeerDisconnected {
                peer: PeerId(2),
                reason: DisconnectReason::Timeout
            }]
        );
    }

    #[test]
    fn the_deadline_gives_up_a_member_that_never_asks_again() {
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.attempt_disconnected(500 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        plan.attempt_failed(
            3_500 * MS,
            PeerId(1),
            TransportError::HandshakeTimeout(PeerId(1)),
            true,
            &mut out,
        );
        out.clear();
        plan.poll(10_499 * MS, &mut out);
        assert!(out.is_empty());
        plan.poll(10_500 * MS, &mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::PeerDisconnected {
                peer: PeerId(1),
                reason: DisconnectReason::Timeout
            }]
        );
        assert_eq!(plan.next_wakeup(), None);
    }

    #[test]
    fn a_member_gone_from_signaling_cannot_be_restarted() {
        // Left while its link was up: the stall ends it at once.
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.peer_left(PeerId(1), &mut out);
        assert!(out.is_empty());
        plan.attempt_disconnected(MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        assert!(starts(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![SocketEvent::PeerDisconnected {
                peer: PeerId(1),
                reason: DisconnectReason::Left
            }]
        );
        // Left while its link was being restarted: ends it at once.
        let mut plan = connected_pair(2, 1);
        plan.attempt_disconnected(MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        out.clear();
        plan.peer_left(PeerId(1), &mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::PeerDisconnected {
                peer: PeerId(1),
                reason: DisconnectReason::Left
            }]
        );
        // Our own signaling gone: links being restarted end, with their cause.
        let mut plan = connected_pair(1, 2);
        plan.attempt_disconnected(MS, PeerId(2), DisconnectReason::ConnectionFailed, &mut out);
        out.clear();
        plan.signaling_closed(&mut out);
        assert_eq!(
            events(&out),
            vec![
                SocketEvent::PeerDisconnected {
                    peer: PeerId(2),
                    reason: DisconnectReason::ConnectionFailed
                },
                SocketEvent::SignalingLost
            ]
        );
        // ...and a later stall is final too, with no probe of the gone server.
        let mut plan = connected_pair(1, 2);
        plan.signaling_closed(&mut out);
        out.clear();
        plan.attempt_disconnected(MS, PeerId(2), DisconnectReason::Timeout, &mut out);
        assert!(starts(&out).is_empty());
        assert!(!out.contains(&MeshAction::ProbeSignaling));
        assert!(matches!(
            events(&out)[..],
            [SocketEvent::PeerDisconnected { .. }]
        ));
    }

    #[test]
    fn a_goodbye_is_final_and_a_restored_link_can_stall_again() {
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.attempt_disconnected(MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        plan.attempt_connected(PeerId(1), &mut out);
        out.clear();
        plan.attempt_disconnected(20_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnecting(PeerId(1))]);
        assert_eq!(plan.next_wakeup(), Some(30_000 * MS), "a fresh deadline");
        plan.attempt_connected(PeerId(1), &mut out);
        out.clear();
        plan.attempt_disconnected(21_000 * MS, PeerId(1), DisconnectReason::Closed, &mut out);
        assert_eq!(
            events(&out),
            vec![SocketEvent::PeerDisconnected {
                peer: PeerId(1),
                reason: DisconnectReason::Closed
            }]
        );
        assert!(starts(&out).is_empty());
    }

    #[test]
    fn a_restart_keeps_the_relay_when_the_link_was_relayed() {
        let mut out = Vec::new();
        let mut plan = MeshPlan::new(settings(2), PeerId(2), true, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
        plan.attempt_failed(
            4_000 * MS,
            PeerId(1),
            TransportError::IceFailed(PeerId(1)),
            true,
            &mut out,
        );
        plan.attempt_connected(PeerId(1), &mut out);
        out.clear();
        plan.attempt_disconnected(9_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        assert!(starts(&out)[0].relay_only);
    }

    #[test]
    fn a_rejoined_player_is_connected_to_afresh_whatever_its_old_link_did() {
        // Its old link still looked up (the process died a moment ago).
        let mut plan = connected_pair(2, 1);
        let mut out = Vec::new();
        plan.peer_left(PeerId(1), &mut out);
        plan.server_message(
            MS,
            ServerMessage::PeerRejoined { peer_id: PeerId(1) },
            &mut out,
        );
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnecting(PeerId(1))]);
        let spec = starts(&out)[0];
        assert!(spec.offerer, "we are the higher id: we offer");
        out.clear();
        plan.attempt_connected(PeerId(1), &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnected(PeerId(1))]);
        // Given up already (its seat was held for longer than our timeout): the
        // same, as the answering side this time.
        let mut plan = connected_pair(1, 2);
        plan.peer_left(PeerId(2), &mut out);
        plan.attempt_disconnected(MS, PeerId(2), DisconnectReason::Timeout, &mut out);
        out.clear();
        plan.server_message(
            30_000 * MS,
            ServerMessage::PeerRejoined { peer_id: PeerId(2) },
            &mut out,
        );
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnecting(PeerId(2))]);
        let spec = starts(&out)[0];
        assert!(!spec.offerer);
        assert!(
            sent_signals(&out).is_empty(),
            "the new process offers by itself"
        );
        assert_eq!(plan.next_wakeup(), Some(40_000 * MS));
        out.clear();
        plan.signal(30_010 * MS, PeerId(2), offer("fresh"), &mut out);
        assert!(starts(&out).is_empty(), "the waiting attempt takes it");
        plan.attempt_connected(PeerId(2), &mut out);
        assert_eq!(events(&out), vec![SocketEvent::PeerReconnected(PeerId(2))]);
        // Strangers and ourselves are ignored.
        out.clear();
        plan.server_message(
            MS,
            ServerMessage::PeerRejoined { peer_id: PeerId(9) },
            &mut out,
        );
        plan.server_message(
            MS,
            ServerMessage::PeerRejoined { peer_id: PeerId(1) },
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn an_endless_disconnect_timeout_never_overflows() {
        let mut out = Vec::new();
        let settings = MeshSettings {
            disconnect_timeout: Duration::MAX,
            ..settings(2)
        };
        let mut plan = MeshPlan::new(settings, PeerId(2), false, &mut out);
        plan.room_full(Duration::ZERO, vec![PeerId(1), PeerId(2)], &mut out);
        plan.attempt_connected(PeerId(1), &mut out);
        plan.attempt_disconnected(5_000 * MS, PeerId(1), DisconnectReason::Timeout, &mut out);
        assert_eq!(plan.next_wakeup(), Some(Duration::MAX));
        plan.poll(Duration::from_secs(1 << 40), &mut out);
        assert!(plan.is_recovering(PeerId(1)));
    }
}
