//! Rooms and matchmaking: the signaling server's state, free of sockets.
//!
//! Every operation appends the messages it causes to an outbox of
//! `(connection, message)` pairs, in the order they must be delivered; the server
//! then hands them to the connections. That keeps this logic synchronous and
//! testable on its own.

use std::collections::HashMap;

use super::protocol::{
    valid_room_name, ErrorCode, IceServer, PeerId, ServerMessage, SignalData, Welcome, MIN_PLAYERS,
    PROTOCOL_VERSION,
};
use super::turn_credentials::TurnConfig;

/// Identifies one WebSocket connection inside the server.
pub(crate) type ConnId = u64;

/// Messages to deliver, in order.
pub(crate) type Outbox = Vec<(ConnId, ServerMessage)>;

/// A refusal: the error code and a human-readable message.
pub(crate) type Refusal = (ErrorCode, String);

#[derive(Debug)]
struct Room {
    players: u8,
    /// Members in join order.
    members: Vec<(PeerId, ConnId)>,
    next_peer: u32,
    /// Set once N members have joined; the room then takes no more joiners.
    full: bool,
    /// The key under which the room waits for joiners while it is not full.
    key: RoomKey,
}

/// Longest accepted private-room secret, in bytes.
const MAX_ROOM_SECRET_LEN: usize = 128;

/// Rooms wait for joiners under (name, size, private-room secret).
type RoomKey = (String, u8, Option<String>);

/// Counts of what the rooms hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoomCounts {
    pub rooms: usize,
    pub open_rooms: usize,
    pub members: usize,
    pub created: u64,
    pub freed: u64,
}

/// All rooms of one server.
#[derive(Debug)]
pub(crate) struct Rooms {
    rooms: HashMap<u64, Room>,
    /// Rooms still filling up, by (name, players).
    open: HashMap<RoomKey, u64>,
    /// Where each joined connection is.
    membership: HashMap<ConnId, (u64, PeerId)>,
    next_room: u64,
    max_rooms: usize,
    max_players: u8,
    ice_servers: Vec<IceServer>,
    turn: Option<TurnConfig>,
    created: u64,
    freed: u64,
    /// One match per room name: joiners of a name whose room is full are refused.
    exclusive: bool,
    /// Full rooms by name (only counted when `exclusive`).
    playing: HashMap<String, usize>,
}

impl Rooms {
    pub(crate) fn new(
        max_rooms: usize,
        max_players: u8,
        ice_servers: Vec<IceServer>,
        turn: Option<TurnConfig>,
    ) -> Self {
        Self {
            rooms: HashMap::new(),
            open: HashMap::new(),
            membership: HashMap::new(),
            next_room: 0,
            max_rooms,
            max_players,
            ice_servers,
            turn,
            created: 0,
            freed: 0,
            exclusive: false,
            playing: HashMap::new(),
        }
    }

    /// One match per room name: while a room is full (its match is on), joiners of
    /// the same name get `room_full`, and a joiner asking for another size than the
    /// waiting room's gets `bad_players`.
    pub(crate) fn set_exclusive(&mut self, exclusive: bool) {
        self.exclusive = exclusive;
    }

