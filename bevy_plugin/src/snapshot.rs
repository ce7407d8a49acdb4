//! Snapshots of rollback state: one contiguous buffer per registered type and
//! frame slot, reused frame after frame (no per-frame allocation once warm).

use std::hash::Hash;
use std::sync::Arc;

use bevy::ecs::change_detection::Tick;
use bevy::ecs::entity::{EntityHashMap, EntityHashSet, MapEntities};
use bevy::prelude::*;

use crate::checksum::{hash_item, short_type_name};
use crate::rollback_id::{Rollback, RollbackGeneration, RollbackId, RollbackIdCounter};
use crate::transfer::{put_varint, Cursor, EntitiesById, IdsByEntity, ValueCodec};

/// Per hashable registered type (by index): each value's hash by rollback id, sorted.
pub(crate) type ValueHashes = Vec<(usize, Vec<(Option<RollbackId>, u64)>)>;

/// Old entity → entity that replaced it after a load respawned it.
pub(crate) type EntityRemap = EntityHashMap<Entity>;

/// Saves and restores one registered type.
pub(crate) trait Snapshotter: Send + Sync {
    /// The name used in desync reports.
    fn name(&self) -> &str;
    fn save(&mut self, world: &mut World, slot: usize);
    fn load(&mut self, world: &mut World, slot: usize, remap: &EntityRemap);
    /// Rewrite `Entity` values in the live world after respawns (types with
    /// entity mapping only).
    fn map_entities(&mut self, _world: &mut World, _remap: &EntityRemap) {}
    /// Order-independent checksum of the live values, if the type is hashable.
    fn checksum(&mut self, world: &mut World) -> Option<u64>;
    /// Hash of each live value by rollback id (a resource is one value, id `None`),
    /// sorted by id; `false` if the type is not hashable. Used by sync-test to name
    /// the entities that diverged; not on the P2P hot path.
    fn value_hashes(&mut self, world: &mut World, out: &mut Vec<(Option<RollbackId>, u64)>)
        -> bool;
    /// Whether the type's values go to a rejoining player.
    fn is_transferable(&self) -> bool;
    /// Append the values saved in `slot` (`None`: not transferable).
    fn export(
        &self,
        slot: usize,
        ids: &IdsByEntity,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), String>>;
    /// Replace the live values with exported ones.
    fn import(
        &mut self,
        world: &mut World,
        bytes: &[u8],
        entities: &EntitiesById,
    ) -> Result<(), String>;
    /// For registering a transfer on an already registered type.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

type HashFn<T> = fn(u64, &T) -> u64;
type MapFn<T> = fn(&mut T, &EntityRemap);

/// Snapshots of component `T` on rollback entities.
pub(crate) struct ComponentSnapshots<
    T: Component<Mutability = bevy::ecs::component::Mutable> + Clone,
> {
    name: String,
    /// Shared when a save finds nothing changed since the previous one.
    slots: Vec<Arc<Vec<(Entity, T)>>>,
    last_save: Option<LastSave>,
    changes: Option<QueryState<Ref<'static, T>, With<Rollback>>>,
    read: Option<QueryState<(Entity, &'static T), With<Rollback>>>,
    write: Option<QueryState<(Entity, &'static mut T), With<Rollback>>>,
    ids: Option<QueryState<(&'static Rollback, &'static T)>>,
    hash: Option<HashFn<T>>,
    map: Option<MapFn<T>>,
    pub(crate) transfer: Option<ValueCodec<T>>,
    seen: EntityHashSet,
    stale: Vec<Entity>,
}

impl<T: Component<Mutability = bevy::ecs::component::Mutable> + Clone> ComponentSnapshots<T> {
    pub(crate) fn new(slots: usize) -> Self {
        ComponentSnapshots {
            name: short_type_name::<T>(),
            slots: (0..slots).map(|_| Arc::new(Vec::new())).collect(),
            last_save: None,
            changes: None,
            read: None,
            write: None,
            ids: None,
            hash: None,
            map: None,
            transfer: None,
            seen: EntityHashSet::default(),
            stale: Vec::new(),
        }
    }

    pub(crate) fn with_checksum(mut self) -> Self
    where
        T: Hash,
    {
        self.hash = Some(hash_item::<T>);
        self
    }

    pub(crate) fn with_entity_mapping(mut self) -> Self
    where
        T: MapEntities,
    {
        self.map = Some(|value, remap| {
            value.map_entities(&mut RemapMapper(remap));
        });
        self
    }
}

/// When and what a type's newest snapshot was taken from.
#[derive(Debug, Clone, Copy)]
struct LastSave {
    tick: Tick,
    generation: u64,
    count: usize,
    slot: usize,
}

struct RemapMapper<'a>(&'a EntityRemap);

impl bevy::ecs::entity::EntityMapper for RemapMapper<'_> {
    fn get_mapped(&mut self, source: Entity) -> Entity {
        self.0.get(&source).copied().unwrap_or(source)
    }
    fn set_mapped(&mut self, _source: Entity, _target: Entity) {}
}

impl<T: Component<Mutability = bevy::ecs::component::Mutable> + Clone> Snapshotter
    for ComponentSnapshots<T>
{
    fn name(&self) -> &str {
        &self.name
    }

    fn save(&mut self, world: &mut World, slot: usize) {
        // Ticks after this one mark changes made after this save.
        let tick = world.increment_change_tick();
        let generation = world
            .get_resource::<RollbackGeneration>()
            .map_or(0, |g| g.0);
        let query = self.read.get_or_insert_with(|| world.query_filtered());
        let count = query.iter(world).len();
        if let Some(last) = self.last_save {
            let changes = self.changes.get_or_insert_with(|| world.query_filtered());
            let now = world.read_change_tick();
            let unchanged = last.generation == generation
                && last.count == count
                && !changes
                    .iter(world)
                    .any(|r| r.last_changed().is_newer_than(last.tick, now));
            if unchanged {
                // Nothing changed: share the previous snapshot instead of copying.
                self.slots[slot] = Arc::clone(&self.slots[last.slot]);
                self.last_save = Some(LastSave { tick, slot, ..last });
                return;
            }
        }
        let query = self.read.get_or_insert_with(|| world.query_filtered());
        // Overwrite in place with `clone_from`: heap-owning values (a `String`)
        // reuse the buffer they had in this slot instead of allocating.
        if Arc::get_mut(&mut self.slots[slot]).is_none() {
            self.slots[slot] = Arc::new(Vec::with_capacity(count));
        }
        let Some(buf) = Arc::get_mut(&mut self.slots[slot]) else {
            return;
        };
        let mut len = 0;
        for (entity, value) in query.iter(world) {
            match buf.get_mut(len) {
                Some((e, v)) => {
                    *e = entity;
                    v.clone_from(value);
                }
                None => buf.push((entity, value.clone())),
            }
            len += 1;
        }
        buf.truncate(len);
        self.last_save = Some(LastSave {
            tick,
            generation,
            count,
            slot,
        });
    }

    fn load(&mut self, world: &mut World, slot: usize, remap: &EntityRemap) {
        let snapshot = Arc::clone(&self.slots[slot]);
        let query = self.write.get_or_insert_with(|| world.query_filtered());
        // Fast path: nothing was spawned, despawned or re-archetyped since the save,
        // so the query visits the same entities in the same order.
        if remap.is_empty() && query.iter(world).len() == snapshot.len() {
            let mut matched = 0;
            for ((entity, mut live), (saved_entity, saved)) in
                query.iter_mut(world).zip(snapshot.iter())
            {
                if entity != *saved_entity {
                    break;
                }
                live.clone_from(saved);
                matched += 1;
            }
            if matched == snapshot.len() {
                return;
            }
        }
        // General path: insert or overwrite every saved value, remove the rest.
        self.seen.clear();
        for (saved_entity, saved) in snapshot.iter() {
            let entity = remap.get(saved_entity).copied().unwrap_or(*saved_entity);
            self.seen.insert(entity);
            if let Ok(mut e) = world.get_entity_mut(entity) {
                match e.get_mut::<T>() {
                    Some(mut live) => live.clone_from(saved),
                    None => {
                        e.insert(saved.clone());
                    }
                }
            }
        }
        self.stale.clear();
        self.stale.extend(
            query
                .iter(world)
                .map(|(e, _)| e)
                .filter(|e| !self.seen.contains(e)),
        );
        for e in self.stale.drain(..) {
            world.entity_mut(e).remove::<T>();
        }
    }

    fn map_entities(&mut self, world: &mut World, remap: &EntityRemap) {
        let Some(map) = self.map else { return };
        if remap.is_empty() {
            return;
        }
        let query = self.write.get_or_insert_with(|| world.query_filtered());
        for (_, mut value) in query.iter_mut(world) {
            map(&mut value, remap);
        }
    }

    fn checksum(&mut self, world: &mut World) -> Option<u64> {
        let hash = self.hash?;
        let query = self.ids.get_or_insert_with(|| world.query());
        Some(
            query
                .iter(world)
                .fold(0u64, |acc, (r, v)| acc.wrapping_add(hash(r.id().0, v))),
        )
    }

    fn value_hashes(
        &mut self,
        world: &mut World,
        out: &mut Vec<(Option<RollbackId>, u64)>,
    ) -> bool {
        let Some(hash) = self.hash else { return false };
        let query = self.ids.get_or_insert_with(|| world.query());
        out.extend(
            query
                .iter(world)
                .map(|(r, v)| (Some(r.id()), hash(r.id().0, v))),
        );
        out.sort_unstable();
        true
    }

    fn is_transferable(&self) -> bool {
        self.transfer.is_some()
    }

    fn export(
        &self,
        slot: usize,
        ids: &IdsByEntity,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), String>> {
        let codec = self.transfer.as_ref()?;
        let values = &self.slots[slot];
        put_varint(out, values.len() as u64);
        for (entity, value) in values.iter() {
            let Some(id) = ids.get(entity) else {
                return Some(Err(
                    "a saved value of an entity without a rollback id".into()
                ));
            };
            out.extend_from_slice(&id.0.to_le_bytes());
            if let Err(e) = (codec.encode)(value, out) {
                return Some(Err(e));
            }
        }
        Some(Ok(()))
    }

    fn import(
        &mut self,
        world: &mut World,
        bytes: &[u8],
        entities: &EntitiesById,
    ) -> Result<(), String> {
        let codec = self.transfer.as_ref().ok_or("not transferable")?;
        let mut r = Cursor::new(bytes);
        let n = r.count()?;
        self.seen.clear();
        for _ in 0..n {
            let id = RollbackId(r.u64()?);
            let value = r.value(codec.decode)?;
            let entity = *entities.get(&id).ok_or("a value of an unknown entity")?;
            self.seen.insert(entity);
            world.entity_mut(entity).insert(value);
        }
        if !r.is_empty() {
            return Err("trailing bytes".into());
        }
        let query = self.write.get_or_insert_with(|| world.query_filtered());
        self.stale.clear();
        self.stale.extend(
            query
                .iter(world)
                .map(|(e, _)| e)
                .filter(|e| !self.seen.contains(e)),
        );
        for e in self.stale.drain(..) {
            world.entity_mut(e).remove::<T>();
        }
        self.last_save = None;
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Snapshots of resource `R`.
pub(crate) struct ResourceSnapshots<R: Resource + Clone> {
    name: String,
    slots: Vec<Option<R>>,
    hash: Option<HashFn<R>>,
    pub(crate) transfer: Option<ValueCodec<R>>,
}

impl<R: Resource + Clone> ResourceSnapshots<R> {
    pub(crate) fn new(slots: usize) -> Self {
        ResourceSnapshots {
            name: short_type_name::<R>(),
            slots: (0..slots).map(|_| None).collect(),
            hash: None,
            transfer: None,
        }
    }

    pub(crate) fn with_checksum(mut self) -> Self
    where
        R: Hash,
    {
        self.hash = Some(hash_item::<R>);
        self
    }
}

impl<R: Resource + Clone> Snapshotter for ResourceSnapshots<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn save(&mut self, world: &mut World, slot: usize) {
        let live = world.get_resource::<R>();
        match (&mut self.slots[slot], live) {
            (Some(saved), Some(live)) => saved.clone_from(live),
            (slot, live) => *slot = live.cloned(),
        }
    }

    fn load(&mut self, world: &mut World, slot: usize, _remap: &EntityRemap) {
        match &self.slots[slot] {
            Some(saved) => world.insert_resource(saved.clone()),
            None => {
                world.remove_resource::<R>();
            }
        }
    }

    fn checksum(&mut self, world: &mut World) -> Option<u64> {
        let hash = self.hash?;
        Some(world.get_resource::<R>().map_or(0, |r| hash(0, r)))
    }

    fn value_hashes(
        &mut self,
        world: &mut World,
        out: &mut Vec<(Option<RollbackId>, u64)>,
    ) -> bool {
        let Some(hash) = self.hash else { return false };
        if let Some(r) = world.get_resource::<R>() {
            out.push((None, hash(0, r)));
        }
        true
    }

    fn is_transferable(&self) -> bool {
        self.transfer.is_some()
    }

    fn export(
        &self,
        slot: usize,
        _ids: &IdsByEntity,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), String>> {
        let codec = self.transfer.as_ref()?;
        match &self.slots[slot] {
            Some(value) => {
                out.push(1);
                Some((codec.encode)(value, out))
            }
            None => {
                out.push(0);
                Some(Ok(()))
            }
        }
    }

    fn import(
        &mut self,
        world: &mut World,
        bytes: &[u8],
        _entities: &EntitiesById,
    ) -> Result<(), String> {
        let codec = self.transfer.as_ref().ok_or("not transferable")?;
        let mut r = Cursor::new(bytes);
        match r.take(1)?[0] {
            0 => {
                world.remove_resource::<R>();
            }
            1 => {
                let value = r.value(codec.decode)?;
                world.insert_resource(value);
            }
            _ => return Err("bad resource flag".into()),
        }
        if !r.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The rollback entities of one slot, with the generation they were taken at.
#[derive(Default)]
struct EntitySlot {
    counter: u64,
    generation: Option<u64>,
    entities: EntityTable,
}

/// Rollback entities sorted by id, shared between slots.
type EntityTable = Arc<Vec<(RollbackId, Entity)>>;

/// Which rollback entities existed, per slot, and the id counter.
pub(crate) struct EntitySnapshots {
    slots: Vec<EntitySlot>,
    query: Option<QueryState<(Entity, &'static Rollback)>>,
    live: Vec<(RollbackId, Entity)>,
    /// The newest entity table taken, shared by later slots while nothing spawns
    /// or despawns.
    latest: Option<(u64, EntityTable)>,
}

impl EntitySnapshots {
    pub(crate) fn new(slots: usize) -> Self {
        EntitySnapshots {
            slots: (0..slots).map(|_| EntitySlot::default()).collect(),
            query: None,
            live: Vec::new(),
            latest: None,
        }
    }

    pub(crate) fn save(&mut self, world: &mut World, slot: usize) {
        let counter = world.get_resource::<RollbackIdCounter>().map_or(0, |c| c.0);
        let generation = world
            .get_resource::<RollbackGeneration>()
            .map_or(0, |g| g.0);
        let entities = match &self.latest {
            Some((g, table)) if *g == generation => Arc::clone(table),
            _ => {
                let query = self.query.get_or_insert_with(|| world.query());
                let mut table: Vec<(RollbackId, Entity)> =
                    query.iter(world).map(|(e, r)| (r.id(), e)).collect();
                table.sort_unstable();
                let table = Arc::new(table);
                self.latest = Some((generation, Arc::clone(&table)));
                table
            }
        };
        self.slots[slot] = EntitySlot {
            counter,
            generation: Some(generation),
            entities,
        };
    }

    /// The id counter and entity table saved in `slot`, if anything was.
    pub(crate) fn saved(&self, slot: usize) -> Option<(u64, &[(RollbackId, Entity)])> {
        let s = self.slots.get(slot)?;
        s.generation?;
        Some((s.counter, s.entities.as_slice()))
    }

    /// Despawn entities born after the save, respawn those that died since, and
    /// return how saved entities map to live ones where they differ.
    pub(crate) fn load(&mut self, world: &mut World, slot: usize, remap: &mut EntityRemap) {
        remap.clear();
        let saved = &self.slots[slot];
        world.insert_resource(RollbackIdCounter(saved.counter));
        let generation = world
            .get_resource::<RollbackGeneration>()
            .map_or(0, |g| g.0);
        if saved.generation == Some(generation) {
            // Nothing spawned or despawned since the save.
            return;
        }
        let saved = Arc::clone(&saved.entities);
        let query = self.query.get_or_insert_with(|| world.query());
        self.live.clear();
        self.live
            .extend(query.iter(world).map(|(e, r)| (r.id(), e)));
        self.live.sort_unstable();
        let (mut i, mut j) = (0, 0);
        loop {
            match (saved.get(i).copied(), self.live.get(j).copied()) {
                (Some((sid, se)), Some((lid, le))) if sid == lid => {
                    if se != le {
                        remap.insert(se, le);
                    }
                    i += 1;
                    j += 1;
                }
                (Some((sid, se)), live) if live.is_none_or(|(lid, _)| sid < lid) => {
                    // Died since the save: bring it back under its id.
                    let new = world.spawn(Rollback::with_id(sid)).id();
                    remap.insert(se, new);
                    i += 1;
                }
                (_, Some((_, le))) => {
                    // Born after the save: undo the spawn (children go with it).
                    if let Ok(e) = world.get_entity_mut(le) {
                        e.despawn();
                    }
                    j += 1;
                }
                _ => break,
            }
        }
    }
}

/// Every registered type plus the entity table, in a fixed slot ring.
#[derive(Resource)]
pub(crate) struct SnapshotRegistry {
    pub(crate) slots: usize,
    pub(crate) entities: EntitySnapshots,
    pub(crate) types: Vec<Box<dyn Snapshotter>>,
    remap: EntityRemap,
}

impl SnapshotRegistry {
    pub(crate) fn new(slots: usize) -> Self {
        SnapshotRegistry {
            slots,
            entities: EntitySnapshots::new(slots),
            types: Vec::new(),
            remap: EntityRemap::default(),
        }
    }

    pub(crate) fn save(&mut self, world: &mut World, frame: u32) {
        let slot = frame as usize % self.slots;
        self.entities.save(world, slot);
        for t in &mut self.types {
            t.save(world, slot);
        }
    }

    pub(crate) fn load(&mut self, world: &mut World, frame: u32) {
        let slot = frame as usize % self.slots;
        self.entities.load(world, slot, &mut self.remap);
        for t in &mut self.types {
            t.load(world, slot, &self.remap);
        }
        for t in &mut self.types {
            t.map_entities(world, &self.remap);
        }
    }

    /// Every hashable registered type's value hashes (see [`ValueHashes`]).
    pub(crate) fn value_hashes(&mut self, world: &mut World) -> ValueHashes {
        let mut out = Vec::new();
        for (index, t) in self.types.iter_mut().enumerate() {
            let mut values = Vec::new();
            if t.value_hashes(world, &mut values) {
                out.push((index, values));
            }
        }
        out
    }

    /// The name of registered type number `index`.
    pub(crate) fn type_name(&self, index: usize) -> &str {
        self.types.get(index).map_or("?", |t| t.name())
    }

    /// Named checksum parts of every hashable registered type.
    pub(crate) fn checksum(&mut self, world: &mut World) -> rtcplay::session::Checksum {
        let mut parts = Vec::new();
        for t in &mut self.types {
            if let Some(v) = t.checksum(world) {
                parts.push((t.name().to_string(), v));
            }
        }
        let total = parts.iter().fold(0xcbf2_9ce4_8422_2325u64, |acc, (_, v)| {
            (acc ^ v).wrapping_mul(0x100_0000_01b3)
        });
        rtcplay::session::Checksum { total, parts }
    }
}

/// Save every registered component and resource (and the rollback entity set) as
/// the state of `frame`. The plugin does this on each `Save` request; call it
/// yourself only to drive snapshots by hand (tools, benchmarks, late join).
pub fn save_world(world: &mut World, frame: u32) {
    if world.contains_resource::<SnapshotRegistry>() {
        world.resource_scope(|world, mut registry: Mut<SnapshotRegistry>| {
            registry.save(world, frame);
        });
    }
}

/// Restore the state saved for `frame` (see [`save_world`]).
pub fn load_world(world: &mut World, frame: u32) {
    if world.contains_resource::<SnapshotRegistry>() {
        world.resource_scope(|world, mut registry: Mut<SnapshotRegistry>| {
            registry.load(world, frame);
        });
    }
}
