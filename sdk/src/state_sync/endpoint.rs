//! The endpoint: our values and events out, the peers' in.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::link::{PeerClock, PeerLink, Sent};
use super::values::Versions;
use super::wire::{self, Body, Entry, Header};
use super::{
    delta, StateEvent, StateSyncConfig, StateSyncError, StateSyncStats, Stream, StreamId, StreamKey,
};
use crate::datagram::{PeerId, Transport};

/// Ticks a removed value of a peer is remembered (so a late, older update
/// cannot bring it back).
const TOMBSTONE_TICKS: u64 = 600;

/// One endpoint's state streams: see the [module docs](super).
///
/// Each tick: [`set`](Self::set) / [`remove`](Self::remove) what changed,
/// [`send_event`](Self::send_event) events, then [`tick`](Self::tick) with the
/// transport (it receives, then sends one datagram to each peer); read the
/// peers' values with [`get`](Self::get) and what changed with
/// [`events`](Self::events).
#[derive(Debug)]
pub struct StateSync {
    config: StateSyncConfig,
    tick: u64,
    /// Number of the last version of any of our values: one counter for all
    /// keys, so a key removed, forgotten and set again still counts up.
    version: u32,
    accepted: BTreeSet<StreamId>,
    /// Our values, by key (removed ones until every peer has the removal).
    owned: BTreeMap<StreamKey, Versions>,
    /// Keys we send from next (the datagram limit may leave some for the next tick).
    cursor: Option<StreamKey>,
    links: BTreeMap<PeerId, PeerLink>,
    /// Each peer's values, and removed keys with the tick of removal.
    remote: HashMap<PeerId, HashMap<StreamKey, (Versions, u64)>>,
    events: VecDeque<StateEvent>,
    stats: StateSyncStats,
    recv: Vec<(PeerId, Vec<u8>)>,
    out: Vec<u8>,
}

