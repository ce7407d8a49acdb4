//! State streams: the second netcode model beside rollback. Each endpoint owns
//! values (a serde type per key, in numbered streams) and every peer gets the
//! latest of them — sequence-numbered and latest-wins (a stale, duplicated or
//! reordered update never overwrites a newer one), delta-encoded against a
//! version the receiver acknowledged, packed into one datagram per peer per
//! tick under the datagram limit — plus reliable, ordered events (chat,
//! "ready"). Sans-IO like the session: time is a tick count, datagrams go
//! through any [`Transport`](crate::datagram::Transport). See
//! `docs/state-streams.md`.
//!
//! Sharing a transport with a rollback session: state datagrams start with
//! their own marker ([`is_state_datagram`]); [`SplitTransport`] hands each
//! side only its own. The session keeps its one datagram per tick; the state
//! streams add one per peer per state tick (at whatever rate the game ticks
//! them, e.g. 30 Hz), more when more changed than one datagram holds (at most
//! `max_datagrams_per_tick`).

mod delta;
mod endpoint;
mod link;
mod reckoning;
mod snapshots;
mod split;
mod values;
mod wire;

use std::marker::PhantomData;

pub use endpoint::{decode as decode_event, StateSync};
pub use link::PeerClock;
pub use reckoning::DeadReckoning;
pub use snapshots::Snapshots;
pub use split::SplitTransport;
pub use wire::{is_state_datagram, STATE_VERSION};

use crate::datagram::PeerId;

/// A stream's number (both sides use the same numbers for the same streams).
pub type StreamId = u16;

/// A stream of values of type `T`: a typed handle on a [`StreamId`].
#[derive(Debug)]
pub struct Stream<T> {
    /// Its number.
    pub id: StreamId,
    _type: PhantomData<fn() -> T>,
}

impl<T> Stream<T> {
    /// The stream numbered `id`.
    pub const fn new(id: StreamId) -> Self {
        Stream {
            id,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Stream<T> {}

/// A value's place: its stream and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// The stream.
    pub stream: StreamId,
    /// The key within it (an entity id, a player handle, …).
    pub key: u64,
}

/// Limits and pacing. The defaults suit values of a few dozen bytes.
#[derive(Debug, Clone)]
pub struct StateSyncConfig {
    /// Both sides use the same id; datagrams of another id are dropped.
    pub id: u16,
    /// Largest encoded value or event, bytes.
    pub max_value_size: usize,
    /// Most keys held per peer (its values beyond are dropped and counted).
    pub max_keys_per_peer: usize,
    /// Largest datagram sent, bytes (under the path MTU: one SCTP chunk).
    pub max_datagram: usize,
    /// Datagrams sent to one peer in one tick at most, when more values
    /// changed than one holds (the rest wait for the next tick, taking turns).
    pub max_datagrams_per_tick: usize,
    /// Versions of each value kept for deltas.
    pub history: usize,
    /// A version sent and not yet acknowledged is sent again after this many ticks.
    pub resend_ticks: u64,
    /// Events for one peer not yet acknowledged, at most.
    pub max_pending_events: usize,
}

impl Default for StateSyncConfig {
    fn default() -> Self {
        StateSyncConfig {
            id: 0x5754,
            max_value_size: 1024,
            max_keys_per_peer: 8192,
            max_datagram: 1200,
            max_datagrams_per_tick: 8,
            history: 32,
            resend_ticks: 3,
            max_pending_events: 256,
        }
    }
}

/// What arrived from peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEvent {
    /// `peer`'s value at `key` is new (read it with `value`).
    Updated {
        /// The owner.
        peer: PeerId,
        /// Where.
        key: StreamKey,
    },
    /// `peer` removed its value at `key`.
    Removed {
        /// The owner.
        peer: PeerId,
        /// Where.
        key: StreamKey,
    },
    /// A reliable event from `peer`, in the order it sent them (read it with
    /// [`decode_event`]).
    Event {
        /// The sender.
        peer: PeerId,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateSyncError {
    /// A value or event larger than `max_value_size`.
    #[error("{size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The value does not serialize.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// Not a peer of this endpoint.
    #[error("{0} is not a peer of this endpoint")]
    UnknownPeer(PeerId),
    /// Too many events for that peer are waiting for acknowledgement.
    #[error("too many events waiting for {0} to acknowledge them")]
    EventQueueFull(PeerId),
}

/// Counters: what was sent, and what was dropped and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSyncStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Bytes sent (datagrams).
    pub bytes_sent: u64,
    /// Values sent whole.
    pub full_values: u64,
    /// Values sent as deltas.
    pub delta_values: u64,
    /// Datagrams received and accepted.
    pub datagrams_received: u64,
    /// Malformed datagrams, or of another id or version.
    pub malformed: u64,
    /// Datagrams from endpoints that are not peers.
    pub unknown_peer: u64,
    /// Values older than (or equal to) the one held: ignored.
    pub stale: u64,
    /// Deltas whose base is no longer kept: ignored (a whole value follows).
    pub missing_base: u64,
    /// Values of streams this endpoint does not accept.
    pub unknown_stream: u64,
    /// Values beyond `max_keys_per_peer`, or longer than `max_value_size`.
    pub over_limit: u64,
}

/// Runs the examples in `docs/state-streams.md` as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/state-streams.md")]
struct StateStreamsGuide;
