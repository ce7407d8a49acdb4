//! Save and load by hand: spawns and despawns are undone, entity references are
//! remapped, resources and the id counter roll back, cosmetic children survive.

#![allow(clippy::unwrap_used)]

use bevy::ecs::entity::{EntityMapper, MapEntities};
use bevy::prelude::*;
use bevy_rtcplay::prelude::*;
use bevy_rtcplay::{load_world, save_world};

#[derive(Component, Clone, Copy, Hash, PartialEq, Debug)]
struct Health(i32);

/// Points at another rollback entity.
#[derive(Component, Clone, Copy, PartialEq, Debug)]
struct Target(Entity);

impl MapEntities for Target {
    fn map_entities<E: EntityMapper>(&mut self, mapper: &mut E) {
        self.0 = mapper.get_mapped(self.0);
    }
}

#[derive(Resource, Clone, Hash, PartialEq, Debug, Default)]
struct Round(u32);

#[derive(Component)]
struct Cosmetic;

fn app() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, RtcPlayPlugin::<u8>::default()))
        .rollback_component_with_checksum::<Health>()
        .rollback_component_with_entity_map::<Target>()
        .rollback_resource_with_checksum::<Round>()
        .init_resource::<Round>();
    app.update();
    app
}

fn rollback_ids(world: &mut World) -> Vec<u64> {
    let mut q = world.query::<&Rollback>();
    let mut ids: Vec<u64> = q.iter(world).map(|r| r.id().0).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn spawn_after_save_is_undone_and_ids_are_reused_identically() {
    let mut app = app();
    let world = app.world_mut();
    world.spawn((Health(10), Rollback::new()));
    save_world(world, 0);
    let before = rollback_ids(world);
    let late = world.spawn((Health(5), Rollback::new())).id();
    let late_id = world.get::<Rollback>(late).unwrap().id();
    load_world(world, 0);
    assert!(
        world.get_entity(late).is_err(),
        "spawned after the save: gone"
    );
    assert_eq!(rollback_ids(world), before);
    // Re-simulating the spawn hands out the same id again.
    let again = world.spawn((Health(5), Rollback::new())).id();
    assert_eq!(world.get::<Rollback>(again).unwrap().id(), late_id);
}

#[test]
fn despawn_after_save_is_undone_and_references_are_remapped() {
    let mut app = app();
    let world = app.world_mut();
    let victim = world.spawn((Health(3), Rollback::new())).id();
    let victim_id = world.get::<Rollback>(victim).unwrap().id();
    let hunter = world
        .spawn((Health(9), Target(victim), Rollback::new()))
        .with_child(Cosmetic)
        .id();
    world.resource_mut::<Round>().0 = 4;
    save_world(world, 7);

    world.despawn(victim);
    world.get_mut::<Health>(hunter).unwrap().0 = 1;
    world.resource_mut::<Round>().0 = 5;
    load_world(world, 7);

    // The victim is back with its components, under a new Entity but the same id.
    let mut q = world.query::<(Entity, &Rollback, &Health)>();
    let (respawned, _, health) = q
        .iter(world)
        .find(|(_, r, _)| r.id() == victim_id)
        .map(|(e, r, h)| (e, *r, *h))
        .expect("victim respawned");
    assert_eq!(health, Health(3));
    // The hunter's Target follows it; its own state and the resource rolled back.
    assert_eq!(world.get::<Target>(hunter), Some(&Target(respawned)));
    assert_eq!(world.get::<Health>(hunter), Some(&Health(9)));
    assert_eq!(world.resource::<Round>().0, 4);
    // The cosmetic child was not touched.
    let mut children = world.query_filtered::<&ChildOf, With<Cosmetic>>();
    assert_eq!(
        children.iter(world).map(|c| c.parent()).collect::<Vec<_>>(),
        vec![hunter]
    );
}

#[test]
fn components_added_or_removed_after_save_are_restored() {
    let mut app = app();
    let world = app.world_mut();
    let a = world.spawn((Health(1), Rollback::new())).id();
    let b = world.spawn(Rollback::new()).id();
    save_world(world, 1);
    world.entity_mut(a).remove::<Health>();
    world.entity_mut(b).insert(Health(2));
    load_world(world, 1);
    assert_eq!(world.get::<Health>(a), Some(&Health(1)));
    assert_eq!(world.get::<Health>(b), None);
}
