//! The signaling wire protocol: JSON text frames over WebSocket.
//!
//! Backend-free (serde + serde_json only) so a browser client built for wasm32
//! shares these types. The full protocol, with a JSON example of every message,
//! is written down in `docs/signaling.md`.
//!
//! Every frame is one JSON object with a `"type"` tag. Unknown fields are ignored,
//! so later minor additions do not break older peers; anything that changes the
//! meaning of a message bumps [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

pub use crate::datagram::PeerId;

/// Version of the wire protocol. A `join` with another version is refused with
/// [`ErrorCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Smallest room size a client may ask for.
pub const MIN_PLAYERS: u8 = 2;

/// Largest room size a client may ask for (full mesh of 8 peers).
pub const MAX_PLAYERS: u8 = 8;

/// Longest accepted room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 64;

/// Longest accepted private-room or spectator secret, in bytes.
pub const MAX_SECRET_LEN: usize = 128;

/// Longest `message` text of an `error` the server sends, in bytes: anything it
/// quotes from the client is cut to fit.
pub const MAX_ERROR_MESSAGE_LEN: usize = 160;

/// A message from a client to the signaling server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Join the next open room called `room` that is being filled for `players`
    /// peers. Answered with `welcome` (or `error`).
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// Room name: 1 to [`MAX_ROOM_NAME_LEN`] bytes, no control characters.
        room: String,
        /// Room size N ([`MIN_PLAYERS`]..=[`MAX_PLAYERS`]).
        players: u8,
        /// Shared secret, required when the server was started with a room token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Private-room secret: only joiners with the same secret (and the same
        /// room name and size) are matched together. Joiners without it never meet
        /// joiners with it, so a room name cannot be squatted or gate-crashed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_secret: Option<String>,
        /// Join as a spectator: not one of the N players; follows the room's host
        /// (its first player). Spectators join the running match of that name and
        /// size (or the room still filling if none runs). Servers that predate
        /// spectators ignore the field; their `welcome` then lacks `spectator`.
        #[serde(default, skip_serializing_if = "is_false")]
        spectator: bool,
        /// Spectator secret, ≤ 128 bytes. From the player who creates the room: a
        /// spectator must give the same secret to watch. From a spectator: the
        /// secret it gives. Ignored from later players.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spectator_secret: Option<String>,
        /// From the player who creates the room: admit no spectators at all.
        #[serde(default, skip_serializing_if = "is_false")]
        no_spectators: bool,
        /// Reclaim a held seat: the `rejoin_token` this player's `welcome` gave
        /// it. The server puts the connection back into that running match under
        /// the same peer id (`room` and `players` must match it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejoin_token: Option<String>,
        /// Drop-in room: the match starts when this many players are in
        /// (2..=`players`); the other seats stay open for players who join while
        /// it runs. Joiners are matched only with joiners that give the same value
        /// (absent: `players`, a room that starts full).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_with: Option<u8>,
        /// With `rejoin_token`: the player's process and WebRTC connections are
        /// alive; only its signaling connection was lost (its server went away)
        /// and is replaced. The others hear `peer_resumed` instead of
        /// `peer_rejoined` and keep their connections to it.
        #[serde(default, skip_serializing_if = "is_false")]
        resume: bool,
    },
    /// Relay `data` to the member `to` of the sender's room.
    Signal {
        /// Recipient; must be another member of the sender's room.
        to: PeerId,
        /// The WebRTC negotiation payload.
        data: SignalData,
    },
    /// Keepalive; the server answers `pong`.
    Ping,
    /// Leave the current room (the connection stays open and may join again).
    Leave,
}

