//! Who owns which replicated entity: ids for ours, presence records out,
//! mirrors spawned and despawned from the peers' records, hand-overs.
//!
//! The rule every peer follows: an entity's owner publishes its presence
//! record `{generation, handed_to: None}`. To hand it to `q` it publishes
//! `{generation, handed_to: q}` and stops sending values; `q` takes it by
//! publishing `{generation + 1, handed_to: None}` (and its values). Every
//! peer follows that chain from the owner it knows, so a claim not made this
//! way is never accepted. The old owner removes its records only once every
//! peer has acknowledged its hand-over record, so nobody misses a link of
//! the chain. An owner that stops publishing its record (despawn) or leaves
//! takes its entities with it.

use std::collections::{BTreeSet, HashMap};

use bevy::prelude::*;
use rtcplay::datagram::PeerId;
use rtcplay::state_sync::{StateEvent, StateSync, Stream};

use super::{
    Holder, Presence, Replicated, ReplicationIndex, ReplicationRegistry, ReplicationStats, Tracked,
    PRESENCE, PRESENCE_STREAM,
};
use crate::connect::ConnectedPeers;
use crate::state_streams::{StateStreamEvent, StateStreams};

/// Links of a hand-over chain followed in one update at most.
const MAX_CHAIN: usize = 8;
/// State ticks a write from outside an entity's owners waits to be judged
/// (a claim can arrive before the hand-over record that allows it).
const SUSPECT_TICKS: u64 = 30;
/// Writes waiting to be judged, at most (beyond: counted at once).
const MAX_SUSPECTS: usize = 4096;

#[allow(clippy::too_many_arguments)]
pub(crate) fn track_ownership(
    mut commands: Commands,
    mut entities: Query<(Entity, &mut Replicated)>,
    streams: Option<ResMut<StateStreams>>,
    peers: Res<ConnectedPeers>,
    registry: Res<ReplicationRegistry>,
    mut index: ResMut<ReplicationIndex>,
    mut stats: ResMut<ReplicationStats>,
    mut events: MessageReader<StateStreamEvent>,
    mut departed_seen: Local<usize>,
    mut suspects: Local<HashMap<(PeerId, u64), u64>>,
) {
    let (Some(mut streams), Some(me)) = (streams, peers.me) else {
        events.clear();
        return;
    };
    let sync = &mut streams.sync;
    sync.accept(PRESENCE);
    for stream in &registry.streams {
        sync.accept(Stream::<()>::new(*stream));
    }
    let index = &mut *index;

    // Our new entities get their ids.
    let fresh: Vec<Entity> = entities
        .iter()
        .filter(|(_, r)| r.id.is_none() && r.holder == Holder::Me)
        .map(|(e, _)| e)
        .collect();
    for entity in fresh {
        let id = (u64::from(me.0) << 32) | u64::from(index.next_serial);
        index.next_serial = index.next_serial.wrapping_add(1);
        if let Ok((_, mut r)) = entities.get_mut(entity) {
            r.id = Some(id);
        }
        index.by_id.insert(
            id,
            Tracked {
                entity,
                pending: None,
                retiring: false,
                previous: None,
            },
        );
    }

    // Ours that were despawned: their records go (every peer despawns them).
    let gone: Vec<u64> = index
        .by_id
        .iter()
        .filter(|(_, t)| entities.get(t.entity).is_err())
        .map(|(id, _)| *id)
        .collect();
    for id in gone {
        index.by_id.remove(&id);
        if sync.own(PRESENCE, id).is_some() {
            remove_records(sync, &registry, id);
        }
    }

    // Our presence records.
    for (_, r) in &entities {
        let Some(id) = r.id else { continue };
        let handed_to = match r.holder {
            Holder::Me => None,
            Holder::Handing(p) => Some(p.0),
            Holder::Peer(_) => continue,
        };
        let record = Presence {
            generation: r.generation,
            handed_to,
        };
        if let Err(e) = sync.set(PRESENCE, id, &record) {
            tracing::warn!("rtcplay: presence of entity {id:#x} not sent: {e}");
        }
    }

    // What the peers changed.
    let mut touched: BTreeSet<u64> = BTreeSet::new();
    for StateStreamEvent(event) in events.read() {
        let (peer, key, updated) = match event {
            StateEvent::Updated { peer, key } => (*peer, *key, true),
            StateEvent::Removed { peer, key } => (*peer, *key, false),
            StateEvent::Event { .. } => continue,
        };
        if key.stream == PRESENCE_STREAM {
            touched.insert(key.key);
        }
        let ours = key.stream == PRESENCE_STREAM || registry.streams.contains(&key.stream);
        if updated && ours && !may_write(index, &entities, peer, key.key) {
            // Maybe a new owner whose claim arrived before the hand-over
            // record: judged again once that has had time to arrive.
            if suspects.len() < MAX_SUSPECTS {
                suspects.entry((peer, key.key)).or_insert(sync.ticks());
            } else {
                stats.not_owner += 1;
            }
        }
    }

    // Peers that left since the last look: everything of theirs is resolved.
    let departed: Vec<PeerId> = peers.departed.iter().map(|(p, _)| *p).collect();
    let someone_left = departed.len() != *departed_seen;
    *departed_seen = departed.len();
    let mut candidates: BTreeSet<u64> = index
        .by_id
        .iter()
        .filter(|(_, t)| {
            someone_left
                || t.pending.is_some()
                || t.retiring
                || entities
                    .get(t.entity)
                    .is_ok_and(|(_, r)| matches!(r.holder, Holder::Handing(_)))
        })
        .map(|(id, _)| *id)
        .collect();
    candidates.extend(touched.iter().copied());

    // Writes from peers outside an entity's chain of owners, a second later.
    let now = sync.ticks();
    suspects.retain(|(peer, id), since| {
        if now < *since + SUSPECT_TICKS {
            return true;
        }
        if index.by_id.contains_key(id) && !may_write(index, &entities, *peer, *id) {
            stats.not_owner += 1;
        }
        false
    });

    for id in candidates {
        if !index.by_id.contains_key(&id) {
            spawn_mirror(&mut commands, sync, index, &mut stats, &peers, me, id);
            continue;
        }
        resolve(
            &mut commands,
            sync,
            &registry,
            index,
            &mut stats,
            &mut entities,
            &departed,
            me,
            id,
        );
    }
}

