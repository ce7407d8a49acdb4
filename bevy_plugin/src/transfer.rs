//! Turning a saved frame into bytes and back, for a player that rejoins a running
//! match: the survivor exports the state it saved for a confirmed frame, the
//! rejoining app imports it in place of its own.
//!
//! What travels: the rollback entities (by [`RollbackId`]), the id counter, and
//! the values of every type registered with
//! [`transfer_component`](crate::RollbackApp::transfer_component) /
//! [`transfer_resource`](crate::RollbackApp::transfer_resource) (serde, bincode).
//! Nothing else: rollback types registered without them, non-rollback entities
//! and resources stay as the rejoining app has them.
//!
//! ```text
//! u8       format version
//! u64      rollback id counter
//! varint   entity count, then each entity's rollback id (u64)
//! varint   type count, then per type: varint name length, name, varint blob length, blob
//! blob     component: varint count, then per value its rollback id (u64) and the value
//!          resource:  u8 present, then the value
//! ```

use std::collections::HashMap;

use bevy::ecs::entity::EntityHashMap;
use bevy::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::rollback_id::{Rollback, RollbackId, RollbackIdCounter};
use crate::snapshot::SnapshotRegistry;

const FORMAT_VERSION: u8 = 1;
/// Largest single value accepted on import.
const MAX_VALUE: usize = 1 << 20;

/// Why a state could not be exported or imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The frame is no longer (or not yet) in the snapshot ring.
    #[error("no saved state for frame {0}")]
    NotSaved(u32),
    /// A value failed to serialize.
    #[error("cannot serialize {0}: {1}")]
    Encode(String, String),
    /// The bytes are damaged, from another format version, or from an app that
    /// registers other types for transfer.
    #[error("cannot import the state: {0}")]
    Decode(String),
}

/// Decodes one value from the front of the bytes: the value and the bytes used.
pub(crate) type DecodeFn<T> = fn(&[u8]) -> Result<(T, usize), String>;

/// Encodes and decodes one transferable type's values.
pub(crate) struct ValueCodec<T> {
    pub encode: fn(&T, &mut Vec<u8>) -> Result<(), String>,
    pub decode: DecodeFn<T>,
}

impl<T: Serialize + DeserializeOwned> ValueCodec<T> {
    pub(crate) fn serde() -> Self {
        ValueCodec {
            encode: |value, out| {
                bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
            decode: |bytes| {
                let config = bincode::config::standard().with_limit::<MAX_VALUE>();
                bincode::serde::decode_from_slice(bytes, config).map_err(|e| e.to_string())
            },
        }
    }
}

/// Rollback ids of the entities of a saved slot.
pub(crate) type IdsByEntity = EntityHashMap<RollbackId>;
/// Live entities by rollback id after an import.
pub(crate) type EntitiesById = HashMap<RollbackId, Entity>;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked reader over imported bytes.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err("truncated".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("bad varint".into())
    }
    /// A count that cannot exceed the bytes left (each item takes at least one).
    pub(crate) fn count(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len())
            .ok_or_else(|| "count beyond the data".into())
    }
    /// Decode one value with `decode`, advancing past it.
    pub(crate) fn value<T>(&mut self, decode: DecodeFn<T>) -> Result<T, String> {
        let (value, used) = decode(self.bytes)?;
        self.take(used)?;
        Ok(value)
    }
}

/// The state saved for `frame`, as bytes.
pub(crate) fn export_frame(
    registry: &SnapshotRegistry,
    frame: u32,
) -> Result<Vec<u8>, TransferError> {
    let slot = frame as usize % registry.slots;
    let (counter, entities) = registry
        .entities
        .saved(slot)
        .ok_or(TransferError::NotSaved(frame))?;
    let ids: IdsByEntity = entities.iter().map(|(id, e)| (*e, *id)).collect();
    let mut out = vec![FORMAT_VERSION];
    out.extend_from_slice(&counter.to_le_bytes());
    put_varint(&mut out, entities.len() as u64);
    for (id, _) in entities {
        out.extend_from_slice(&id.0.to_le_bytes());
    }
    let mut blobs: Vec<(&str, Vec<u8>)> = Vec::new();
    for t in &registry.types {
        let mut blob = Vec::new();
        match t.export(slot, &ids, &mut blob) {
            None => continue,
            Some(Err(e)) => return Err(TransferError::Encode(t.name().to_string(), e)),
            Some(Ok(())) => blobs.push((t.name(), blob)),
        }
    }
    put_varint(&mut out, blobs.len() as u64);
    for (name, blob) in blobs {
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(&mut out, blob.len() as u64);
        out.extend_from_slice(&blob);
    }
    Ok(out)
}

/// Replace the live rollback state with `bytes` from [`export_frame`].
pub(crate) fn import_state(
    registry: &mut SnapshotRegistry,
    world: &mut World,
    bytes: &[u8],
) -> Result<(), TransferError> {
    let bad = TransferError::Decode;
    let mut r = Cursor::new(bytes);
    if r.take(1).map_err(bad)?[0] != FORMAT_VERSION {
        return Err(bad("another format version".into()));
    }
    let counter = r.u64().map_err(bad)?;
    let n = r.count().map_err(bad)?;
    let mut saved = Vec::with_capacity(n);
    for _ in 0..n {
        saved.push(RollbackId(r.u64().map_err(bad)?));
    }
    let n = r.count().map_err(bad)?;
    let mut blobs: HashMap<String, &[u8]> = HashMap::new();
    for _ in 0..n {
        let len = r.count().map_err(bad)?;
        let name = String::from_utf8_lossy(r.take(len).map_err(bad)?).into_owned();
        let len = r.count().map_err(bad)?;
        blobs.insert(name, r.take(len).map_err(bad)?);
    }
    if !r.is_empty() {
        return Err(bad("trailing bytes".into()));
    }
    // Check that both apps transfer the same types before touching the world.
    for t in &registry.types {
        if t.is_transferable() && !blobs.contains_key(t.name()) {
            return Err(bad(format!("the sender does not transfer {}", t.name())));
        }
    }
    for name in blobs.keys() {
        let known = registry
            .types
            .iter()
            .any(|t| t.is_transferable() && t.name() == name);
        if !known {
            return Err(bad(format!("this app does not transfer {name}")));
        }
    }
    let live: Vec<(Entity, RollbackId)> = world
        .query::<(Entity, &Rollback)>()
        .iter(world)
        .map(|(e, r)| (e, r.id()))
        .collect();
    let keep: std::collections::HashSet<RollbackId> = saved.iter().copied().collect();
    let mut entities: EntitiesById = HashMap::new();
    for (e, id) in live {
        if keep.contains(&id) && !entities.contains_key(&id) {
            entities.insert(id, e);
        } else if let Ok(entity) = world.get_entity_mut(e) {
            entity.despawn();
        }
    }
    for id in saved {
        entities
            .entry(id)
            .or_insert_with(|| world.spawn(Rollback::with_id(id)).id());
    }
    world.insert_resource(RollbackIdCounter(counter));
    for t in &mut registry.types {
        if let Some(blob) = blobs.get(t.name()) {
            let name = t.name().to_string();
            t.import(world, blob, &entities)
                .map_err(|e| bad(format!("{name}: {e}")))?;
        }
    }
    Ok(())
}
