//! Held seats and rejoin tokens, part of the rooms' state.
//!
//! - every player gets a rejoin token in its `welcome` (a random secret the
//!   server generates, unique per player, never sent to anyone else);
//! - when a player's connection is lost while its room is full (its match runs),
//!   its seat is held for `seat_grace`; the others hear `peer_left` as before;
//! - a `join` with the token (same room name and size) takes the seat back: same
//!   peer id, `welcome` with the same token, the room's spectators, then
//!   `room_full` and `seats` (which player holds which seat, also those away
//!   now); every other member hears `peer_rejoined`;
//! - refused: an unknown or expired token, another room, a seat whose player is
//!   still connected (`seat_taken`: a copy of the token cannot steal a live seat).
//!   That connection is then checked for life (the driver pings it): one that
//!   does not answer is closed as lost, so a player whose network changed (its
//!   old connection is dead but not yet timed out) gets its seat on a retry;
//! - a `join` with the token and `resume` is the same, but the others hear
//!   `peer_resumed`: the player's process and WebRTC connections live on, only
//!   its signaling connection is new (its server, a node of a cluster, went
//!   away);
//! - a player who leaves on purpose (`leave`), leaves before the room is full, or
//!   whose room has no player left gives its seat and token up.

use std::time::Duration;

use super::{
    ConnId, ErrorCode, JoinRequest, Outbox, Refusal, Rooms, ServerMessage, Welcome,
    PROTOCOL_VERSION,
};

/// How long a connection whose seat a rejoin asked for has to answer the
/// server's WebSocket ping before it is closed as lost.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