/// Whether `peer` may send values of entity `id`: its owner, the peer it is
/// being handed to, the owner before (its last writes may still be on their
/// way; they are ignored), or (before its record arrived) its creator.
fn may_write(
    index: &ReplicationIndex,
    entities: &Query<(Entity, &mut Replicated)>,
    peer: PeerId,
    id: u64,
) -> bool {
    let Some(tracked) = index.by_id.get(&id) else {
        return id >> 32 == u64::from(peer.0);
    };
    let Ok((_, r)) = entities.get(tracked.entity) else {
        return false;
    };
    r.holder == Holder::Peer(peer)
        || tracked.pending == Some(peer)
        || r.holder == Holder::Handing(peer)
        || tracked.previous == Some(peer)
}

/// A record of an entity we do not know yet: its mirror appears, if the
/// record is plausible (from its creator, or from a later owner).
fn spawn_mirror(
    commands: &mut Commands,
    sync: &StateSync,
    index: &mut ReplicationIndex,
    stats: &mut ReplicationStats,
    peers: &ConnectedPeers,
    me: PeerId,
    id: u64,
) {
    // Whose record is it? Its creator's, else (the creator handed it on
    // before we saw it) the newest generation's.
    let creator = PeerId((id >> 32) as u32);
    let mut best: Option<(PeerId, Presence)> = sync
        .get(creator, PRESENCE, id)
        .filter(|_| creator != me)
        .map(|p| (creator, p));
    for peer in peers.peers.iter().copied().filter(|p| *p != me) {
        if let (None, Some(p)) = (best, sync.get(peer, PRESENCE, id)) {
            best = Some((peer, p));
        } else if let (Some((_, b)), Some(p)) = (best, sync.get(peer, PRESENCE, id)) {
            if b.generation > 0 && p.generation > b.generation {
                best = Some((peer, p));
            }
        }
    }
    let Some((owner, record)) = best else {
        return;
    };
    if id >> 32 != u64::from(owner.0) && record.generation == 0 {
        // Someone else's entity claimed as new: not how ownership moves
        // (counted with the writes from outside an entity's owners).
        return;
    }
    if id >> 32 == u64::from(me.0) {
        // One of ours we no longer hold (despawned here): not brought back.
        return;
    }
    let entity = commands
        .spawn(Replicated::mirror(id, owner, record.generation))
        .id();
    index.by_id.insert(
        id,
        Tracked {
            entity,
            pending: record.handed_to.map(PeerId),
            retiring: false,
            previous: None,
        },
    );
    stats.spawned += 1;
}