/// A message from the signaling server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to a successful `join`.
    Welcome(Welcome),
    /// Another peer is (now) a member of the room.
    PeerJoined {
        /// The peer that joined.
        peer_id: PeerId,
        /// It joined as a spectator (players are told of spectators; spectators
        /// are told of players only).
        #[serde(default, skip_serializing_if = "is_false")]
        spectator: bool,
    },
    /// A member left the room or its connection closed.
    PeerLeft {
        /// The peer that left.
        peer_id: PeerId,
    },
    /// A player whose connection had closed mid-match took its seat back with its
    /// rejoin token: same peer id, a new process. Connect to it again.
    PeerRejoined {
        /// The player that is back.
        peer_id: PeerId,
    },
    /// A player whose signaling connection had closed mid-match is back on
    /// signaling (a `join` with its rejoin token and `resume`): same process,
    /// its WebRTC connections untouched. Keep them; it can be signaled again.
    PeerResumed {
        /// The player that is back.
        peer_id: PeerId,
    },
    /// The room has all N players; it takes no more players. Spectators get it
    /// too (on joining a running match, right after `welcome`).
    RoomFull {
        /// Every player, in ascending order (including the recipient unless it is
        /// a spectator). The first is the host spectators connect to.
        peers: Vec<PeerId>,
    },
    /// Drop-in rooms only, right after `room_full`: who holds which seat (the
    /// game's player handles). A seat is a player's for the whole match, also
    /// after it left; `None` is a free seat.
    Seats {
        /// Seat i's player, or `None` while free.
        seats: Vec<Option<PeerId>>,
        /// The match was already running when the recipient joined (it dropped
        /// in, or rejoined): its session must take a running player's state.
        #[serde(default, skip_serializing_if = "is_false")]
        in_progress: bool,
    },
    /// Drop-in rooms only, after its `peer_joined`: a player took a free seat of
    /// the running match. Connect to it (it offers: the higher id) and let it
    /// into the session at `seat`.
    DroppedIn {
        /// The new player.
        peer_id: PeerId,
        /// Its seat.
        seat: u8,
    },
    /// A payload relayed from another member of the room.
    Signal {
        /// Sender.
        from: PeerId,
        /// The WebRTC negotiation payload.
        data: SignalData,
    },
    /// Answer to `ping`.
    Pong,
    /// Something the client sent was refused. See [`ErrorCode`].
    Error {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

/// The content of `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The id the server assigned to this client, unique within the room.
    pub peer_id: PeerId,
    /// The room name, as joined.
    pub room: String,
    /// The room size N.
    pub players: u8,
    /// ICE servers (STUN/TURN) the peers should use.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
    /// This client joined as a spectator.
    #[serde(default, skip_serializing_if = "is_false")]
    pub spectator: bool,
    /// Secret to this player: if its connection closes while its match runs, the
    /// server holds its seat for a grace period, and a `join` with this token
    /// takes it back. Absent for spectators and on servers without seat holding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejoin_token: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// WebRTC negotiation data relayed between two peers. Tagged by `"kind"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignalData {
    /// An SDP offer (sent by the peer with the higher id).
    Offer {
        /// Session description.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// Session description.
        sdp: String,
    },
    /// One trickled ICE candidate.
    Candidate {
        /// The `candidate:` attribute line.
        candidate: String,
        /// Media stream id the candidate belongs to (browser `sdpMid`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// Media line index (browser `sdpMLineIndex`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u16>,
    },
    /// The sender has no more candidates.
    EndOfCandidates,
    /// The sender's connection to the recipient stalled mid-match and it is
    /// waiting, as the answerer, for a fresh offer: sent by the lower id to the
    /// higher id (who offers in every pair).
    Restart,
}

