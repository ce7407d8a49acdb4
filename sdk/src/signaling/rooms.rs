//! Rooms and matchmaking: the signaling server's state, free of sockets.
//!
//! Every operation appends the messages it causes to an outbox of
//! `(connection, message)` pairs, in the order they must be delivered; the server
//! then hands them to the connections. That keeps this logic synchronous and
//! testable on its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::protocol::{
    valid_room_name, ErrorCode, IceServer, PeerId, ServerMessage, SignalData, Welcome,
    MAX_SECRET_LEN, MIN_PLAYERS, PROTOCOL_VERSION,
};

/// Identifies one WebSocket connection inside the server.
pub(crate) type ConnId = u64;

/// Messages to deliver, in order.
pub(crate) type Outbox = Vec<(ConnId, ServerMessage)>;

/// A refusal: the error code and a human-readable message.
pub(crate) type Refusal = (ErrorCode, String);

/// The longest a seat is held (a longer `seat_grace` is cut to this).
pub(crate) const MAX_SEAT_GRACE: Duration = Duration::from_secs(24 * 3600);

mod seats;

pub(crate) use seats::PROBE_TIMEOUT;

#[derive(Debug)]
struct Room {
    players: u8,
    /// The match starts with this many players (`players` unless drop-in).
    start_with: u8,
    /// Who took each seat, in join order (the players' handles). Before the
    /// match starts a leaver's seat goes to the next joiner; once it runs, a
    /// seat stays its player's.
    seats: Vec<PeerId>,
    /// Players in join order.
    members: Vec<(PeerId, ConnId)>,
    /// Spectators in join order (not counted in `players`).
    spectators: Vec<(PeerId, ConnId)>,
    next_peer: u32,
    /// Set once the match started (N members joined; in a drop-in room,
    /// `start_with`). A full room takes no more players once every seat is taken.
    full: bool,
    /// Every player left after the room was open or full: it takes nobody any more
    /// and is freed once its spectators leave too.
    abandoned: bool,
    /// The key under which the room waits for joiners while it is not full.
    key: RoomKey,
    /// Who may watch, as its creator (first player) asked; `None` until a player
    /// has joined.
    spectator_policy: Option<SpectatorPolicy>,
    /// The secrets of spectators that joined before any player (checked once the
    /// creator has set the policy).
    early_spectator_secrets: Vec<(ConnId, Option<String>)>,
    /// Each player's rejoin token (see `seats`).
    tokens: HashMap<PeerId, String>,
    /// Seats of players whose connection closed mid-match, held until then.
    held: HashMap<PeerId, Instant>,
}

/// Which spectators a room admits, set by the player who creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SpectatorPolicy {
    /// Anyone who knows the room's name, size and private-room secret.
    Open,
    /// Only spectators that give this secret.
    Secret(String),
    /// Nobody.
    Refused,
}

impl Room {
    /// Players in ascending id order.
    /// The `seats` message of a drop-in room.
    fn seats_message(&self, in_progress: bool) -> ServerMessage {
        let seats = (0..usize::from(self.players))
            .map(|i| self.seats.get(i).copied())
            .collect();
        ServerMessage::Seats { seats, in_progress }
    }

    fn player_ids(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.members.iter().map(|m| m.0).collect();
        peers.sort_unstable();
        peers
    }

    /// Tell `conn` of every spectator in the room.
    fn spectators_to(&self, conn: ConnId, out: &mut Outbox) {
        for &(spectator, _) in &self.spectators {
            out.push((
                conn,
                ServerMessage::PeerJoined {
                    peer_id: spectator,
                    spectator: true,
                },
            ));
        }
    }

    fn everyone(&self) -> impl Iterator<Item = &(PeerId, ConnId)> {
        self.members.iter().chain(&self.spectators)
    }

    /// Whether a spectator with `secret` may watch (any may wait while no
    /// player has set the room's policy).
    fn admits_spectator(&self, secret: Option<&str>) -> Result<(), Refusal> {
        let Some(policy) = &self.spectator_policy else {
            return Ok(());
        };
        policy.admits(secret)
    }
}

impl SpectatorPolicy {
    /// The policy a room's creator asks for; with `require_secret`, a room without
    /// a spectator secret admits nobody.
    fn from_creator(req: &JoinRequest, require_secret: bool) -> Self {
        match (&req.spectator_secret, req.no_spectators) {
            (_, true) => SpectatorPolicy::Refused,
            (Some(secret), false) => SpectatorPolicy::Secret(secret.clone()),
            (None, false) if require_secret => SpectatorPolicy::Refused,
            (None, false) => SpectatorPolicy::Open,
        }
    }

    fn admits(&self, secret: Option<&str>) -> Result<(), Refusal> {
        let refused = |why: &str| Err((ErrorCode::SpectatorRefused, why.to_owned()));
        match (self, secret) {
            (SpectatorPolicy::Open, _) => Ok(()),
            (SpectatorPolicy::Refused, _) => refused("this room admits no spectators"),
            (SpectatorPolicy::Secret(expected), Some(given)) if secrets_match(expected, given) => {
                Ok(())
            }
            (SpectatorPolicy::Secret(_), _) => refused("missing or wrong spectator secret"),
        }
    }
}