    /// Put `conn` into the open room `(name, players)`, creating it if needed.
    pub(crate) fn join(
        &mut self,
        conn: ConnId,
        version: u32,
        name: String,
        players: u8,
        secret: Option<String>,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        if self.membership.contains_key(&conn) {
            return Err((
                ErrorCode::AlreadyInRoom,
                "already in a room; send leave first".into(),
            ));
        }
        if version != PROTOCOL_VERSION {
            return Err((
                ErrorCode::VersionMismatch,
                format!("server speaks protocol version {PROTOCOL_VERSION}, not {version}"),
            ));
        }
        if !(MIN_PLAYERS..=self.max_players).contains(&players) {
            return Err((
                ErrorCode::BadPlayers,
                format!(
                    "players must be {MIN_PLAYERS}..={}, got {players}",
                    self.max_players
                ),
            ));
        }
        if !valid_room_name(&name) {
            return Err((
                ErrorCode::BadRoom,
                "room name must be 1-64 bytes without control characters".into(),
            ));
        }
        if secret
            .as_ref()
            .is_some_and(|s| s.len() > MAX_ROOM_SECRET_LEN)
        {
            return Err((
                ErrorCode::BadRoom,
                format!("room secret longer than {MAX_ROOM_SECRET_LEN} bytes"),
            ));
        }
        if self.exclusive {
            if self.playing.contains_key(&name) {
                return Err((
                    ErrorCode::RoomFull,
                    format!("room `{name}` is full: its match is in progress"),
                ));
            }
            if let Some(((_, waiting, _), _)) = self.open.iter().find(|((n, _, _), _)| *n == name) {
                if *waiting != players {
                    return Err((
                        ErrorCode::BadPlayers,
                        format!("room `{name}` is waiting for {waiting} players, not {players}"),
                    ));
                }
            }
        }
        let key = (name, players, secret);
        let room_id = match self.open.get(&key) {
            Some(&id) => id,
            None => {
                if self.rooms.len() >= self.max_rooms {
                    return Err((ErrorCode::ServerFull, "too many rooms".into()));
                }
                let id = self.next_room;
                self.next_room += 1;
                self.created += 1;
                self.rooms.insert(
                    id,
                    Room {
                        players,
                        members: Vec::with_capacity(players as usize),
                        next_peer: 1,
                        full: false,
                        key: key.clone(),
                    },
                );
                self.open.insert(key.clone(), id);
                id
            }
        };
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Err((ErrorCode::ServerFull, "room vanished".into()));
        };
        // Ids are never reused within a room; a room that has seen 4 billion
        // joiners (only reachable by abuse) takes no more.
        let Some(next_peer) = room.next_peer.checked_add(1) else {
            return Err((ErrorCode::ServerFull, "room has run out of peer ids".into()));
        };
        let peer = PeerId(room.next_peer);
        room.next_peer = next_peer;
        let mut ice_servers = self.ice_servers.clone();
        if let Some(turn) = &self.turn {
            ice_servers.push(turn.credentials(peer, std::time::SystemTime::now()));
        }
        out.push((
            conn,
            ServerMessage::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                peer_id: peer,
                room: key.0,
                players,
                ice_servers,
            }),
        ));
        for &(other, other_conn) in &room.members {
            out.push((conn, ServerMessage::PeerJoined { peer_id: other }));
            out.push((other_conn, ServerMessage::PeerJoined { peer_id: peer }));
        }
        room.members.push((peer, conn));
        self.membership.insert(conn, (room_id, peer));
        if room.members.len() == room.players as usize {
            room.full = true;
            let mut peers: Vec<PeerId> = room.members.iter().map(|m| m.0).collect();
            peers.sort_unstable();
            for &(_, member) in &room.members {
                out.push((
                    member,
                    ServerMessage::RoomFull {
                        peers: peers.clone(),
                    },
                ));
            }
            let key = room.key.clone();
            if self.exclusive {
                *self.playing.entry(key.0.clone()).or_default() += 1;
            }
            self.open.remove(&key);
        }
        Ok(())
    }

    /// Take `conn` out of its room, announce `peer_left`, free the room if empty.
    pub(crate) fn leave(&mut self, conn: ConnId, out: &mut Outbox) -> Result<(), Refusal> {
        let Some((room_id, peer)) = self.membership.remove(&conn) else {
            return Err((ErrorCode::NotInRoom, "not in a room".into()));
        };
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Ok(());
        };
        room.members.retain(|m| m.1 != conn);
        for &(_, member) in &room.members {
            out.push((member, ServerMessage::PeerLeft { peer_id: peer }));
        }
        if room.members.is_empty() {
            if !room.full {
                let key = room.key.clone();
                self.open.remove(&key);
            } else if let Some(count) = self.playing.get_mut(&room.key.0) {
                *count -= 1;
                if *count == 0 {
                    self.playing.remove(&room.key.0);
                }
            }
            self.rooms.remove(&room_id);
            self.freed += 1;
        }
        Ok(())
    }

    /// Relay `data` from `conn` to the member `to` of the same room.
    pub(crate) fn relay(
        &self,
        conn: ConnId,
        to: PeerId,
        data: SignalData,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        let Some(&(room_id, from)) = self.membership.get(&conn) else {
            return Err((ErrorCode::NotInRoom, "join a room before signaling".into()));
        };
        let target = self
            .rooms
            .get(&room_id)
            .and_then(|room| room.members.iter().find(|m| m.0 == to && m.0 != from));
        match target {
            Some(&(_, target_conn)) => {
                out.push((target_conn, ServerMessage::Signal { from, data }));
                Ok(())
            }
            None => Err((
                ErrorCode::UnknownPeer,
                format!("peer {} is not another member of your room", to.0),
            )),
        }
    }

    pub(crate) fn counts(&self) -> RoomCounts {
        RoomCounts {
            rooms: self.rooms.len(),
            open_rooms: self.open.len(),
            members: self.membership.len(),
            created: self.created,
            freed: self.freed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms::new(4, 8, Vec::new(), None)
    }

    fn join(r: &mut Rooms, conn: ConnId, name: &str, players: u8) -> Outbox {
        let mut out = Vec::new();
        let res = r.join(conn, PROTOCOL_VERSION, name.into(), players, None, &mut out);
        assert_eq!(res, Ok(()));
        out
    }

    #[test]
    fn exclusive_rooms_refuse_joiners_while_the_match_is_on() {
        let mut r = rooms();
        r.set_exclusive(true);
        join(&mut r, 10, "a", 2);
        let mut out = Vec::new();
        let wrong_size = r.join(11, PROTOCOL_VERSION, "a".into(), 3, None, &mut out);
        assert_eq!(wrong_size.map_err(|e| e.0), Err(ErrorCode::BadPlayers));
        join(&mut r, 12, "a", 2);
        let late = r.join(13, PROTOCOL_VERSION, "a".into(), 2, None, &mut out);
        assert_eq!(late.map_err(|e| e.0), Err(ErrorCode::RoomFull));
        // Other names are unaffected; once the match's members have left, the name
        // is free again.
        join(&mut r, 14, "b", 2);
        assert_eq!(r.leave(10, &mut out), Ok(()));
        assert_eq!(r.leave(12, &mut out), Ok(()));
        join(&mut r, 13, "a", 2);
    }

    #[test]
    fn two_joiners_fill_a_room_and_a_third_starts_a_new_one() {
        let mut r = rooms();
        let out = join(&mut r, 10, "a", 2);
        assert!(matches!(&out[..], [(10, ServerMessage::Welcome(w))] if w.peer_id == PeerId(1)));
        let out = join(&mut r, 11, "a", 2);
        let full = ServerMessage::RoomFull {
            peers: vec![PeerId(1), PeerId(2)],
        };
        assert_eq!(out.len(), 5);
        assert!(matches!(&out[0], (11, ServerMessage::Welcome(w)) if w.peer_id == PeerId(2)));
        assert_eq!(
            out[1],
            (11, ServerMessage::PeerJoined { peer_id: PeerId(1) })
        );
        assert_eq!(
            out[2],
            (10, ServerMessage::PeerJoined { peer_id: PeerId(2) })
        );
        assert_eq!(out[3], (10, full.clone()));
        assert_eq!(out[4], (11, full));
        let out = join(&mut r, 12, "a", 2);
        assert!(matches!(&out[..], [(12, ServerMessage::Welcome(w))] if w.peer_id == PeerId(1)));
        assert_eq!(r.counts().rooms, 2);
        assert_eq!(r.counts().open_rooms, 1);
    }

    #[test]
    fn different_sizes_are_different_matches() {
        let mut r = rooms();
        join(&mut r, 1, "a", 2);
        join(&mut r, 2, "a", 3);
        assert_eq!(r.counts().open_rooms, 2);
    }

    #[test]
    fn relay_stays_inside_the_room() {
        let mut r = rooms();
        join(&mut r, 1, "a", 2);
        join(&mut r, 2, "a", 2);
        join(&mut r, 3, "b", 2);
        join(&mut r, 4, "b", 2);
        let mut out = Vec::new();
        assert_eq!(
            r.relay(2, PeerId(1), SignalData::EndOfCandidates, &mut out),
            Ok(())
        );
        assert_eq!(
            out,
            vec![(
                1,
                ServerMessage::Signal {
                    from: PeerId(2),
                    data: SignalData::EndOfCandidates
                }
            )]
        );
        out.clear();
        // Peer 3 does not exist in room "a"; peer 2 may not signal itself.
        for to in [PeerId(3), PeerId(2)] {
            let res = r.relay(2, to, SignalData::EndOfCandidates, &mut out);
            assert_eq!(res.map_err(|e| e.0), Err(ErrorCode::UnknownPeer));
        }
        let res = r.relay(99, PeerId(1), SignalData::EndOfCandidates, &mut out);
        assert_eq!(res.map_err(|e| e.0), Err(ErrorCode::NotInRoom));
        assert!(out.is_empty());
    }

    #[test]
    fn leaving_announces_and_frees_empty_rooms() {
        let mut r = rooms();
        join(&mut r, 1, "a", 3);
        join(&mut r, 2, "a", 3);
        let mut out = Vec::new();
        r.leave(1, &mut out).expect("member");
        assert_eq!(
            out,
            vec![(2, ServerMessage::PeerLeft { peer_id: PeerId(1) })]
        );
        // A waiting room keeps filling; ids are not reused.
        let out = join(&mut r, 3, "a", 3);
        assert!(matches!(&out[0], (3, ServerMessage::Welcome(w)) if w.peer_id == PeerId(3)));
        let mut out = Vec::new();
        r.leave(2, &mut out).expect("member");
        r.leave(3, &mut out).expect("member");
        assert_eq!(
            r.counts(),
            RoomCounts {
                rooms: 0,
                open_rooms: 0,
                members: 0,
                created: 1,
                freed: 1
            }
        );
        assert_eq!(
            r.leave(3, &mut out).map_err(|e| e.0),
            Err(ErrorCode::NotInRoom)
        );
    }

    #[test]
    fn refusals() {
        let mut r = rooms();
        let mut out = Vec::new();
        let code = |res: Result<(), Refusal>| res.map_err(|e| e.0);
        assert_eq!(
            code(r.join(1, 2, "a".into(), 2, None, &mut out)),
            Err(ErrorCode::VersionMismatch)
        );
        assert_eq!(
            code(r.join(1, 1, "a".into(), 1, None, &mut out)),
            Err(ErrorCode::BadPlayers)
        );
        assert_eq!(
            code(r.join(1, 1, "a".into(), 9, None, &mut out)),
            Err(ErrorCode::BadPlayers)
        );
        assert_eq!(
            code(r.join(1, 1, String::new(), 2, None, &mut out)),
            Err(ErrorCode::BadRoom)
        );
        assert!(out.is_empty());
        for conn in 0..4 {
            join(&mut r, conn, &format!("room{conn}"), 2);
        }
        assert_eq!(
            code(r.join(9, 1, "x".into(), 2, None, &mut out)),
            Err(ErrorCode::ServerFull)
        );
        assert_eq!(
            code(r.join(0, 1, "room1".into(), 2, None, &mut out)),
            Err(ErrorCode::AlreadyInRoom)
        );
    }
}