/// An ICE server, in the shape of the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why the server refused something. Serialized in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object of a known shape (or not text).
    BadJson,
    /// The `"type"` tag is not one this protocol version knows.
    UnknownType,
    /// The `join` carried another protocol version.
    VersionMismatch,
    /// A `signal` or `leave` was sent before joining a room.
    NotInRoom,
    /// A `join` was sent while already in a room.
    AlreadyInRoom,
    /// The `signal` recipient is not another member of the sender's room.
    UnknownPeer,
    /// The frame exceeded the server's size limit (the connection is closed).
    TooLarge,
    /// The client sent messages faster than its rate limit; the message was dropped.
    RateLimited,
    /// The room has all its members already.
    RoomFull,
    /// The room name is empty, too long or has control characters.
    BadRoom,
    /// `players` is outside 2..=8.
    BadPlayers,
    /// The room token is missing or wrong (the connection is closed).
    Unauthorized,
    /// The server is at its room or connection limit.
    ServerFull,
    /// The connection was idle longer than the server's timeout (it is closed).
    IdleTimeout,
    /// The client did not read its messages fast enough (it is closed).
    TooSlow,
    /// The recipient of a `signal` has too much queued already; the signal was
    /// dropped (the sender may send it again later). The recipient is unaffected.
    PeerBusy,
    /// A spectator was refused: the room admits no spectators, or the spectator
    /// secret is missing or wrong.
    SpectatorRefused,
    /// The client broke the WebSocket protocol (bad framing, invalid UTF-8 in a
    /// text frame); the connection is closed.
    ProtocolViolation,
    /// A `join` with a rejoin token was refused: the token is unknown, its seat's
    /// grace period is over, its match has ended, or `room`/`players` differ.
    RejoinRefused,
    /// A `join` with a rejoin token was refused: the seat's player is still
    /// connected (a seat can only be taken back once its connection is gone).
    SeatTaken,
    /// The server cannot take this `join` now: it is one node of a cluster and
    /// cannot reach the others (its broker is down), or could not find the node
    /// that holds the room. Try again, or another node.
    Unavailable,
    /// The node of a cluster that held the client's room went away: the client
    /// is in no room any more (WebRTC connections already up are unaffected).
    RoomLost,
    /// A code from a newer server this client does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The snake_case wire name of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::AlreadyInRoom => "already_in_room",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::BadRoom => "bad_room",
            ErrorCode::BadPlayers => "bad_players",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::TooSlow => "too_slow",
            ErrorCode::PeerBusy => "peer_busy",
            ErrorCode::SpectatorRefused => "spectator_refused",
            ErrorCode::ProtocolViolation => "protocol_violation",
            ErrorCode::RejoinRefused => "rejoin_refused",
            ErrorCode::SeatTaken => "seat_taken",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RoomLost => "room_lost",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame that could not be decoded into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, not an object, no string `"type"`, or a field of the wrong shape.
    #[error("malformed message: {0}")]
    BadJson(String),
    /// A `"type"` this protocol version does not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
}

impl DecodeError {
    /// The error code the server answers this with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadJson(_) => ErrorCode::BadJson,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
        }
    }
}

const CLIENT_TYPES: &[&str] = &["join", "signal", "ping", "leave"];
const SERVER_TYPES: &[&str] = &[
    "welcome",
    "peer_joined",
    "peer_left",
    "peer_rejoined",
    "peer_resumed",
    "room_full",
    "seats",
    "dropped_in",
    "signal",
    "pong",
    "error",
];

impl ClientMessage {
    /// A plain `join` of this protocol version: room `room` of `players` players,
    /// as a player, with no token or secrets (set those fields as needed).
    pub fn join(room: impl Into<String>, players: u8) -> Self {
        ClientMessage::Join {
            version: PROTOCOL_VERSION,
            room: room.into(),
            players,
            token: None,
            room_secret: None,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
            rejoin_token: None,
            start_with: None,
            resume: false,
        }
    }

    /// Decode one text frame. Distinguishes malformed input from an unknown type.
    pub fn from_json(text: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(text).map_err(|e| classify(text, e, CLIENT_TYPES))
    }

    /// Encode as one text frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail (string keys, no maps
        // with non-string keys, no custom serializers).
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerMessage {
    /// Decode one text frame. Distinguishes malformed input from an unknown type.
    pub fn from_json(text: &str) -> Result<Self, DecodeError> {
        serde_json::from_str(text).map_err(|e| classify(text, e, SERVER_TYPES))
    }

    /// Encode as one text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Shorthand for an `error` message. The message is cut to
    /// [`MAX_ERROR_MESSAGE_LEN`] bytes (at a character boundary), so nothing a
    /// client sent is echoed back at length.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE_LEN {
            message.truncate(floor_char_boundary(&message, MAX_ERROR_MESSAGE_LEN - 3));
            message.push_str("...");
        }
        ServerMessage::Error { code, message }
    }
}