/// Follow entity `id`'s ownership chain from the owner we know.
#[allow(clippy::too_many_arguments)]
fn resolve(
    commands: &mut Commands,
    sync: &mut StateSync,
    registry: &ReplicationRegistry,
    index: &mut ReplicationIndex,
    stats: &mut ReplicationStats,
    entities: &mut Query<(Entity, &mut Replicated)>,
    departed: &[PeerId],
    me: PeerId,
    id: u64,
) {
    for _ in 0..MAX_CHAIN {
        let Some(tracked) = index.by_id.get_mut(&id) else {
            return;
        };
        let Ok((_, mut r)) = entities.get_mut(tracked.entity) else {
            index.by_id.remove(&id);
            return;
        };
        if tracked.retiring && sync.delivered(PRESENCE, id) {
            // Every peer has our hand-over: our records can go.
            remove_records(sync, registry, id);
            tracked.retiring = false;
        }
        match r.holder {
            Holder::Me => return,
            Holder::Handing(q) => {
                if departed.contains(&q) {
                    // It left before taking it: ours again, under a new generation.
                    r.holder = Holder::Me;
                    r.generation = r.generation.saturating_add(1);
                    return;
                }
                match sync.get(q, PRESENCE, id) {
                    Some(claim) if claim.generation > r.generation => {
                        tracked.previous = Some(me);
                        r.holder = Holder::Peer(q);
                        r.generation = claim.generation;
                        tracked.pending = claim.handed_to.map(PeerId);
                        tracked.retiring = true;
                        stats.handed_over += 1;
                    }
                    _ => return,
                }
            }
            Holder::Peer(owner) => {
                let record = sync.get(owner, PRESENCE, id);
                if let Some(record) = record.filter(|p| p.generation >= r.generation) {
                    if record.generation != r.generation {
                        r.generation = record.generation;
                    }
                    tracked.pending = record.handed_to.map(PeerId);
                }
                let owner_gone = record.is_none() || departed.contains(&owner);
                match tracked.pending {
                    Some(next) if next == me => {
                        tracked.previous = Some(owner);
                        r.holder = Holder::Me;
                        r.generation = r.generation.saturating_add(1);
                        tracked.pending = None;
                        stats.taken_over += 1;
                        return;
                    }
                    Some(next) if !departed.contains(&next) => match sync.get(next, PRESENCE, id) {
                        Some(claim) if claim.generation > r.generation => {
                            tracked.previous = Some(owner);
                            r.holder = Holder::Peer(next);
                            r.generation = claim.generation;
                            tracked.pending = claim.handed_to.map(PeerId);
                        }
                        _ => return,
                    },
                    // No hand-over (or to a peer that left): the owner's
                    // record going, or the owner leaving, despawns it.
                    _ => {
                        tracked.pending = None;
                        if owner_gone {
                            commands.entity(tracked.entity).despawn();
                            index.by_id.remove(&id);
                            stats.despawned += 1;
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// Remove our presence record and every component value of entity `id`.
fn remove_records(sync: &mut StateSync, registry: &ReplicationRegistry, id: u64) {
    sync.remove(PRESENCE, id);
    for stream in &registry.streams {
        sync.remove(Stream::<()>::new(*stream), id);
    }
}
