//! Stable ids for entities that roll back.

use bevy::ecs::lifecycle::HookContext;
use bevy::ecs::world::DeferredWorld;
use bevy::prelude::*;

/// A rollback entity's id: the same on every peer and across re-simulations,
/// because it comes from a counter that is itself saved and restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollbackId(pub u64);

impl RollbackId {
    const UNASSIGNED: RollbackId = RollbackId(u64::MAX);
}

/// Marks an entity whose registered components roll back. Spawn it with
/// `Rollback::new()`; the id is assigned when the component is added.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
#[component(on_add = assign_rollback_id, on_remove = bump_generation)]
pub struct Rollback(RollbackId);

impl Rollback {
    /// A marker whose id is assigned on spawn.
    pub fn new() -> Self {
        Rollback(RollbackId::UNASSIGNED)
    }

    /// The entity's stable id.
    pub fn id(&self) -> RollbackId {
        self.0
    }

    pub(crate) fn with_id(id: RollbackId) -> Self {
        Rollback(id)
    }
}

impl Default for Rollback {
    fn default() -> Self {
        Self::new()
    }
}

/// The next rollback id; saved and restored with every snapshot.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub(crate) struct RollbackIdCounter(pub u64);

/// Bumped whenever a rollback entity appears or disappears: snapshots taken at the
/// same generation hold the same entity set, so saves share it and loads skip the diff.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub(crate) struct RollbackGeneration(pub u64);

fn bump_generation(mut world: DeferredWorld, _ctx: HookContext) {
    if let Some(mut generation) = world.get_resource_mut::<RollbackGeneration>() {
        generation.0 += 1;
    }
}

fn assign_rollback_id(mut world: DeferredWorld, ctx: HookContext) {
    if let Some(mut generation) = world.get_resource_mut::<RollbackGeneration>() {
        generation.0 += 1;
    }
    let unassigned = world
        .get::<Rollback>(ctx.entity)
        .is_some_and(|r| r.0 == RollbackId::UNASSIGNED);
    if !unassigned {
        return;
    }
    let id = match world.get_resource_mut::<RollbackIdCounter>() {
        Some(mut counter) => {
            counter.0 += 1;
            counter.0
        }
        None => return,
    };
    if let Some(mut r) = world.get_mut::<Rollback>(ctx.entity) {
        r.0 = RollbackId(id);
    }
}
