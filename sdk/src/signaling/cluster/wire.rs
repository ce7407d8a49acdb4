//! The messages between signaling nodes. One NATS message carries a batch (a
//! JSON object: the sender and an array of these), all for the node the
//! subject names; JSON keeps the traffic readable with `nats sub '<prefix>.>'`.
//!
//! A client connection is named by its edge node and its id there; `seq`
//! numbers the connection's remote memberships (a new one per `join` sent to a
//! home), so late messages of a membership the client already left are told
//! apart from the current one.

// The broker task that drives these is built only with the `cluster` feature.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

use serde::{Deserialize, Serialize};

use crate::datagram::PeerId;
use crate::signaling::protocol::{ErrorCode, SignalData};
use crate::signaling::rooms::{ConnId, JoinRequest};

/// A signaling node's id: random per process, so a restarted node is a new one.
pub(crate) type NodeId = u64;

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum NodeMessage {
    /// Edge → home: the client asks to join a room of a name homed there.
    Join {
        conn: ConnId,
        seq: u32,
        join: JoinRequest,
        /// Times the edge already found the home it asked was not it.
        tries: u8,
    },
    /// Edge → home: relay a signal within the client's room.
    Signal {
        conn: ConnId,
        seq: u32,
        to: PeerId,
        data: SignalData,
    },
    /// Edge → home: the client leaves its room (gives its seat up).
    Leave { conn: ConnId, seq: u32 },
    /// Edge → home: the client's connection is gone (its seat is held).
    Gone { conn: ConnId, seq: u32 },
    /// Home → edge: a frame for the client (`relay_from`: the signal's sender,
    /// told `peer_busy` if the client's queue is full).
    Deliver {
        conn: ConnId,
        seq: u32,
        frame: String,
        relay_from: Option<(NodeId, ConnId)>,
    },
    /// Home → edge: the join was refused; the client is in no room.
    Refused {
        conn: ConnId,
        seq: u32,
        code: ErrorCode,
        message: String,
    },
    /// Home → edge: this node is not (or no longer) the name's home; ask again.
    NotHome {
        conn: ConnId,
        seq: u32,
        join: JoinRequest,
        tries: u8,
    },
    /// Home → edge: the client's membership ended (it left, or was sent away).
    Released { conn: ConnId, seq: u32 },
    /// Home → edge: check that the client is alive (a rejoin asked for its seat).
    Probe { conn: ConnId, seq: u32 },
    /// Any → edge: an error frame for the client, whatever room it is in now
    /// (a refused signal, `peer_busy`).
    Notice { conn: ConnId, frame: String },
}

/// What one broker message carries: the sending node and its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Batch {
    pub from: NodeId,
    pub messages: Vec<NodeMessage>,
}

/// A batch as sent on the wire.
pub(crate) fn encode_batch(from: NodeId, messages: Vec<NodeMessage>) -> Vec<u8> {
    serde_json::to_vec(&Batch { from, messages }).unwrap_or_default()
}

/// A batch as received; `None` for anything malformed (dropped and counted).
pub(crate) fn decode_batch(bytes: &[u8]) -> Option<Batch> {
    serde_json::from_slice(bytes).ok()
}

/// The heartbeat payload: the node's id in hex.
pub(crate) fn encode_alive(node: NodeId) -> String {
    format!("{node:016x}")
}

/// A heartbeat's node id.
pub(crate) fn decode_alive(bytes: &[u8]) -> Option<NodeId> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_garbage_is_refused() {
        let batch = vec![
            NodeMessage::Signal {
                conn: 7,
                seq: 2,
                to: PeerId(3),
                data: SignalData::Candidate {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                },
            },
            NodeMessage::Deliver {
                conn: 1,
                seq: 1,
                frame: "{\"type\":\"pong\"}".into(),
                relay_from: Some((9, 4)),
            },
        ];
        let bytes = encode_batch(5, batch.clone());
        assert_eq!(
            decode_batch(&bytes),
            Some(Batch {
                from: 5,
                messages: batch
            })
        );
        assert_eq!(
            decode_batch(b"{\"from\":1,\"messages\":[{\"t\":\"join\"}]}"),
            None
        );
        assert_eq!(decode_batch(b"\xff\x00"), None);
        assert_eq!(decode_alive(encode_alive(0xabc).as_bytes()), Some(0xabc));
        assert_eq!(decode_alive(b"zz"), None);
    }
}
