//! Owner-replicated entities: the second netcode model beside rollback, peer
//! to peer. An entity marked [`Replicated`] is owned by the peer that spawned
//! it; its replicated components (registered with [`ReplicationApp`]) are sent
//! by that owner alone over the [`StateStreams`](crate::StateStreams) and
//! mirrored on every other peer — spawned, updated, despawned — and ownership
//! can be handed to another peer. Components registered as interpolated are
//! shown between the owner's samples at an adaptive render delay. See
//! `docs/state-streams.md`.

mod components;
mod interpolate;
mod ownership;

use std::collections::HashMap;

use bevy::ecs::component::Mutable;
use bevy::prelude::*;
use rtcplay::datagram::PeerId;
use rtcplay::state_sync::{DeadReckoning, Stream, StreamId};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use interpolate::Interpolate;

/// The stream of entity presence records (who owns which entity).
/// Replicated components take the streams after it, in registration order;
/// a game's own streams should use ids below it.
pub const PRESENCE_STREAM: StreamId = 0xFF00;

/// Marks an entity replicated. Spawn it with `Replicated::new()` and it is
/// ours: its replicated components are sent to every peer, where a mirror
/// with the same components appears (carrying a `Replicated` whose
/// [`owner`](Self::owner) is us). Only the owner's writes travel; a mirror's
/// components are overwritten by what the owner sends.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct Replicated {
    id: Option<u64>,
    holder: Holder,
    generation: u32,
}

/// Who holds an entity, as this peer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// We own it.
    Me,
    /// We own it and are handing it to this peer.
    Handing(PeerId),
    /// This peer owns it: ours is a mirror.
    Peer(PeerId),
}

impl Default for Replicated {
    fn default() -> Self {
        Self::new()
    }
}

impl Replicated {
    /// A new entity owned by this peer (it gets its id once the match runs).
    pub fn new() -> Self {
        Replicated {
            id: None,
            holder: Holder::Me,
            generation: 0,
        }
    }

    /// Its id, the same on every peer (`creator peer id << 32 | serial`);
    /// `None` until the match runs.
    pub fn id(&self) -> Option<u64> {
        self.id
    }

    /// The peer that owns it, or `None` when it is ours.
    pub fn owner(&self) -> Option<PeerId> {
        match self.holder {
            Holder::Peer(p) => Some(p),
            Holder::Me | Holder::Handing(_) => None,
        }
    }

    /// Whether this peer owns it and its writes are sent (false while it is
    /// being handed over).
    pub fn is_mine(&self) -> bool {
        self.holder == Holder::Me
    }

    /// The peer it is being handed to, until that peer takes it.
    pub fn handing_to(&self) -> Option<PeerId> {
        match self.holder {
            Holder::Handing(p) => Some(p),
            _ => None,
        }
    }

    /// How many times it changed owner.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Hand it to `peer`: we stop sending it now, `peer` takes it with our
    /// latest values and sends it from then on (every peer follows). Only the
    /// owner can hand an entity over: on a mirror this does nothing.
    pub fn hand_over(&mut self, peer: PeerId) {
        if self.holder == Holder::Me {
            self.holder = Holder::Handing(peer);
        }
    }

    fn mirror(id: u64, owner: PeerId, generation: u32) -> Self {
        Replicated {
            id: Some(id),
            holder: Holder::Peer(owner),
            generation,
        }
    }
}

/// How an interpolated component is sent and shown. Receivers show the
/// owner's samples at a render delay of latency + measured jitter + 2 ticks
/// (adapting as the jitter changes); the owner sends a sample only when
/// receivers' extrapolation would be off by more than `send_threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    /// Largest error receivers may show, in the units of
    /// [`Interpolate::distance`]. 0: a sample every state tick it changes.
    pub send_threshold: f32,
    /// A sample at least every this many state ticks.
    pub max_quiet_ticks: u64,
    /// Past the newest sample, receivers extrapolate this many state ticks
    /// (0: they hold the last value), then hold.
    pub extrapolate_ticks: u64,
}

impl Default for Smoothing {
    /// Exact (a sample every tick the value changes), extrapolating up to
    /// 15 ticks (half a second at 30 Hz) when samples are late.
    fn default() -> Self {
        Smoothing {
            send_threshold: 0.0,
            max_quiet_ticks: 15,
            extrapolate_ticks: 15,
        }
    }
}

impl Smoothing {
    /// Send predictable motion rarely: a sample only when receivers'
    /// extrapolation would be off by more than `threshold` (units of
    /// [`Interpolate::distance`]), at least every 15 ticks.
    pub fn dead_reckoning(threshold: f32) -> Self {
        Smoothing {
            send_threshold: threshold,
            ..Smoothing::default()
        }
    }
}

/// What replication dropped, and what it did.
#[derive(Resource, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationStats {
    /// Mirrors spawned (entities of other peers that appeared).
    pub spawned: u64,
    /// Mirrors despawned (their owner despawned them, or left).
    pub despawned: u64,
    /// Entities this peer took over from another.
    pub taken_over: u64,
    /// Entities this peer handed to another.
    pub handed_over: u64,
    /// Values or claims from a peer for an entity it does not own: dropped.
    pub not_owner: u64,
    /// Values that did not decode as their component: dropped.
    pub undecodable: u64,
}

/// How one replicated component travels.
#[derive(Resource)]
pub(crate) struct ComponentSpec<C> {
    pub(crate) stream: StreamId,
    pub(crate) encode: fn(&C) -> Option<Vec<u8>>,
    pub(crate) decode: fn(&[u8]) -> Option<C>,
    pub(crate) smoothing: Option<SmoothingFns<C>>,
}