/// Turn a serde error into a [`DecodeError`], looking at the `"type"` tag only on
/// this (rare) error path.
fn classify(text: &str, err: serde_json::Error, known: &[&str]) -> DecodeError {
    #[derive(Deserialize)]
    struct Tag {
        #[serde(rename = "type")]
        kind: String,
    }
    match serde_json::from_str::<Tag>(text) {
        Ok(tag) if !known.contains(&tag.kind.as_str()) => {
            let mut kind = tag.kind;
            kind.truncate(floor_char_boundary(&kind, 32));
            DecodeError::UnknownType(kind)
        }
        _ => DecodeError::BadJson(err.to_string()),
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Check a room name: 1 to [`MAX_ROOM_NAME_LEN`] bytes of printable characters.
///
/// Refused: control characters, invisible formatting characters (bidi overrides
/// and isolates, zero-width spaces and joiners, the byte-order mark, soft hyphen),
/// any whitespace other than the plain space, and a space at either end (so no
/// name is blank or looks like another).
pub fn valid_room_name(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ROOM_NAME_LEN
        && !room.starts_with(' ')
        && !room.ends_with(' ')
        && room.chars().all(printable_name_char)
}

/// A character a room name may hold (see [`valid_room_name`]).
fn printable_name_char(c: char) -> bool {
    let invisible = matches!(
        c,
        '\u{00AD}'                     // soft hyphen
            | '\u{034F}'               // combining grapheme joiner
            | '\u{061C}'               // Arabic letter mark
            | '\u{115F}' | '\u{1160}'   // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'   // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'  // Mongolian variation selectors, vowel separator
            | '\u{200B}'..='\u{200F}'  // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}'  // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'  // word joiner, invisible operators, isolates
            | '\u{0600}'..='\u{0605}'  // Arabic number signs (format characters)
            | '\u{06DD}' | '\u{070F}' | '\u{08E2}' // more format characters
            | '\u{2800}'               // Braille blank
            | '\u{3164}'               // Hangul filler
            | '\u{FE00}'..='\u{FE0F}'  // variation selectors
            | '\u{FEFF}'               // byte-order mark
            | '\u{FFA0}'               // halfwidth Hangul filler
            | '\u{FFF0}'..='\u{FFFF}'  // specials
            | '\u{110BD}' | '\u{110CD}' // Kaithi number signs
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
    );
    !c.is_control() && !invisible && (c == ' ' || !c.is_whitespace())
}

/// Who sends the offer between two room members: the one with the higher id.
pub fn is_offerer(me: PeerId, other: PeerId) -> bool {
    me > other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_round_trips_and_omits_absent_token() {
        let msg = ClientMessage::Join {
            version: PROTOCOL_VERSION,
            room: "lobby".into(),
            players: 2,
            token: None,
            room_secret: None,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
            rejoin_token: None,
            start_with: None,
            resume: false,
        };
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"type":"join","version":1,"room":"lobby","players":2}"#
        );
        assert_eq!(ClientMessage::from_json(&json), Ok(msg));
        let spectate = r#"{"type":"join","version":1,"room":"lobby","players":2,"spectator":true}"#;
        assert!(matches!(
            ClientMessage::from_json(spectate),
            Ok(ClientMessage::Join {
                spectator: true,
                spectator_secret: None,
                no_spectators: false,
                ..
            })
        ));
    }

    #[test]
    fn unit_messages_are_bare_objects_and_ignore_extra_fields() {
        assert_eq!(ClientMessage::Ping.to_json(), r#"{"type":"ping"}"#);
        assert_eq!(
            ClientMessage::from_json(r#"{"type":"leave","why":"bored"}"#),
            Ok(ClientMessage::Leave)
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn signals_round_trip() {
        let msg = ClientMessage::Signal {
            to: PeerId(1),
            data: SignalData::Candidate {
                candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            },
        };
        assert_eq!(ClientMessage::from_json(&msg.to_json()), Ok(msg));
        let end = ServerMessage::Signal {
            from: PeerId(2),
            data: SignalData::EndOfCandidates,
        };
        assert_eq!(
            end.to_json(),
            r#"{"type":"signal","from":2,"data":{"kind":"end_of_candidates"}}"#
        );
        assert_eq!(ServerMessage::from_json(&end.to_json()), Ok(end));
    }

    #[test]
    fn welcome_is_flat() {
        let msg = ServerMessage::Welcome(Welcome {
            version: 1,
            peer_id: PeerId(3),
            room: "r".into(),
            players: 4,
            ice_servers: vec![IceServer {
                urls: vec!["stun:127.0.0.1:3478".into()],
                username: None,
                credential: None,
            }],
            spectator: false,
            rejoin_token: None,
        });
        let json = msg.to_json();
        assert_eq!(
            json,
            r#"{"type":"welcome","version":1,"peer_id":3,"room":"r","players":4,"ice_servers":[{"urls":["stun:127.0.0.1:3478"]}]}"#
        );
        assert_eq!(ServerMessage::from_json(&json), Ok(msg));
    }

    #[test]
    fn malformed_and_unknown_are_told_apart() {
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"join"}"#,
            r#"{"type":"signal","to":"x","data":{}}"#,
            r#"{"type":"signal","to":1,"data":{"kind":"telepathy"}}"#,
        ] {
            assert!(
                matches!(ClientMessage::from_json(bad), Err(DecodeError::BadJson(_))),
                "{bad:?}"
            );
        }
        let err = ClientMessage::from_json(r#"{"type":"teleport"}"#);
        assert_eq!(err, Err(DecodeError::UnknownType("teleport".into())));
        assert_eq!(err.map_err(|e| e.code()), Err(ErrorCode::UnknownType));
    }

    #[test]
    fn unknown_error_codes_decode_as_unknown() {
        let msg = ServerMessage::from_json(r#"{"type":"error","code":"solar_flare","message":""}"#);
        assert_eq!(
            msg,
            Ok(ServerMessage::Error {
                code: ErrorCode::Unknown,
                message: String::new()
            })
        );
        let json = ServerMessage::error(ErrorCode::RateLimited, "slow down").to_json();
        assert!(json.contains(r#""code":"rate_limited""#), "{json}");
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = ClientMessage::from_json(&text);
            let _ = ServerMessage::from_json(&text);
        }

        #[test]
        fn decoding_json_like_text_never_panics(
            kind in "(join|signal|ping|leave|welcome|error|x)",
            field in "[a-z_]{0,12}",
            value in r#"(-?[0-9]{1,25}|"[^"\\]{0,20}"|null|true|\[\]|\{\})"#,
        ) {
            let text = format!(r#"{{"type":"{kind}","{field}":{value},"data":{{"kind":"{kind}"}}}}"#);
            let _ = ClientMessage::from_json(&text);
            let _ = ServerMessage::from_json(&text);
        }

        #[test]
        fn signals_round_trip_for_any_content(
            to in proptest::prelude::any::<u32>(),
            candidate in ".{0,100}",
            mid in proptest::option::of(".{0,10}"),
            index in proptest::option::of(proptest::prelude::any::<u16>()),
        ) {
            let msg = ClientMessage::Signal {
                to: PeerId(to),
                data: SignalData::Candidate { candidate, sdp_mid: mid, sdp_mline_index: index },
            };
            proptest::prop_assert_eq!(ClientMessage::from_json(&msg.to_json()), Ok(msg));
        }
    }

    #[test]
    fn error_messages_are_bounded() {
        let long = format!("unknown variant `{}`", "é".repeat(30_000));
        let ServerMessage::Error { message, .. } = ServerMessage::error(ErrorCode::BadJson, long)
        else {
            unreachable!()
        };
        assert!(message.len() <= MAX_ERROR_MESSAGE_LEN);
        assert!(message.ends_with("..."));
        let short = ServerMessage::error(ErrorCode::BadJson, "short");
        assert_eq!(
            short,
            ServerMessage::Error {
                code: ErrorCode::BadJson,
                message: "short".into()
            }
        );
    }

    #[test]
    fn room_names() {
        assert!(valid_room_name("lobby-1"));
        assert!(valid_room_name("Salle de jeu 3"));
        assert!(valid_room_name("対戦ルーム"));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name("a\nb"));
        for bad in [
            " ",
            "   ",
            " lobby",
            "lobby ",
            "a\u{3000}b",
            "a\tb",
            "a\u{00A0}b",
            "ad\u{202E}nimda",
            "a\u{2067}b",
            "lob\u{200B}by",
            "\u{FEFF}lobby",
            "\u{200D}",
            "a\u{E0041}",
            "\u{2800}",
            "a\u{0601}b",
        ] {
            assert!(!valid_room_name(bad), "{bad:?} accepted");
        }
        assert!(!valid_room_name(&"x".repeat(MAX_ROOM_NAME_LEN + 1)));
        assert!(is_offerer(PeerId(2), PeerId(1)));
        assert!(!is_offerer(PeerId(1), PeerId(2)));
    }
}