impl StateSync {
    /// An endpoint with no peers and no streams accepted yet.
    pub fn new(config: StateSyncConfig) -> Self {
        StateSync {
            config,
            tick: 0,
            version: 0,
            accepted: BTreeSet::new(),
            owned: BTreeMap::new(),
            cursor: None,
            links: BTreeMap::new(),
            remote: HashMap::new(),
            events: VecDeque::new(),
            stats: StateSyncStats::default(),
            recv: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Exchange values and events with `peer` from now on (all our current
    /// values go to it).
    pub fn add_peer(&mut self, peer: PeerId) {
        self.links.entry(peer).or_default();
        self.remote.entry(peer).or_default();
    }

    /// Stop exchanging with `peer` and forget its values.
    pub fn remove_peer(&mut self, peer: PeerId) {
        self.links.remove(&peer);
        self.remote.remove(&peer);
    }

    /// Accept the peers' values of `stream` (values of other streams are
    /// dropped and counted).
    pub fn accept<T>(&mut self, stream: Stream<T>) {
        self.accepted.insert(stream.id);
    }

    /// Set our value at `key` of `stream` (bincode 2, standard configuration).
    /// An unchanged value costs nothing.
    pub fn set<T: serde::Serialize>(
        &mut self,
        stream: Stream<T>,
        key: u64,
        value: &T,
    ) -> Result<(), StateSyncError> {
        let bytes = encode(value)?;
        self.set_bytes(
            StreamKey {
                stream: stream.id,
                key,
            },
            bytes,
        )
    }

    /// Set our value at `key` as bytes.
    pub fn set_bytes(&mut self, key: StreamKey, bytes: Vec<u8>) -> Result<(), StateSyncError> {
        self.put(key, bytes, None)
    }

    /// Set our value at `key` of `stream` as a new sample even when it did
    /// not change (receivers interpolating between samples learn that it held
    /// still; a plain [`set`](Self::set) of an unchanged value sends nothing),
    /// taken at our tick `tick`: [`stamp`](Self::stamp) for now, or an earlier
    /// tick newer than the key's last sample (what [`DeadReckoning`] asks
    /// for); later ticks count as now.
    ///
    /// [`DeadReckoning`]: super::DeadReckoning
    pub fn set_sample<T: serde::Serialize>(
        &mut self,
        stream: Stream<T>,
        key: u64,
        tick: u64,
        value: &T,
    ) -> Result<(), StateSyncError> {
        let bytes = encode(value)?;
        self.put(
            StreamKey {
                stream: stream.id,
                key,
            },
            bytes,
            Some(tick),
        )
    }

    /// [`set_sample`](Self::set_sample) with the value as bytes.
    pub fn set_sample_bytes(
        &mut self,
        key: StreamKey,
        tick: u64,
        bytes: Vec<u8>,
    ) -> Result<(), StateSyncError> {
        self.put(key, bytes, Some(tick))
    }

    /// A new version of `key` if `bytes` changed, or always (a sample) at `sample`'s tick.
    fn put(
        &mut self,
        key: StreamKey,
        bytes: Vec<u8>,
        sample: Option<u64>,
    ) -> Result<(), StateSyncError> {
        if bytes.len() > self.config.max_value_size {
            return Err(StateSyncError::TooLarge {
                size: bytes.len(),
                max: self.config.max_value_size,
            });
        }
        let versions = self.owned.entry(key).or_default();
        let unchanged = versions.latest() == Some(bytes.as_slice());
        let stamp = match sample {
            None if unchanged => return Ok(()),
            None => self.tick + 1,
            Some(tick) => tick.min(self.tick + 1),
        };
        if sample.is_some() && versions.seq > 0 && stamp <= versions.tick {
            // Not after the last sample: it would not be newer to anyone.
            return Ok(());
        }
        self.version += 1;
        versions.push(self.version, stamp, bytes, self.config.history);
        Ok(())
    }

    /// The tick values set now are stamped with (the next [`tick`](Self::tick)'s
    /// number): receivers see each value with the owner's tick it was set for.
    pub fn stamp(&self) -> u64 {
        self.tick + 1
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    /// Remove our value at `key` (the peers drop theirs).
    pub fn remove<T>(&mut self, stream: Stream<T>, key: u64) {
        let key = StreamKey {
            stream: stream.id,
            key,
        };
        let stamp = self.stamp();
        if let Some(versions) = self.owned.get_mut(&key) {
            if !versions.removed {
                self.version += 1;
                versions.remove(self.version, stamp);
            }
        }
    }

    /// Our own value at `key`.
    pub fn own<T: serde::de::DeserializeOwned>(&self, stream: Stream<T>, key: u64) -> Option<T> {
        let key = StreamKey {
            stream: stream.id,
            key,
        };
        decode(self.owned.get(&key)?.latest()?)
    }

    /// `peer`'s latest value at `key` of `stream`.
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        peer: PeerId,
        stream: Stream<T>,
        key: u64,
    ) -> Option<T> {
        decode(self.get_bytes(
            peer,
            StreamKey {
                stream: stream.id,
                key,
            },
        )?)
    }

    /// `peer`'s latest value at `key` of `stream` and the tick of `peer`'s
    /// it was set for (to place it in time: see [`render_tick`](Self::render_tick)).
    pub fn get_with_tick<T: serde::de::DeserializeOwned>(
        &self,
        peer: PeerId,
        stream: Stream<T>,
        key: u64,
    ) -> Option<(T, u64)> {
        let versions = &self
            .remote
            .get(&peer)?
            .get(&StreamKey {
                stream: stream.id,
                key,
            })?
            .0;
        Some((decode(versions.latest()?)?, versions.tick))
    }

    /// `peer`'s latest value at `key`, as bytes.
    pub fn get_bytes(&self, peer: PeerId, key: StreamKey) -> Option<&[u8]> {
        self.remote.get(&peer)?.get(&key)?.0.latest()
    }

    /// `peer`'s latest value at `key` as bytes, with the tick of `peer`'s it
    /// was set for.
    pub fn get_bytes_with_tick(&self, peer: PeerId, key: StreamKey) -> Option<(&[u8], u64)> {
        let versions = &self.remote.get(&peer)?.get(&key)?.0;
        Some((versions.latest()?, versions.tick))
    }

    /// The tick of `peer`'s its latest value at `key` was set for (cheap: to
    /// tell whether a value is new before decoding it).
    pub fn tick_of(&self, peer: PeerId, key: StreamKey) -> Option<u64> {
        let versions = &self.remote.get(&peer)?.get(&key)?.0;
        versions.latest().map(|_| versions.tick)
    }

    /// How `peer`'s ticks map to ours, once one of its datagrams arrived.
    pub fn clock(&self, peer: PeerId) -> Option<PeerClock> {
        self.links.get(&peer)?.clock()
    }

    /// The tick of `peer`'s to show its values as of now: our tick (plus
    /// `fraction` of the next, for frames between ticks) minus the render
    /// delay, which covers latency, measured jitter and two ticks so that a
    /// sample after it has usually arrived. Fractional: interpolate between
    /// the samples around it ([`Snapshots`](super::Snapshots)).
    pub fn render_tick(&self, peer: PeerId, fraction: f64) -> Option<f64> {
        let delay = self.links.get(&peer)?.delay?;
        Some(self.tick as f64 + fraction - delay)
    }

    /// Whether every peer has acknowledged our latest version at `key` (or
    /// its removal).
    pub fn delivered<T>(&self, stream: Stream<T>, key: u64) -> bool {
        let key = StreamKey {
            stream: stream.id,
            key,
        };
        let Some(versions) = self.owned.get(&key) else {
            return true;
        };
        self.links
            .values()
            .all(|l| l.acked.get(&key).is_some_and(|a| *a >= versions.seq))
    }

    /// Every key `peer` holds a value at in `stream`.
    pub fn keys<T>(&self, peer: PeerId, stream: Stream<T>) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .remote
            .get(&peer)
            .map(|values| {
                values
                    .iter()
                    .filter(|(k, (v, _))| k.stream == stream.id && !v.removed)
                    .map(|(k, _)| k.key)
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    /// Send `event` to `peer` (or to every peer: `None`), reliably and in order.
    pub fn send_event<T: serde::Serialize>(
        &mut self,
        peer: Option<PeerId>,
        event: &T,
    ) -> Result<(), StateSyncError> {
        let bytes = encode(event)?;
        if bytes.len() > self.config.max_value_size {
            return Err(StateSyncError::TooLarge {
                size: bytes.len(),
                max: self.config.max_value_size,
            });
        }
        let targets: Vec<PeerId> = match peer {
            Some(p) if self.links.contains_key(&p) => vec![p],
            Some(p) => return Err(StateSyncError::UnknownPeer(p)),
            None => self.links.keys().copied().collect(),
        };
        for p in &targets {
            if self.links[p].events_out.len() >= self.config.max_pending_events {
                return Err(StateSyncError::EventQueueFull(*p));
            }
        }
        for p in targets {
            if let Some(link) = self.links.get_mut(&p) {
                let n = link.next_event;
                link.next_event += 1;
                link.events_out.push_back((n, bytes.clone()));
            }
        }
        Ok(())
    }

    /// What arrived since the last call.
    pub fn events(&mut self) -> impl Iterator<Item = StateEvent> + '_ {
        self.events.drain(..)
    }

    /// Counters.
    pub fn stats(&self) -> StateSyncStats {
        self.stats
    }

    /// One tick: take in what arrived, then send each peer one datagram with
    /// acknowledgements, unacknowledged events and the values it lacks (as
    /// many as fit, the rest next tick).
    pub fn tick(&mut self, net: &mut (impl Transport + ?Sized)) {
        self.tick += 1;
        self.receive(net);
        for link in self.links.values_mut() {
            link.pace();
        }
        let peers: Vec<PeerId> = self.links.keys().copied().collect();
        for peer in peers {
            self.send_to(peer, net);
        }
        self.forget_delivered_removals();
        let now = self.tick;
        for values in self.remote.values_mut() {
            values.retain(|_, (v, removed_at)| !v.removed || now - *removed_at < TOMBSTONE_TICKS);
        }
    }

    fn receive(&mut self, net: &mut (impl Transport + ?Sized)) {
        self.recv.clear();
        net.receive(&mut self.recv);
        let received = std::mem::take(&mut self.recv);
        for (from, bytes) in &received {
            self.handle(*from, bytes);
        }
        self.recv = received;
    }

    fn handle(&mut self, from: PeerId, bytes: &[u8]) {
        let Some(link) = self.links.get_mut(&from) else {
            self.stats.unknown_peer += 1;
            return;
        };
        let Ok(d) = wire::decode(bytes, self.config.id, self.config.max_value_size) else {
            self.stats.malformed += 1;
            return;
        };
        if !link.note_received(d.header.seq) {
            // A duplicate: its acknowledgements may still be news.
            if let Some(ack) = d.header.ack {
                link.on_ack(ack, d.header.ack_bits);
            }
            return;
        }
        self.stats.datagrams_received += 1;
        link.note_timing(self.tick, d.header.tick);
        if let Some(ack) = d.header.ack {
            link.on_ack(ack, d.header.ack_bits);
        }
        for (n, bytes) in &d.events {
            for bytes in link.receive_event(*n, bytes) {
                self.events
                    .push_back(StateEvent::Event { peer: from, bytes });
            }
        }
        let values = self.remote.entry(from).or_default();
        for entry in &d.entries {
            let key = StreamKey {
                stream: entry.stream,
                key: entry.key,
            };
            if !self.accepted.contains(&entry.stream) {
                self.stats.unknown_stream += 1;
                continue;
            }
            if !values.contains_key(&key) && values.len() >= self.config.max_keys_per_peer {
                self.stats.over_limit += 1;
                continue;
            }
            let (versions, removed_at) = values.entry(key).or_default();
            if entry.seq <= versions.seq {
                self.stats.stale += 1;
                continue;
            }
            match entry.body {
                Body::Full(value) => {
                    versions.push(entry.seq, entry.tick, value.to_vec(), self.config.history)
                }
                Body::Delta { base, delta } => {
                    let Some(value) = versions.version(base).and_then(|b| delta::apply(b, delta))
                    else {
                        self.stats.missing_base += 1;
                        continue;
                    };
                    versions.push(entry.seq, entry.tick, value, self.config.history);
                }
                Body::Removed => {
                    versions.remove(entry.seq, entry.tick);
                    *removed_at = self.tick;
                    self.events
                        .push_back(StateEvent::Removed { peer: from, key });
                    continue;
                }
            }
            self.events
                .push_back(StateEvent::Updated { peer: from, key });
        }
    }

    /// Up to `max_datagrams_per_tick` datagrams to `peer`: the first carries
    /// the events, each the values that fit.
    fn send_to(&mut self, peer: PeerId, net: &mut (impl Transport + ?Sized)) {
        for n in 0..self.config.max_datagrams_per_tick.max(1) {
            if !self.send_datagram(peer, n == 0, net) {
                break;
            }
        }
    }

    /// One datagram to `peer`; true if values were left for another.
    fn send_datagram(
        &mut self,
        peer: PeerId,
        with_events: bool,
        net: &mut (impl Transport + ?Sized),
    ) -> bool {
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        let seq = link.next_seq;
        link.next_seq += 1;
        let (ack, ack_bits) = match link.received {
            Some((newest, bits)) => (Some(newest), bits),
            None => (None, 0),
        };
        let limit = self.config.max_datagram;
        // Events first: as many as fit in half the datagram.
        let mut events: Vec<(u32, &[u8])> = Vec::new();
        let mut size = 0;
        for (n, bytes) in link.events_out.iter().take_while(|_| with_events) {
            size += bytes.len() + 10;
            if size > limit / 2 && !events.is_empty() {
                break;
            }
            events.push((*n, bytes.as_slice()));
        }
        let mut sent = Sent {
            events: events.iter().map(|(n, _)| *n).collect(),
            ..Sent::default()
        };
        wire::start(
            &mut self.out,
            self.config.id,
            &Header {
                seq,
                ack,
                ack_bits,
                tick: self.tick,
            },
            &events,
        );
        // Then the values the peer lacks, from where the last tick stopped.
        let start = self.cursor;
        let keys: Vec<StreamKey> = match start {
            Some(c) => self
                .owned
                .range(c..)
                .chain(self.owned.range(..c))
                .map(|(k, _)| *k)
                .collect(),
            None => self.owned.keys().copied().collect(),
        };
        let mut stopped_at = None;
        let mut at = wire::Cursor::at_tick(self.tick);
        for key in keys {
            let versions = &self.owned[&key];
            let acked = link.acked.get(&key).copied().unwrap_or(0);
            if versions.seq <= acked {
                continue;
            }
            if let Some((s, at)) = link.last_sent.get(&key) {
                if *s == versions.seq && self.tick - at < self.config.resend_ticks {
                    continue;
                }
            }
            let diff;
            let body = match versions.latest() {
                None => Body::Removed,
                Some(value) => {
                    let base = (acked > 0).then(|| versions.version(acked)).flatten();
                    diff = base.and_then(|b| delta::encode(b, value));
                    match &diff {
                        Some(d) => Body::Delta {
                            base: acked,
                            delta: d,
                        },
                        None => Body::Full(value),
                    }
                }
            };
            let entry = Entry {
                stream: key.stream,
                key: key.key,
                seq: versions.seq,
                tick: versions.tick,
                body,
            };
            if self.out.len() + wire::entry_size(&at, &entry) > limit {
                stopped_at = Some(key);
                break;
            }
            wire::put_entry(&mut self.out, &mut at, &entry);
            match entry.body {
                Body::Full(_) => self.stats.full_values += 1,
                Body::Delta { .. } => self.stats.delta_values += 1,
                Body::Removed => {}
            }
            link.last_sent.insert(key, (versions.seq, self.tick));
            sent.values.push((key, versions.seq));
        }
        self.cursor = stopped_at;
        link.sent(seq, sent);
        net.send_to(peer, &self.out);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += self.out.len() as u64;
        stopped_at.is_some()
    }

    /// Removed values every peer has acknowledged are forgotten.
    fn forget_delivered_removals(&mut self) {
        let links = &mut self.links;
        self.owned.retain(|key, versions| {
            let delivered = versions.removed
                && links
                    .values()
                    .all(|l| l.acked.get(key).is_some_and(|a| *a >= versions.seq));
            if delivered {
                for link in links.values_mut() {
                    link.acked.remove(key);
                    link.last_sent.remove(key);
                }
            }
            !delivered
        });
    }
}

/// `value` as bincode 2 (standard configuration).
fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StateSyncError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StateSyncError::Encode(e.to_string()))
}

/// A value or event's bytes (`StateEvent::Event`) as `T` (bincode 2,
/// standard configuration, the whole of `bytes`, at most 64 KiB decoded);
/// `None` if they are not one.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let config = bincode::config::standard().with_limit::<{ 64 * 1024 }>();
    match bincode::serde::decode_from_slice::<T, _>(bytes, config) {
        Ok((value, used)) if used == bytes.len() => Some(value),
        _ => None,
    }
}
