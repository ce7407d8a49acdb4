//! Registering what rolls back.

use std::any::TypeId;
use std::hash::Hash;

use bevy::ecs::component::Mutable;
use bevy::ecs::entity::MapEntities;
use bevy::prelude::*;

use crate::messages::{Confirmed, MessageRegistry, RollbackMessages};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::snapshot::{ComponentSnapshots, ResourceSnapshots, SnapshotRegistry, Snapshotter};
use crate::transfer::ValueCodec;

/// Registration of rollback state on a Bevy [`App`]. Call after adding
/// [`RtcPlayPlugin`](crate::RtcPlayPlugin). Registering a type twice keeps the first.
pub trait RollbackApp {
    /// Roll back component `T` on entities marked [`Rollback`](crate::Rollback).
    /// `Copy` types take the same path and compile to plain copies.
    fn rollback_component<T: Component<Mutability = Mutable> + Clone>(&mut self) -> &mut Self;
    /// As [`rollback_component`](Self::rollback_component), and include `T` in
    /// checksums: desync reports then name `T` when it diverges.
    fn rollback_component_with_checksum<T: Component<Mutability = Mutable> + Clone + Hash>(
        &mut self,
    ) -> &mut Self;
    /// Roll back a component that holds `Entity` values; they are remapped when a
    /// rollback respawns the entities they point to.
    fn rollback_component_with_entity_map<
        T: Component<Mutability = Mutable> + Clone + MapEntities,
    >(
        &mut self,
    ) -> &mut Self;
    /// Roll back resource `R`.
    fn rollback_resource<R: Resource + Clone>(&mut self) -> &mut Self;
    /// Roll back resource `R` and include it in checksums.
    fn rollback_resource_with_checksum<R: Resource + Clone + Hash>(&mut self) -> &mut Self;
    /// Also send component `T` to a player that rejoins a running match (see
    /// `docs/bevy.md`, "Rejoining"). Register `T` for rollback first. A rejoining
    /// player receives exactly the types registered with this and
    /// [`transfer_resource`](Self::transfer_resource), plus the rollback entities;
    /// every peer must register the same ones. Not for components that hold
    /// `Entity` values (those mean nothing in another process).
    fn transfer_component<
        T: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned,
    >(
        &mut self,
    ) -> &mut Self;
    /// Also send resource `R` to a rejoining player (register it for rollback first).
    fn transfer_resource<R: Resource + Clone + Serialize + DeserializeOwned>(
        &mut self,
    ) -> &mut Self;
    /// Make message `M` rollback-safe: messages written in the rollback schedule are
    /// delivered once per frame as [`Confirmed<M>`](crate::Confirmed), when the frame
    /// can no longer change.
    fn add_rollback_message<M: Message + Clone>(&mut self) -> &mut Self;
}

/// Types already registered.
#[derive(Resource, Default)]
struct Registered(Vec<TypeId>);

fn register<T: 'static>(app: &mut App, make: impl FnOnce(usize) -> Box<dyn Snapshotter>) {
    let world = app.world_mut();
    let mut registered = world.get_resource_or_insert_with(Registered::default);
    if registered.0.contains(&TypeId::of::<T>()) {
        return;
    }
    registered.0.push(TypeId::of::<T>());
    let mut registry = world.get_resource_or_insert_with(|| SnapshotRegistry::new(48));
    let slots = registry.slots;
    registry.types.push(make(slots));
}

/// Change the registered snapshotter of type `S`; panics with a clear message if
/// the type was not registered for rollback (a setup mistake, found at startup).
fn with_snapshotter<S: 'static>(app: &mut App, change: impl FnOnce(&mut S)) {
    let mut registry = app
        .world_mut()
        .get_resource_or_insert_with(|| SnapshotRegistry::new(48));
    let found = registry
        .types
        .iter_mut()
        .find_map(|t| t.as_any_mut().downcast_mut::<S>());
    match found {
        Some(s) => change(s),
        None => panic!(
            "rtcplay: transfer_component/transfer_resource of a type not registered for \
             rollback: register it with rollback_component/rollback_resource first"
        ),
    }
}

impl RollbackApp for App {
    fn rollback_component<T: Component<Mutability = Mutable> + Clone>(&mut self) -> &mut Self {
        register::<T>(self, |slots| Box::new(ComponentSnapshots::<T>::new(slots)));
        self
    }

    fn rollback_component_with_checksum<T: Component<Mutability = Mutable> + Clone + Hash>(
        &mut self,
    ) -> &mut Self {
        register::<T>(self, |slots| {
            Box::new(ComponentSnapshots::<T>::new(slots).with_checksum())
        });
        self
    }

    fn rollback_component_with_entity_map<
        T: Component<Mutability = Mutable> + Clone + MapEntities,
    >(
        &mut self,
    ) -> &mut Self {
        register::<T>(self, |slots| {
            Box::new(ComponentSnapshots::<T>::new(slots).with_entity_mapping())
        });
        self
    }

    fn rollback_resource<R: Resource + Clone>(&mut self) -> &mut Self {
        register::<R>(self, |slots| Box::new(ResourceSnapshots::<R>::new(slots)));
        self
    }

    fn rollback_resource_with_checksum<R: Resource + Clone + Hash>(&mut self) -> &mut Self {
        register::<R>(self, |slots| {
            Box::new(ResourceSnapshots::<R>::new(slots).with_checksum())
        });
        self
    }

    fn transfer_component<
        T: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned,
    >(
        &mut self,
    ) -> &mut Self {
        with_snapshotter(self, |s: &mut ComponentSnapshots<T>| {
            s.transfer = Some(ValueCodec::serde());
        });
        self
    }

    fn transfer_resource<R: Resource + Clone + Serialize + DeserializeOwned>(
        &mut self,
    ) -> &mut Self {
        with_snapshotter(self, |s: &mut ResourceSnapshots<R>| {
            s.transfer = Some(ValueCodec::serde());
        });
        self
    }

    fn add_rollback_message<M: Message + Clone>(&mut self) -> &mut Self {
        self.add_message::<M>().add_message::<Confirmed<M>>();
        let world = self.world_mut();
        let mut registered = world.get_resource_or_insert_with(Registered::default);
        if !registered.0.contains(&TypeId::of::<Confirmed<M>>()) {
            registered.0.push(TypeId::of::<Confirmed<M>>());
            world
                .get_resource_or_insert_with(MessageRegistry::default)
                .0
                .push(Box::new(RollbackMessages::<M>::default()));
        }
        self
    }
}