/// Every join must speak our protocol version.
fn check_version(req: &JoinRequest) -> Result<(), Refusal> {
    if req.version == PROTOCOL_VERSION {
        return Ok(());
    }
    Err((
        ErrorCode::VersionMismatch,
        format!(
            "server speaks protocol version {PROTOCOL_VERSION}, not {}",
            req.version
        ),
    ))
}

/// Compare secrets without an early exit on the first differing byte.
pub(crate) fn secrets_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Rooms wait for joiners under (name, size, private-room secret, players the
/// match starts with).
type RoomKey = (String, u8, Option<String>, u8);

/// What a `join` asks for (also sent between the nodes of a cluster).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct JoinRequest {
    pub version: u32,
    pub name: String,
    pub players: u8,
    pub secret: Option<String>,
    pub spectator: bool,
    /// From the room's creator: the secret spectators must give; from a
    /// spectator: the secret it gives.
    pub spectator_secret: Option<String>,
    /// From the room's creator: admit no spectators.
    pub no_spectators: bool,
    /// One more ICE server for this joiner's `welcome` (its TURN credentials).
    pub turn: Option<IceServer>,
    /// Take a held seat back with this token instead of joining anew.
    pub rejoin_token: Option<String>,
    /// With `rejoin_token`: the player's connections are alive; only its
    /// signaling connection is new (the others hear `peer_resumed`).
    #[serde(default)]
    pub resume: bool,
    /// A fresh random token, the server's, for this player's seat.
    pub fresh_token: Option<String>,
    /// Drop-in room: start the match with this many players.
    pub start_with: Option<u8>,
    /// When the server received the join (on another node: when this one did).
    #[serde(skip, default = "Instant::now")]
    pub received_at: Instant,
}

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
    /// Per room name: the size its open rooms wait for and how many there are
    /// (several only with different private-room secrets). Lets an exclusive
    /// server check a name without scanning every open room.
    open_names: HashMap<String, (u8, usize)>,
    /// The room of each key that filled last (spectators join its match).
    last_full: HashMap<RoomKey, u64>,
    /// Where each joined connection is.
    membership: HashMap<ConnId, (u64, PeerId)>,
    next_room: u64,
    max_rooms: usize,
    max_players: u8,
    max_spectators: usize,
    /// Spectators are admitted only to rooms whose creator set a spectator secret.
    require_spectator_secret: bool,
    ice_servers: Vec<IceServer>,
    created: u64,
    freed: u64,
    /// One match per room name: joiners of a name whose room is full are refused.
    exclusive: bool,
    /// Full rooms by name (only counted when `exclusive`).
    playing: HashMap<String, usize>,
    /// How long a seat is held for its player after its connection closed
    /// mid-match (zero: no seats held, no rejoin tokens).
    seat_grace: Duration,
    /// Every seat's rejoin token: (room, player).
    rejoin_tokens: HashMap<String, (u64, PeerId)>,
    /// Connections to check for life (a rejoin asked for their seat): the
    /// driver takes them with [`Rooms::take_probes`].
    probes: Vec<ConnId>,
    /// Rooms per room name (a cluster node gives up names without rooms).
    names: HashMap<String, usize>,
}

