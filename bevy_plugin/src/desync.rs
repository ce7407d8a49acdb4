//! Sync-test diagnosis down to the entity: the hash of every rolled-back value of
//! each checked frame, kept for the first simulation and the first re-simulation that
//! differs, so a mismatch names the entities (and resources) whose values diverged.
//!
//! Only sync-test sessions record this (it costs a pass over every hashable value
//! per checked frame). Between peers only per-type checksums travel, so a P2P desync
//! names the type; reproduce it under sync-test to find the entity.

use std::collections::BTreeMap;

use bevy::prelude::*;
use rtcplay::session::Frame;

use crate::rollback_id::{Rollback, RollbackId};
use crate::snapshot::{SnapshotRegistry, ValueHashes};

/// Frames of value hashes kept (well beyond any sync-test check distance).
const KEEP_FRAMES: Frame = 128;

/// One rolled-back value that differed between the first simulation of a frame and
/// its re-simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DivergedValue {
    /// The registered type, e.g. `Position`.
    pub type_name: String,
    /// Rollback id of the entity; `None` for a resource.
    pub rollback_id: Option<RollbackId>,
    /// The entity that carries this rollback id now, if it still exists.
    pub entity: Option<Entity>,
}

impl std::fmt::Display for DivergedValue {
    /// `Type #rollback-id`, or the type alone for a resource.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rollback_id {
            Some(id) => write!(f, "{} #{}", self.type_name, id.0),
            None => write!(f, "{}", self.type_name),
        }
    }
}

/// Value hashes of the frames a sync-test session checked.
#[derive(Resource, Default)]
pub(crate) struct SyncTestTrace {
    /// Frame → (first simulation, first re-simulation that differed).
    frames: BTreeMap<Frame, (ValueHashes, Option<ValueHashes>)>,
}

impl SyncTestTrace {
    /// Record the live values as the state of `frame` (call right after its save).
    pub(crate) fn record(
        &mut self,
        registry: &mut SnapshotRegistry,
        world: &mut World,
        frame: Frame,
    ) {
        let values = registry.value_hashes(world);
        match self.frames.get_mut(&frame) {
            None => {
                self.frames.insert(frame, (values, None));
            }
            Some((first, resimulated @ None)) if *first != values => *resimulated = Some(values),
            Some(_) => {}
        }
        let keep = frame.saturating_sub(KEEP_FRAMES);
        while let Some(entry) = self.frames.first_entry() {
            if *entry.key() >= keep {
                break;
            }
            entry.remove();
        }
    }

    /// The values that differ between the first simulation of `frame` and its
    /// re-simulation, with the live entity for each rollback id.
    pub(crate) fn diverged(
        &self,
        registry: &SnapshotRegistry,
        world: &mut World,
        frame: Frame,
    ) -> Vec<DivergedValue> {
        let Some((first, Some(resimulated))) = self.frames.get(&frame) else {
            return Vec::new();
        };
        let mut live = world.query::<(Entity, &Rollback)>();
        let entities: BTreeMap<RollbackId, Entity> =
            live.iter(world).map(|(e, r)| (r.id(), e)).collect();
        let mut out = Vec::new();
        for ((type_index, a), (_, b)) in first.iter().zip(resimulated) {
            let type_name = registry.type_name(*type_index);
            for rollback_id in differing_ids(a, b) {
                out.push(DivergedValue {
                    type_name: type_name.to_string(),
                    rollback_id,
                    entity: rollback_id.and_then(|id| entities.get(&id).copied()),
                });
            }
        }
        out
    }
}

/// Ids whose hash differs, or that exist on one side only (both sorted by id).
pub(crate) fn differing_ids(
    a: &[(Option<RollbackId>, u64)],
    b: &[(Option<RollbackId>, u64)],
) -> Vec<Option<RollbackId>> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some((ia, ha)), Some((ib, hb))) if ia == ib => {
                if ha != hb {
                    out.push(*ia);
                }
                i += 1;
                j += 1;
            }
            (Some((ia, _)), other) if other.is_none_or(|(ib, _)| ia < ib) => {
                out.push(*ia);
                i += 1;
            }
            (_, Some((ib, _))) => {
                out.push(*ib);
                j += 1;
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Option<RollbackId> {
        Some(RollbackId(n))
    }

    #[test]
    fn differing_ids_finds_changed_missing_and_extra_values() {
        let a = [(id(1), 10), (id(2), 20), (id(3), 30)];
        let b = [(id(1), 10), (id(2), 21), (id(4), 40)];
        assert_eq!(differing_ids(&a, &b), vec![id(2), id(3), id(4)]);
        assert_eq!(differing_ids(&a, &a), vec![]);
        assert_eq!(differing_ids(&[(None, 1)], &[(None, 2)]), vec![None]);
    }
}