/// An interpolated component's settings and blend.
pub(crate) struct SmoothingFns<C> {
    pub(crate) settings: Smoothing,
    pub(crate) blend: fn(&C, &C, f32) -> C,
    pub(crate) distance: fn(&C, &C) -> f32,
}

/// Every replicated component's stream, for the entity-wide work (accepting
/// them, removing an entity's values).
#[derive(Resource, Default)]
pub(crate) struct ReplicationRegistry {
    pub(crate) streams: Vec<StreamId>,
}

/// Entities known by id.
#[derive(Resource, Default)]
pub(crate) struct ReplicationIndex {
    pub(crate) next_serial: u32,
    pub(crate) by_id: HashMap<u64, Tracked>,
}

/// One replicated entity as this peer tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    pub(crate) entity: Entity,
    /// (Mirrors) the owner named this peer as the next owner.
    pub(crate) pending: Option<PeerId>,
    /// (Ours, handed away) our records wait until every peer has our hand-over.
    pub(crate) retiring: bool,
    /// The owner before the current one.
    pub(crate) previous: Option<PeerId>,
}

/// An entity's presence record, sent by its owner in [`PRESENCE_STREAM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Presence {
    pub(crate) generation: u32,
    pub(crate) handed_to: Option<u32>,
}

pub(crate) const PRESENCE: Stream<Presence> = Stream::new(PRESENCE_STREAM);

/// Registers replicated components (on every peer, in the same order: each
/// takes the next stream after [`PRESENCE_STREAM`]).
pub trait ReplicationApp {
    /// Replicate `C` (serde, bincode 2): mirrors take the owner's latest value.
    fn replicate<C>(&mut self) -> &mut Self
    where
        C: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned;

    /// Replicate `C` and show it interpolated between the owner's samples.
    fn replicate_interpolated<C>(&mut self, smoothing: Smoothing) -> &mut Self
    where
        C: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned + Interpolate;

    /// Replicate `Transform` (translation, rotation, scale: 40 bytes),
    /// interpolated.
    fn replicate_transform(&mut self, smoothing: Smoothing) -> &mut Self;
}

fn encode_serde<C: Serialize>(value: &C) -> Option<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).ok()
}

fn decode_serde<C: DeserializeOwned>(bytes: &[u8]) -> Option<C> {
    let config = bincode::config::standard().with_limit::<{ 64 * 1024 }>();
    match bincode::serde::decode_from_slice::<C, _>(bytes, config) {
        Ok((value, used)) if used == bytes.len() => Some(value),
        _ => None,
    }
}

impl ReplicationApp for App {
    fn replicate<C>(&mut self) -> &mut Self
    where
        C: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned,
    {
        register::<C>(self, encode_serde::<C>, decode_serde::<C>, None)
    }

    fn replicate_interpolated<C>(&mut self, smoothing: Smoothing) -> &mut Self
    where
        C: Component<Mutability = Mutable> + Clone + Serialize + DeserializeOwned + Interpolate,
    {
        let fns = SmoothingFns {
            settings: smoothing,
            blend: <C as Interpolate>::interpolate,
            distance: <C as Interpolate>::distance,
        };
        register::<C>(self, encode_serde::<C>, decode_serde::<C>, Some(fns))
    }

    fn replicate_transform(&mut self, smoothing: Smoothing) -> &mut Self {
        let fns = SmoothingFns {
            settings: smoothing,
            blend: <Transform as Interpolate>::interpolate,
            distance: <Transform as Interpolate>::distance,
        };
        register::<Transform>(
            self,
            interpolate::encode_transform,
            interpolate::decode_transform,
            Some(fns),
        )
    }
}

/// Streams left after [`PRESENCE_STREAM`] (u16).
const MAX_COMPONENTS: usize = (u16::MAX - PRESENCE_STREAM) as usize;

fn register<C: Component<Mutability = Mutable> + Clone>(
    app: &mut App,
    encode: fn(&C) -> Option<Vec<u8>>,
    decode: fn(&[u8]) -> Option<C>,
    smoothing: Option<SmoothingFns<C>>,
) -> &mut App {
    if app.world().contains_resource::<ComponentSpec<C>>() {
        return app;
    }
    if !app.world().contains_resource::<ReplicationRegistry>() {
        app.init_resource::<ReplicationRegistry>()
            .init_resource::<ReplicationIndex>()
            .init_resource::<ReplicationStats>()
            .add_systems(
                PreUpdate,
                ownership::track_ownership.after(crate::state_streams::tick_state_streams),
            );
    }
    let mut registry = app.world_mut().resource_mut::<ReplicationRegistry>();
    assert!(
        registry.streams.len() < MAX_COMPONENTS,
        "too many replicated components"
    );
    let stream = PRESENCE_STREAM + 1 + registry.streams.len() as StreamId;
    registry.streams.push(stream);
    let reckoning = smoothing.as_ref().map(|s| {
        let s = s.settings;
        components::Reckoning(DeadReckoning::<C>::new(
            s.send_threshold,
            s.max_quiet_ticks,
            s.extrapolate_ticks,
        ))
    });
    app.insert_resource(ComponentSpec {
        stream,
        encode,
        decode,
        smoothing,
    });
    if let Some(reckoning) = reckoning {
        app.insert_resource(reckoning);
    }
    app.add_systems(
        PreUpdate,
        components::apply_component::<C>.after(ownership::track_ownership),
    )
    .add_systems(PostUpdate, components::publish_component::<C>);
    app
}