impl Rooms {
    /// Put `conn` back into the seat of `token`.
    pub(super) fn rejoin(
        &mut self,
        conn: ConnId,
        req: &JoinRequest,
        token: &str,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        self.check_joiner(conn, req)?;
        if req.spectator {
            return Err((
                ErrorCode::RejoinRefused,
                "spectators have no seats to take back".into(),
            ));
        }
        let refused = |why: String| Err((ErrorCode::RejoinRefused, why));
        let Some(&(room_id, peer)) = self.rejoin_tokens.get(token) else {
            return refused(
                "unknown rejoin token: its seat was given up or its match has ended".into(),
            );
        };
        let Some(room) = self.rooms.get_mut(&room_id) else {
            self.rejoin_tokens.remove(token);
            return refused("the match of this rejoin token has ended".into());
        };
        if room.key.0 != req.name || room.key.1 != req.players {
            return refused(format!(
                "this rejoin token is for room `{}` of {} players",
                room.key.0, room.key.1
            ));
        }
        if let Some(&(_, holder)) = room.members.iter().find(|m| m.0 == peer) {
            self.probes.push(holder);
            return Err((
                ErrorCode::SeatTaken,
                format!(
                    "player {} of this room is still connected; its seat can only be taken \
                     back once that connection is gone. The server now checks that \
                     connection: if it does not answer within {} s, it is closed and the \
                     seat is held; try again then",
                    peer.0,
                    PROBE_TIMEOUT.as_secs()
                ),
            ));
        }
        match room.held.get(&peer) {
            Some(until) if *until > req.received_at => {}
            _ => {
                room.held.remove(&peer);
                room.tokens.remove(&peer);
                self.rejoin_tokens.remove(token);
                return refused("the seat's grace period is over".into());
            }
        }
        room.held.remove(&peer);
        let mut ice_servers = self.ice_servers.clone();
        ice_servers.extend(req.turn.clone());
        out.push((
            conn,
            ServerMessage::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                peer_id: peer,
                room: room.key.0.clone(),
                players: room.key.1,
                ice_servers,
                spectator: false,
                rejoin_token: Some(token.to_owned()),
            }),
        ));
        room.spectators_to(conn, out);
        room.members.push((peer, conn));
        out.push((
            conn,
            ServerMessage::RoomFull {
                peers: room.player_ids(),
            },
        ));
        // Every seat, also those whose players are away now: the rejoiner's
        // `room_full` lists only the players connected now.
        out.push((conn, room.seats_message(true)));
        for &(_, member) in room.everyone() {
            if member != conn {
                let back = if req.resume {
                    ServerMessage::PeerResumed { peer_id: peer }
                } else {
                    ServerMessage::PeerRejoined { peer_id: peer }
                };
                out.push((member, back));
            }
        }
        self.membership.insert(conn, (room_id, peer));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::{join, request, spectate};
    use super::*;
    use crate::datagram::PeerId;

    const GRACE: Duration = Duration::from_secs(60);

    fn rooms() -> Rooms {
        let mut r = Rooms::new(4, 8, Vec::new());
        r.set_seat_grace(GRACE);
        r
    }

    /// Join with a server-made token; returns the token the welcome gave.
    fn join_with_token(r: &mut Rooms, conn: ConnId, name: &str, players: u8) -> String {
        let mut out = Vec::new();
        let req = JoinRequest {
            fresh_token: Some(format!("token-{conn}")),
            ..request(PROTOCOL_VERSION, name, players)
        };
        assert_eq!(r.join(conn, req, &mut out), Ok(()));
        match &out[0] {
            (c, ServerMessage::Welcome(w)) if *c == conn => {
                w.rejoin_token.clone().expect("a token")
            }
            other => panic!("{other:?}"),
        }
    }

    fn rejoin(
        r: &mut Rooms,
        conn: ConnId,
        token: &str,
        at: Instant,
    ) -> (Result<(), Refusal>, Outbox) {
        let mut out = Vec::new();
        let req = JoinRequest {
            rejoin_token: Some(token.into()),
            received_at: at,
            ..request(PROTOCOL_VERSION, "a", 3)
        };
        let res = r.join(conn, req, &mut out);
        (res, out)
    }

    #[test]
    fn a_lost_player_takes_its_seat_back_and_the_others_hear_of_it() {
        let mut r = rooms();
        let t10 = join_with_token(&mut r, 10, "a", 3);
        let t11 = join_with_token(&mut r, 11, "a", 3);
        let _ = join_with_token(&mut r, 12, "a", 3);
        assert_ne!(t10, t11, "tokens are per player");
        spectate(&mut r, 13, "a", 3);
        let lost = Instant::now();
        let mut out = Vec::new();
        r.disconnect(11, lost, &mut out).expect("a member");
        let (res, out) = rejoin(&mut r, 20, &t11, lost + Duration::from_secs(5));
        assert_eq!(res, Ok(()));
        let ServerMessage::Welcome(welcome) = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(out[0].0, 20);
        assert_eq!(welcome.peer_id, PeerId(2), "the same seat");
        assert_eq!(welcome.rejoin_token.as_deref(), Some(t11.as_str()));
        assert_eq!(
            out[1..],
            [
                (
                    20,
                    ServerMessage::PeerJoined {
                        peer_id: PeerId(4),
                        spectator: true
                    }
                ),
                (
                    20,
                    ServerMessage::RoomFull {
                        peers: vec![PeerId(1), PeerId(2), PeerId(3)]
                    }
                ),
                (
                    20,
                    ServerMessage::Seats {
                        seats: vec![Some(PeerId(1)), Some(PeerId(2)), Some(PeerId(3))],
                        in_progress: true
                    }
                ),
                (10, ServerMessage::PeerRejoined { peer_id: PeerId(2) }),
                (12, ServerMessage::PeerRejoined { peer_id: PeerId(2) }),
                (13, ServerMessage::PeerRejoined { peer_id: PeerId(2) }),
            ]
        );
        // It is a member again: it can signal, and lose its connection again.
        let mut out = Vec::new();
        assert_eq!(
            r.relay(
                20,
                PeerId(1),
                crate::signaling::SignalData::Restart,
                &mut out
            ),
            Ok(())
        );
        r.disconnect(20, lost + Duration::from_secs(6), &mut out)
            .expect("a member");
        let (res, _) = rejoin(&mut r, 21, &t11, lost + Duration::from_secs(7));
        assert_eq!(res, Ok(()));
    }

    #[test]
    fn wrong_stale_and_stolen_tokens_are_refused() {
        let mut r = rooms();
        let t10 = join_with_token(&mut r, 10, "a", 3);
        let t11 = join_with_token(&mut r, 11, "a", 3);
        join_with_token(&mut r, 12, "a", 3);
        let now = Instant::now();
        let code = |res: Result<(), Refusal>| res.map_err(|e| e.0);
        // Unknown.
        assert_eq!(
            code(rejoin(&mut r, 20, "guess", now).0),
            Err(ErrorCode::RejoinRefused)
        );
        // Still connected: a copy of the token cannot steal the seat.
        assert!(r.take_probes().is_empty());
        let (res, out) = rejoin(&mut r, 20, &t10, now);
        assert_eq!(code(res), Err(ErrorCode::SeatTaken));
        assert!(out.is_empty());
        // ...and the seat's connection (10) is to be checked for life, once.
        assert_eq!(r.take_probes(), vec![10]);
        assert!(r.take_probes().is_empty());
        // Another room or size.
        let mut out = Vec::new();
        r.disconnect(11, now, &mut out).expect("a member");
        let req = JoinRequest {
            rejoin_token: Some(t11.clone()),
            received_at: now,
            ..request(PROTOCOL_VERSION, "b", 3)
        };
        assert_eq!(
            code(r.join(20, req, &mut out)),
            Err(ErrorCode::RejoinRefused)
        );
        // Past the grace period: refused, and the token is gone for good.
        let late = now + GRACE + Duration::from_millis(1);
        assert_eq!(
            code(rejoin(&mut r, 20, &t11, late).0),
            Err(ErrorCode::RejoinRefused)
        );
        assert_eq!(
            code(rejoin(&mut r, 20, &t11, now).0),
            Err(ErrorCode::RejoinRefused)
        );
    }

    #[test]
    fn seats_are_not_held_before_the_match_after_a_leave_or_once_everyone_is_gone() {
        let mut r = rooms();
        let now = Instant::now();
        let code = |res: Result<(), Refusal>| res.map_err(|e| e.0);
        // Lost before the room was full: the seat is free for the next joiner.
        let t10 = join_with_token(&mut r, 10, "a", 3);
        let mut out = Vec::new();
        r.disconnect(10, now, &mut out).expect("a member");
        assert_eq!(
            code(rejoin(&mut r, 20, &t10, now).0),
            Err(ErrorCode::RejoinRefused)
        );
        // A deliberate leave gives the seat up.
        let t11 = join_with_token(&mut r, 11, "a", 3);
        join_with_token(&mut r, 12, "a", 3);
        join_with_token(&mut r, 13, "a", 3);
        r.leave(11, &mut out).expect("a member");
        assert_eq!(
            code(rejoin(&mut r, 20, &t11, now).0),
            Err(ErrorCode::RejoinRefused)
        );
        // Every player gone: nobody to rejoin, the room and its tokens go.
        let t12 = join_with_token(&mut r, 30, "b", 2);
        join_with_token(&mut r, 31, "b", 2);
        r.disconnect(30, now, &mut out).expect("a member");
        r.disconnect(31, now, &mut out).expect("a member");
        assert_eq!(
            code(rejoin(&mut r, 20, &t12, now).0),
            Err(ErrorCode::RejoinRefused)
        );
        assert!(r.rejoin_tokens.keys().all(|t| *t != t12));
        // No grace configured: no tokens.
        let mut plain = Rooms::new(4, 8, Vec::new());
        let out = join(&mut plain, 40, "c", 2);
        assert!(matches!(&out[0].1, ServerMessage::Welcome(w) if w.rejoin_token.is_none()));
    }

    #[test]
    fn spectators_get_no_token_and_cannot_rejoin() {
        let mut r = rooms();
        join_with_token(&mut r, 10, "a", 2);
        join_with_token(&mut r, 11, "a", 2);
        let mut out = Vec::new();
        let req = JoinRequest {
            spectator: true,
            fresh_token: Some("spectator-token".into()),
            ..request(PROTOCOL_VERSION, "a", 2)
        };
        r.join(12, req, &mut out).expect("spectator joins");
        assert!(matches!(&out[0].1, ServerMessage::Welcome(w) if w.rejoin_token.is_none()));
        let req = JoinRequest {
            spectator: true,
            rejoin_token: Some("spectator-token".into()),
            ..request(PROTOCOL_VERSION, "a", 2)
        };
        assert_eq!(
            r.join(13, req, &mut out).map_err(|e| e.0),
            Err(ErrorCode::RejoinRefused)
        );
    }

    #[test]
    fn an_endless_grace_period_is_cut_to_a_day_not_a_panic() {
        let mut r = rooms();
        r.set_seat_grace(Duration::MAX);
        let token = join_with_token(&mut r, 10, "a", 3);
        join_with_token(&mut r, 11, "a", 3);
        join_with_token(&mut r, 12, "a", 3);
        let now = Instant::now();
        let mut out = Vec::new();
        r.disconnect(10, now, &mut out).expect("a member");
        let day = Duration::from_secs(24 * 3600);
        let (res, _) = rejoin(&mut r, 20, &token, now + day - Duration::from_secs(1));
        assert_eq!(res, Ok(()));
    }
}