impl Rooms {
    pub(crate) fn new(max_rooms: usize, max_players: u8, ice_servers: Vec<IceServer>) -> Self {
        Self {
            rooms: HashMap::new(),
            open: HashMap::new(),
            open_names: HashMap::new(),
            last_full: HashMap::new(),
            membership: HashMap::new(),
            next_room: 0,
            max_rooms,
            max_players,
            max_spectators: 8,
            require_spectator_secret: false,
            ice_servers,
            created: 0,
            freed: 0,
            exclusive: false,
            playing: HashMap::new(),
            seat_grace: Duration::ZERO,
            rejoin_tokens: HashMap::new(),
            probes: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// Hold a player's seat this long after its connection closed mid-match, and
    /// give players rejoin tokens (zero: neither). At most [`MAX_SEAT_GRACE`].
    pub(crate) fn set_seat_grace(&mut self, grace: Duration) {
        self.seat_grace = grace.min(MAX_SEAT_GRACE);
    }

    /// One match per room name: while a room is full (its match is on), joiners of
    /// the same name get `room_full`, and a joiner asking for another size than the
    /// waiting room's gets `bad_players`.
    /// Connections the driver must check for life: each gets a WebSocket ping
    /// and is closed as lost (its seat held) if it sends nothing within the
    /// probe timeout.
    pub(crate) fn take_probes(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.probes)
    }

    pub(crate) fn set_exclusive(&mut self, exclusive: bool) {
        self.exclusive = exclusive;
    }

    /// Most spectators one room takes (further ones get `room_full`).
    pub(crate) fn set_max_spectators(&mut self, max: usize) {
        self.max_spectators = max;
    }

    /// Admit spectators only to rooms whose creator set a spectator secret.
    pub(crate) fn set_require_spectator_secret(&mut self, required: bool) {
        self.require_spectator_secret = required;
    }

    /// What every `join` must pass, a rejoin too: not in a room yet, our version.
    fn check_joiner(&self, conn: ConnId, req: &JoinRequest) -> Result<(), Refusal> {
        if self.membership.contains_key(&conn) {
            return Err((
                ErrorCode::AlreadyInRoom,
                "already in a room; send leave first".into(),
            ));
        }
        check_version(req)
    }

    /// The join's own fields: sizes, name, secrets (a cluster node checks these
    /// before asking where the room lives).
    pub(crate) fn check_request(&self, req: &JoinRequest) -> Result<(), Refusal> {
        check_version(req)?;
        if !(MIN_PLAYERS..=self.max_players).contains(&req.players) {
            return Err((
                ErrorCode::BadPlayers,
                format!(
                    "players must be {MIN_PLAYERS}..={}, got {}",
                    self.max_players, req.players
                ),
            ));
        }
        if !valid_room_name(&req.name) {
            return Err((
                ErrorCode::BadRoom,
                "room name must be 1-64 bytes of printable characters, no space at either end"
                    .into(),
            ));
        }
        if let Some(start) = req.start_with {
            if !(MIN_PLAYERS..=req.players).contains(&start) {
                return Err((
                    ErrorCode::BadPlayers,
                    format!(
                        "start_with must be {MIN_PLAYERS}..={} (the room's size), got {start}",
                        req.players
                    ),
                ));
            }
        }
        for secret in [&req.secret, &req.spectator_secret] {
            if secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET_LEN) {
                return Err((
                    ErrorCode::BadRoom,
                    format!("room or spectator secret longer than {MAX_SECRET_LEN} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// Whether `conn` is a member of a room here.
    pub(crate) fn is_member(&self, conn: ConnId) -> bool {
        self.membership.contains_key(&conn)
    }

    /// Take every member out of the rooms of `name` that are still filling
    /// (another server holds the name now, so nobody can join them); their
    /// connections. Running matches of the name are left alone.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn close_filling(&mut self, name: &str) -> Vec<ConnId> {
        let conns: Vec<ConnId> = self
            .rooms
            .values()
            .filter(|room| room.key.0 == name && !room.full)
            .flat_map(|room| room.everyone().map(|&(_, conn)| conn))
            .collect();
        // Everyone told of a departure is leaving too: nothing to deliver.
        let mut out = Vec::new();
        for &conn in &conns {
            let _ = self.leave_at(conn, None, &mut out);
        }
        conns
    }

    /// Whether any room of this name exists here.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn has_rooms_named(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn check_join(&self, conn: ConnId, req: &JoinRequest) -> Result<(), Refusal> {
        self.check_joiner(conn, req)?;
        self.check_request(req)?;
        if self.exclusive && !req.spectator {
            let name = &req.name;
            // One match per name; a running drop-in match of this key still
            // takes players into its free seats.
            let key = (
                req.name.clone(),
                req.players,
                req.secret.clone(),
                req.start_with.unwrap_or(req.players),
            );
            let running_drop_in = self
                .open
                .get(&key)
                .and_then(|id| self.rooms.get(id))
                .is_some_and(|room| room.full);
            if self.playing.contains_key(name) && !running_drop_in {
                return Err((
                    ErrorCode::RoomFull,
                    format!("room `{name}` is full: its match is in progress"),
                ));
            }
            if let Some(&(waiting, _)) = self.open_names.get(name) {
                if waiting != req.players {
                    return Err((
                        ErrorCode::BadPlayers,
                        format!(
                            "room `{name}` is waiting for {waiting} players, not {}",
                            req.players
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `key`'s room stopped taking joiners (it filled, or was abandoned).
    /// (The two maps, not `self`: a caller may hold one of the rooms.)
    fn close_open(
        open: &mut HashMap<RoomKey, u64>,
        open_names: &mut HashMap<String, (u8, usize)>,
        key: &RoomKey,
    ) {
        if open.remove(key).is_none() {
            return;
        }
        if let Some(entry) = open_names.get_mut(&key.0) {
            entry.1 -= 1;
            if entry.1 == 0 {
                open_names.remove(&key.0);
            }
        }
    }

    /// The open room of `key`, created if there is none.
    fn open_room(&mut self, key: &RoomKey) -> Result<u64, Refusal> {
        if let Some(&id) = self.open.get(key) {
            return Ok(id);
        }
        if self.rooms.len() >= self.max_rooms {
            return Err((ErrorCode::ServerFull, "too many rooms".into()));
        }
        let id = self.next_room;
        self.next_room += 1;
        self.created += 1;
        self.rooms.insert(
            id,
            Room {
                players: key.1,
                start_with: key.3,
                seats: Vec::with_capacity(key.1 as usize),
                members: Vec::with_capacity(key.1 as usize),
                spectators: Vec::new(),
                next_peer: 1,
                full: false,
                abandoned: false,
                key: key.clone(),
                spectator_policy: None,
                early_spectator_secrets: Vec::new(),
                tokens: HashMap::new(),
                held: HashMap::new(),
            },
        );
        self.open.insert(key.clone(), id);
        self.open_names.entry(key.0.clone()).or_insert((key.1, 0)).1 += 1;
        *self.names.entry(key.0.clone()).or_default() += 1;
        Ok(id)
    }

    /// Put `conn` into the open room `(name, players)`, creating it if needed; a
    /// spectator goes to the match of that key that filled last, if it still runs.
    pub(crate) fn join(
        &mut self,
        conn: ConnId,
        req: JoinRequest,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        if let Some(token) = &req.rejoin_token {
            return self.rejoin(conn, &req, token, out);
        }
        self.check_join(conn, &req)?;
        let spectator = req.spectator;
        let start_with = req.start_with.unwrap_or(req.players);
        let key = (
            req.name.clone(),
            req.players,
            req.secret.clone(),
            start_with,
        );
        let running = spectator
            .then(|| self.last_full.get(&key).copied())
            .flatten();
        let room_id = match running {
            Some(id) => id,
            None => self.open_room(&key)?,
        };
        let max_spectators = self.max_spectators;
        let require_spectator_secret = self.require_spectator_secret;
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Err((ErrorCode::ServerFull, "room vanished".into()));
        };
        if spectator {
            room.admits_spectator(req.spectator_secret.as_deref())?;
            if room.spectators.len() >= max_spectators {
                return Err((
                    ErrorCode::RoomFull,
                    format!("room `{}` has {max_spectators} spectators already", key.0),
                ));
            }
        }
        // Ids are never reused within a room; a room that has seen 4 billion
        // joiners (only reachable by abuse) takes no more.
        let Some(next_peer) = room.next_peer.checked_add(1) else {
            return Err((ErrorCode::ServerFull, "room has run out of peer ids".into()));
        };
        let peer = PeerId(room.next_peer);
        room.next_peer = next_peer;
        let mut ice_servers = self.ice_servers.clone();
        ice_servers.extend(req.turn.clone());
        let rejoin_token = req
            .fresh_token
            .clone()
            .filter(|_| !spectator && !self.seat_grace.is_zero());
        if let Some(token) = &rejoin_token {
            room.tokens.insert(peer, token.clone());
            self.rejoin_tokens.insert(token.clone(), (room_id, peer));
        }
        out.push((
            conn,
            ServerMessage::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                peer_id: peer,
                room: key.0.clone(),
                players: key.1,
                ice_servers,
                spectator,
                rejoin_token,
            }),
        ));
        self.membership.insert(conn, (room_id, peer));
        if spectator {
            for &(player, player_conn) in &room.members {
                out.push((
                    conn,
                    ServerMessage::PeerJoined {
                        peer_id: player,
                        spectator: false,
                    },
                ));
                out.push((
                    player_conn,
                    ServerMessage::PeerJoined {
                        peer_id: peer,
                        spectator: true,
                    },
                ));
            }
            room.spectators.push((peer, conn));
            if room.spectator_policy.is_none() {
                room.early_spectator_secrets
                    .push((conn, req.spectator_secret.clone()));
            }
            if room.full {
                let peers = room.player_ids();
                out.push((conn, ServerMessage::RoomFull { peers }));
            }
            return Ok(());
        }
        if room.spectator_policy.is_none() {
            // The creator decides who may watch; spectators that came early and
            // are not admitted are sent away before anyone hears of them.
            let policy = SpectatorPolicy::from_creator(&req, require_spectator_secret);
            for (early, secret) in std::mem::take(&mut room.early_spectator_secrets) {
                if let Err(refusal) = policy.admits(secret.as_deref()) {
                    room.spectators.retain(|s| s.1 != early);
                    self.membership.remove(&early);
                    out.push((early, ServerMessage::error(refusal.0, refusal.1)));
                }
            }
            room.spectator_policy = Some(policy);
        }
        for &(other, other_conn) in room.everyone() {
            let other_is_spectator = room.spectators.iter().any(|s| s.0 == other);
            if !other_is_spectator {
                out.push((
                    conn,
                    ServerMessage::PeerJoined {
                        peer_id: other,
                        spectator: false,
                    },
                ));
            }
            out.push((
                other_conn,
                ServerMessage::PeerJoined {
                    peer_id: peer,
                    spectator: false,
                },
            ));
        }
        room.spectators_to(conn, out);
        room.members.push((peer, conn));
        room.seats.push(peer);
        if room.full {
            // A drop-in: the newcomer starts connecting at once; the players
            // connect to it and seat it.
            let seat = u8::try_from(room.seats.len() - 1).unwrap_or(u8::MAX);
            out.push((
                conn,
                ServerMessage::RoomFull {
                    peers: room.player_ids(),
                },
            ));
            out.push((conn, room.seats_message(true)));
            for &(_, member) in &room.members {
                if member != conn {
                    out.push((
                        member,
                        ServerMessage::DroppedIn {
                            peer_id: peer,
                            seat,
                        },
                    ));
                }
            }
        } else if room.members.len() == room.start_with as usize {
            room.full = true;
            let peers = room.player_ids();
            let drop_in = room.start_with < room.players;
            for &(_, member) in room.everyone() {
                out.push((
                    member,
                    ServerMessage::RoomFull {
                        peers: peers.clone(),
                    },
                ));
                if drop_in {
                    out.push((member, room.seats_message(false)));
                }
            }
            if self.exclusive {
                *self.playing.entry(key.0.clone()).or_default() += 1;
            }
            self.last_full.insert(key.clone(), room_id);
        }
        if room.seats.len() == room.players as usize {
            Self::close_open(&mut self.open, &mut self.open_names, &key);
        }
        Ok(())
    }

    /// `conn` asked to leave its room: it gives its seat up (see [`Self::leave_at`]).
    pub(crate) fn leave(&mut self, conn: ConnId, out: &mut Outbox) -> Result<(), Refusal> {
        self.leave_at(conn, None, out)
    }

    /// `conn`'s connection is gone (closed, failed, or dropped as too slow) at
    /// `now`: a player of a running match keeps its seat for the grace period.
    pub(crate) fn disconnect(
        &mut self,
        conn: ConnId,
        now: Instant,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        self.leave_at(conn, Some(now), out)
    }

    /// Take `conn` out of its room, announce `peer_left`, free the room once empty.
    /// A room whose players have all left takes nobody any more. With
    /// `connection_lost_at`, a player of a running match keeps its seat.
    fn leave_at(
        &mut self,
        conn: ConnId,
        connection_lost_at: Option<Instant>,
        out: &mut Outbox,
    ) -> Result<(), Refusal> {
        let Some((room_id, peer)) = self.membership.remove(&conn) else {
            return Err((ErrorCode::NotInRoom, "not in a room".into()));
        };
        let grace = self.seat_grace;
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return Ok(());
        };
        let was_player = room.members.iter().any(|m| m.1 == conn);
        if was_player {
            match connection_lost_at {
                Some(now) if room.full && !room.abandoned && room.tokens.contains_key(&peer) => {
                    room.held.insert(peer, now + grace);
                }
                _ => {
                    if let Some(token) = room.tokens.remove(&peer) {
                        self.rejoin_tokens.remove(&token);
                    }
                }
            }
        }
        room.members.retain(|m| m.1 != conn);
        if !room.full {
            // Before the match starts a seat goes to the next joiner.
            room.seats.retain(|s| *s != peer);
        }
        room.spectators.retain(|m| m.1 != conn);
        room.early_spectator_secrets.retain(|e| e.0 != conn);
        for &(_, member) in room.everyone() {
            // Spectators hear only of players.
            let to_spectator = room.spectators.iter().any(|s| s.1 == member);
            if was_player || !to_spectator {
                out.push((member, ServerMessage::PeerLeft { peer_id: peer }));
            }
        }
        // Abandoned when its last player leaves (a spectator leaving a room that
        // has no players yet leaves it open for them).
        if was_player && room.members.is_empty() && !room.abandoned {
            room.abandoned = true;
            let key = room.key.clone();
            // Still open (filling, or a drop-in room with free seats).
            if room.seats.len() < usize::from(room.players) {
                Self::close_open(&mut self.open, &mut self.open_names, &key);
            }
            if let Some(count) = self.playing.get_mut(&key.0).filter(|_| room.full) {
                *count -= 1;
                if *count == 0 {
                    self.playing.remove(&key.0);
                }
            }
            if self.last_full.get(&key) == Some(&room_id) {
                self.last_full.remove(&key);
            }
        }
        if room.abandoned {
            // Nobody is left to rejoin: the room's seats go.
            room.held.clear();
            for (_, token) in room.tokens.drain() {
                self.rejoin_tokens.remove(&token);
            }
        }
        if room.members.is_empty() && room.spectators.is_empty() {
            let name = room.key.0.clone();
            self.rooms.remove(&room_id);
            self.freed += 1;
            if let Some(count) = self.names.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.names.remove(&name);
                }
            }
        }
        Ok(())
    }

    /// Relay `data` from `conn` to the member (player or spectator) `to` of the
    /// same room.
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
            .and_then(|room| room.everyone().find(|m| m.0 == to && m.0 != from));
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
pub(crate) mod tests {
    use super::*;

    fn rooms() -> Rooms {
        Rooms::new(4, 8, Vec::new())
    }

    pub(crate) fn request(version: u32, name: &str, players: u8) -> JoinRequest {
        JoinRequest {
            version,
            name: name.into(),
            players,
            secret: None,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
            turn: None,
            rejoin_token: None,
            resume: false,
            fresh_token: None,
            start_with: None,
            received_at: Instant::now(),
        }
    }

    pub(super) fn join(r: &mut Rooms, conn: ConnId, name: &str, players: u8) -> Outbox {
        let mut out = Vec::new();
        let res = r.join(conn, request(PROTOCOL_VERSION, name, players), &mut out);
        assert_eq!(res, Ok(()));
        out
    }

    pub(super) fn spectate(r: &mut Rooms, conn: ConnId, name: &str, players: u8) -> Outbox {
        let mut out = Vec::new();
        let req = JoinRequest {
            spectator: true,
            ..request(PROTOCOL_VERSION, name, players)
        };
        assert_eq!(r.join(conn, req, &mut out), Ok(()));
        out
    }

    #[test]
    fn exclusive_rooms_refuse_joiners_while_the_match_is_on() {
        let mut r = rooms();
        r.set_exclusive(true);
        join(&mut r, 10, "a", 2);
        let mut out = Vec::new();
        let wrong_size = r.join(11, request(PROTOCOL_VERSION, "a", 3), &mut out);
        assert_eq!(wrong_size.map_err(|e| e.0), Err(ErrorCode::BadPlayers));
        join(&mut r, 12, "a", 2);
        let late = r.join(13, request(PROTOCOL_VERSION, "a", 2), &mut out);
        assert_eq!(late.map_err(|e| e.0), Err(ErrorCode::RoomFull));
        // Other names are unaffected; once the match's members have left, the name
        // is free again.
        join(&mut r, 14, "b", 2);
        assert_eq!(r.leave(10, &mut out), Ok(()));
        assert_eq!(r.leave(12, &mut out), Ok(()));
        join(&mut r, 13, "a", 2);
    }

    #[test]
    fn exclusive_rooms_track_a_name_waiting_in_several_private_rooms() {
        let mut r = rooms();
        r.set_exclusive(true);
        let private = |secret: &str, players| JoinRequest {
            secret: Some(secret.into()),
            ..request(PROTOCOL_VERSION, "a", players)
        };
        let mut out = Vec::new();
        assert_eq!(r.join(10, private("x", 2), &mut out), Ok(()));
        assert_eq!(r.join(11, private("y", 2), &mut out), Ok(()));
        assert_eq!(r.open_names.get("a"), Some(&(2, 2)));
        // Another size is refused while either room waits.
        let wrong = r.join(12, private("z", 3), &mut out);
        assert_eq!(wrong.map_err(|e| e.0), Err(ErrorCode::BadPlayers));
        // One fills: the name is now playing (one match per name).
        assert_eq!(r.join(13, private("x", 2), &mut out), Ok(()));
        let late = r.join(14, private("y", 2), &mut out);
        assert_eq!(late.map_err(|e| e.0), Err(ErrorCode::RoomFull));
        // The waiting one's player leaves: nothing of the name is open any more.
        r.leave(11, &mut out).expect("a member");
        assert_eq!(r.open_names.get("a"), None);
        assert_eq!(r.counts().open_rooms, 0);
    }

    #[test]
    fn spectators_join_the_running_match_and_hear_only_of_players() {
        let mut r = rooms();
        r.set_exclusive(true);
        r.set_max_spectators(1);
        join(&mut r, 10, "a", 2);
        join(&mut r, 11, "a", 2);
        let out = spectate(&mut r, 12, "a", 2);
        let joined = |peer_id, spectator| ServerMessage::PeerJoined { peer_id, spectator };
        assert!(
            matches!(&out[0], (12, ServerMessage::Welcome(w)) if w.peer_id == PeerId(3) && w.spectator)
        );
        assert_eq!(
            out[1..],
            [
                (12, joined(PeerId(1), false)),
                (10, joined(PeerId(3), true)),
                (12, joined(PeerId(2), false)),
                (11, joined(PeerId(3), true)),
                (
                    12,
                    ServerMessage::RoomFull {
                        peers: vec![PeerId(1), PeerId(2)]
                    }
                ),
            ]
        );
        // One spectator per room here; players of the name are still refused.
        let mut out = Vec::new();
        let req = JoinRequest {
            spectator: true,
            ..request(PROTOCOL_VERSION, "a", 2)
        };
        let second = r.join(13, req, &mut out);
        assert_eq!(second.map_err(|e| e.0), Err(ErrorCode::RoomFull));
        // Spectator and host signal each other.
        r.relay(12, PeerId(1), SignalData::EndOfCandidates, &mut out)
            .expect("spectator to host");
        r.relay(10, PeerId(3), SignalData::EndOfCandidates, &mut out)
            .expect("host to spectator");
        assert_eq!(out.len(), 2);
        // The spectator leaving is told to the players; a player leaving to everyone.
        out.clear();
        r.leave(12, &mut out).expect("spectator");
        assert_eq!(
            out,
            [
                (10, ServerMessage::PeerLeft { peer_id: PeerId(3) }),
                (11, ServerMessage::PeerLeft { peer_id: PeerId(3) })
            ]
        );
        spectate(&mut r, 12, "a", 2);
        out.clear();
        r.leave(10, &mut out).expect("player");
        assert_eq!(out.len(), 2);
        r.leave(11, &mut out).expect("player");
        // The match is over: its name is free, the room lives until its spectator
        // leaves.
        assert_eq!(r.counts().rooms, 1);
        join(&mut r, 20, "a", 2);
        r.leave(12, &mut out).expect("spectator");
        assert_eq!(r.counts().rooms, 1);
        assert_eq!(r.counts().freed, 1);
    }

    fn spectate_with(
        r: &mut Rooms,
        conn: ConnId,
        name: &str,
        secret: Option<&str>,
    ) -> Result<(), ErrorCode> {
        let req = JoinRequest {
            spectator: true,
            spectator_secret: secret.map(str::to_owned),
            ..request(PROTOCOL_VERSION, name, 2)
        };
        r.join(conn, req, &mut Vec::new()).map_err(|e| e.0)
    }

    fn create_with(r: &mut Rooms, conn: ConnId, name: &str, secret: Option<&str>, none: bool) {
        let req = JoinRequest {
            spectator_secret: secret.map(str::to_owned),
            no_spectators: none,
            ..request(PROTOCOL_VERSION, name, 2)
        };
        assert_eq!(r.join(conn, req, &mut Vec::new()), Ok(()));
    }

    #[test]
    fn the_creator_decides_who_may_watch() {
        let mut r = Rooms::new(10, 8, Vec::new());
        create_with(&mut r, 1, "secret", Some("eyes"), false);
        create_with(&mut r, 2, "closed", None, true);
        create_with(&mut r, 3, "open", None, false);
        // A later player cannot change the policy.
        create_with(&mut r, 4, "secret", None, true);
        assert_eq!(
            spectate_with(&mut r, 10, "secret", None),
            Err(ErrorCode::SpectatorRefused)
        );
        assert_eq!(
            spectate_with(&mut r, 10, "secret", Some("eye")),
            Err(ErrorCode::SpectatorRefused)
        );
        assert_eq!(spectate_with(&mut r, 10, "secret", Some("eyes")), Ok(()));
        assert_eq!(
            spectate_with(&mut r, 11, "closed", Some("eyes")),
            Err(ErrorCode::SpectatorRefused)
        );
        assert_eq!(spectate_with(&mut r, 12, "open", None), Ok(()));
        // The server may demand a secret everywhere.
        let mut strict = Rooms::new(10, 8, Vec::new());
        strict.set_require_spectator_secret(true);
        create_with(&mut strict, 1, "open", None, false);
        create_with(&mut strict, 2, "secret", Some("eyes"), false);
        assert_eq!(
            spectate_with(&mut strict, 10, "open", None),
            Err(ErrorCode::SpectatorRefused)
        );
        assert_eq!(
            spectate_with(&mut strict, 11, "secret", Some("eyes")),
            Ok(())
        );
    }

    #[test]
    fn early_spectators_the_creator_does_not_admit_are_sent_away() {
        let mut r = rooms();
        assert_eq!(spectate_with(&mut r, 1, "a", None), Ok(()));
        assert_eq!(spectate_with(&mut r, 2, "a", Some("eyes")), Ok(()));
        let req = JoinRequest {
            spectator_secret: Some("eyes".into()),
            ..request(PROTOCOL_VERSION, "a", 2)
        };
        let mut out = Vec::new();
        assert_eq!(r.join(3, req, &mut out), Ok(()));
        // Spectator 1 is refused and out of the room; the creator hears only of 2.
        assert!(out.contains(&(
            1,
            ServerMessage::error(
                ErrorCode::SpectatorRefused,
                "missing or wrong spectator secret"
            )
        )));
        assert!(!out.iter().any(|(c, m)| *c == 3
            && matches!(m, ServerMessage::PeerJoined { peer_id, .. } if *peer_id == PeerId(1))));
        assert!(out.iter().any(|(c, m)| *c == 3
            && matches!(m, ServerMessage::PeerJoined { peer_id, spectator: true } if *peer_id == PeerId(2))));
        assert_eq!(
            r.leave(1, &mut out).map_err(|e| e.0),
            Err(ErrorCode::NotInRoom)
        );
        assert_eq!(r.counts().members, 2);
    }

    #[test]
    fn a_spectator_leaving_a_room_without_players_leaves_it_open() {
        let mut r = rooms();
        spectate(&mut r, 1, "a", 2);
        spectate(&mut r, 2, "a", 2);
        r.leave(1, &mut Vec::new()).expect("spectator");
        join(&mut r, 3, "a", 2);
        let out = join(&mut r, 4, "a", 2);
        // The waiting spectator is in the room that fills.
        assert!(out
            .iter()
            .any(|(c, m)| *c == 2 && matches!(m, ServerMessage::RoomFull { .. })));
        assert_eq!(r.counts().rooms, 1);
    }

    #[test]
    fn an_early_spectator_waits_in_the_open_room() {
        let mut r = rooms();
        let out = spectate(&mut r, 1, "a", 2);
        assert_eq!(out.len(), 1);
        join(&mut r, 2, "a", 2);
        let out = join(&mut r, 3, "a", 2);
        // The spectator hears of the second player and of the room being full.
        let to_spectator: Vec<_> = out.iter().filter(|(c, _)| *c == 1).collect();
        assert_eq!(to_spectator.len(), 2);
        assert!(matches!(
            to_spectator[1].1,
            ServerMessage::RoomFull { ref peers } if peers == &[PeerId(2), PeerId(3)]
        ));
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
            (
                11,
                ServerMessage::PeerJoined {
                    peer_id: PeerId(1),
                    spectator: false
                }
            )
        );
        assert_eq!(
            out[2],
            (
                10,
                ServerMessage::PeerJoined {
                    peer_id: PeerId(2),
                    spectator: false
                }
            )
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
            code(r.join(1, request(2, "a", 2), &mut out)),
            Err(ErrorCode::VersionMismatch)
        );
        assert_eq!(
            code(r.join(1, request(1, "a", 1), &mut out)),
            Err(ErrorCode::BadPlayers)
        );
        assert_eq!(
            code(r.join(1, request(1, "a", 9), &mut out)),
            Err(ErrorCode::BadPlayers)
        );
        assert_eq!(
            code(r.join(1, request(1, "", 2), &mut out)),
            Err(ErrorCode::BadRoom)
        );
        assert!(out.is_empty());
        for conn in 0..4 {
            join(&mut r, conn, &format!("room{conn}"), 2);
        }
        assert_eq!(
            code(r.join(9, request(1, "x", 2), &mut out)),
            Err(ErrorCode::ServerFull)
        );
        assert_eq!(
            code(r.join(0, request(1, "room1", 2), &mut out)),
            Err(ErrorCode::AlreadyInRoom)
        );
    }
    fn join_drop_in(r: &mut Rooms, conn: ConnId, players: u8, start_with: u8) -> Outbox {
        let mut out = Vec::new();
        let req = JoinRequest {
            start_with: Some(start_with),
            ..request(PROTOCOL_VERSION, "arena", players)
        };
        assert_eq!(r.join(conn, req, &mut out), Ok(()));
        out
    }

    fn seats(ids: &[Option<u32>], in_progress: bool) -> ServerMessage {
        ServerMessage::Seats {
            seats: ids.iter().map(|id| id.map(PeerId)).collect(),
            in_progress,
        }
    }

    #[test]
    fn a_drop_in_room_starts_early_and_fills_its_free_seats_while_it_runs() {
        let mut r = Rooms::new(8, 8, Vec::new());
        // A refused size: start_with must be 2..=players.
        let mut out = Vec::new();
        let bad = JoinRequest {
            start_with: Some(5),
            ..request(PROTOCOL_VERSION, "arena", 4)
        };
        assert_eq!(
            r.join(9, bad, &mut out).map_err(|e| e.0),
            Err(ErrorCode::BadPlayers)
        );
        // Before the start a leaver's seat goes to the next joiner.
        join_drop_in(&mut r, 10, 4, 2);
        join_drop_in(&mut r, 11, 4, 3);
        assert_eq!(r.counts().rooms, 2, "start_with is part of the room's key");
        r.leave(11, &mut out).expect("a member");
        let out = join_drop_in(&mut r, 12, 4, 2);
        // The match starts with two: both hear room_full and the seats.
        let full = ServerMessage::RoomFull {
            peers: vec![PeerId(1), PeerId(2)],
        };
        let start = seats(&[Some(1), Some(2), None, None], false);
        for conn in [10, 12] {
            let theirs: Vec<&ServerMessage> =
                out.iter().filter(|m| m.0 == conn).map(|m| &m.1).collect();
            assert_eq!(theirs[theirs.len() - 2..], [&full, &start], "conn {conn}");
        }
        // A third player drops in: it gets the room, the seats (in progress);
        // the two players hear peer_joined, then dropped_in with its seat.
        let out = join_drop_in(&mut r, 13, 4, 2);
        let newcomer: Vec<&ServerMessage> =
            out.iter().filter(|m| m.0 == 13).map(|m| &m.1).collect();
        assert!(matches!(newcomer[0], ServerMessage::Welcome(w) if w.peer_id == PeerId(3)));
        assert_eq!(
            newcomer[newcomer.len() - 2..],
            [
                &ServerMessage::RoomFull {
                    peers: vec![PeerId(1), PeerId(2), PeerId(3)]
                },
                &seats(&[Some(1), Some(2), Some(3), None], true)
            ]
        );
        for conn in [10, 12] {
            let theirs: Vec<&ServerMessage> =
                out.iter().filter(|m| m.0 == conn).map(|m| &m.1).collect();
            assert_eq!(
                theirs,
                [
                    &ServerMessage::PeerJoined {
                        peer_id: PeerId(3),
                        spectator: false
                    },
                    &ServerMessage::DroppedIn {
                        peer_id: PeerId(3),
                        seat: 2
                    }
                ]
            );
        }
        // Once the match runs a seat stays its player's: player 2 leaves, the
        // next joiner takes seat 3, the last free one; the room is then closed.
        let mut out = Vec::new();
        r.leave(12, &mut out).expect("a member");
        let out = join_drop_in(&mut r, 14, 4, 2);
        assert!(out.contains(&(14, seats(&[Some(1), Some(2), Some(3), Some(4)], true))));
        assert!(out.contains(&(
            10,
            ServerMessage::DroppedIn {
                peer_id: PeerId(4),
                seat: 3
            }
        )));
        let out = join_drop_in(&mut r, 15, 4, 2);
        assert!(
            matches!(&out[0], (15, ServerMessage::Welcome(w)) if w.peer_id == PeerId(1)),
            "a full drop-in room takes nobody: a new room starts"
        );
    }
}
