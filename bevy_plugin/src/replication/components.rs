//! One replicated component: the owner sends it, mirrors take it (latest, or
//! interpolated between samples).

use bevy::ecs::component::Mutable;
use bevy::prelude::*;
use rtcplay::datagram::PeerId;
use rtcplay::state_sync::{DeadReckoning, Snapshots, Stream, StreamKey};

use super::{ComponentSpec, Replicated, ReplicationStats};
use crate::state_streams::StateStreams;

/// The owner's dead reckoning of an interpolated component.
#[derive(Resource)]
pub(crate) struct Reckoning<C>(pub(crate) DeadReckoning<C>);

/// A mirror's samples of `C` from its owner.
#[derive(Component)]
pub(crate) struct Received<C> {
    owner: PeerId,
    /// The owner's tick of the newest value taken.
    tick: u64,
    samples: Snapshots<C>,
}

/// A replicated entity as [`apply_component`] sees it.
type Mirror<'a, C> = (
    Entity,
    &'a Replicated,
    Option<&'a mut C>,
    Option<&'a mut Received<C>>,
);

/// Our entities' values of `C` go out: changed ones, or (interpolated) the
/// samples dead reckoning asks for; a removed `C` is removed on the peers.
pub(crate) fn publish_component<C: Component<Mutability = Mutable> + Clone>(
    streams: Option<ResMut<StateStreams>>,
    spec: Res<ComponentSpec<C>>,
    mut reckoning: Option<ResMut<Reckoning<C>>>,
    values: Query<(Ref<Replicated>, Ref<C>)>,
    replicated: Query<&Replicated>,
    mut removed: RemovedComponents<C>,
) {
    let Some(mut streams) = streams else {
        removed.clear();
        return;
    };
    let sync = &mut streams.sync;
    let stamp = sync.stamp();
    for (r, value) in &values {
        let Some(id) = r.id() else { continue };
        if !r.is_mine() {
            if let Some(reckoning) = reckoning.as_deref_mut() {
                reckoning.0.forget(id);
            }
            continue;
        }
        let key = StreamKey {
            stream: spec.stream,
            key: id,
        };
        let result = match (&spec.smoothing, reckoning.as_deref_mut()) {
            (Some(smoothing), Some(reckoning)) => {
                match reckoning
                    .0
                    .sample(id, stamp, &*value, smoothing.blend, smoothing.distance)
                {
                    Some((tick, sample)) => {
                        (spec.encode)(&sample).map(|bytes| sync.set_sample_bytes(key, tick, bytes))
                    }
                    None => None,
                }
            }
            _ if value.is_changed() || r.is_changed() => {
                (spec.encode)(&value).map(|bytes| sync.set_bytes(key, bytes))
            }
            _ => None,
        };
        if let Some(Err(e)) = result {
            tracing::warn!("rtcplay: a replicated value of entity {id:#x} not sent: {e}");
        }
    }
    for entity in removed.read() {
        if let Ok(r) = replicated.get(entity) {
            if let (Some(id), true) = (r.id(), r.is_mine()) {
                sync.remove(Stream::<C>::new(spec.stream), id);
            }
        }
    }
}

/// Mirrors take their owner's values of `C`: the latest, or (interpolated)
/// sampled at the owner's render tick.
pub(crate) fn apply_component<C: Component<Mutability = Mutable> + Clone>(
    mut commands: Commands,
    streams: Option<Res<StateStreams>>,
    spec: Res<ComponentSpec<C>>,
    mut stats: ResMut<ReplicationStats>,
    mut mirrors: Query<Mirror<C>>,
) {
    let Some(streams) = streams else {
        return;
    };
    let sync = &streams.sync;
    let fraction = streams.fraction();
    for (entity, r, mut value, received) in &mut mirrors {
        let (Some(id), Some(owner)) = (r.id(), r.owner()) else {
            continue;
        };
        let key = StreamKey {
            stream: spec.stream,
            key: id,
        };
        let Some(mut received) = received else {
            // Nothing taken yet: the owner's value, if any, as it is.
            let Some((bytes, tick)) = sync.get_bytes_with_tick(owner, key) else {
                continue;
            };
            let mut samples = Snapshots::new();
            match (spec.decode)(bytes) {
                Some(v) => {
                    samples.push(tick, v.clone());
                    commands.entity(entity).insert(v);
                }
                None => stats.undecodable += 1,
            }
            commands.entity(entity).insert(Received {
                owner,
                tick,
                samples,
            });
            continue;
        };
        if received.owner != owner {
            // A new owner: its ticks are its own.
            *received = Received {
                owner,
                tick: 0,
                samples: Snapshots::new(),
            };
        }
        match sync.tick_of(owner, key) {
            None if received.tick > 0 && value.is_some() => {
                // The owner removed it.
                commands.entity(entity).remove::<(C, Received<C>)>();
                continue;
            }
            Some(tick) if tick > received.tick => {
                received.tick = tick;
                match sync.get_bytes(owner, key).and_then(spec.decode) {
                    Some(v) => {
                        if spec.smoothing.is_none() {
                            match value.as_deref_mut() {
                                Some(current) => *current = v.clone(),
                                None => {
                                    commands.entity(entity).insert(v.clone());
                                }
                            }
                        }
                        received.samples.push(tick, v);
                    }
                    None => stats.undecodable += 1,
                }
            }
            _ => {}
        }
        let Some(smoothing) = &spec.smoothing else {
            continue;
        };
        let Some(render) = sync.render_tick(owner, fraction) else {
            continue;
        };
        let Some(shown) = received.samples.sample(
            render,
            smoothing.settings.extrapolate_ticks as f64,
            smoothing.blend,
        ) else {
            continue;
        };
        match value {
            Some(mut current) => *current = shown,
            None => {
                commands.entity(entity).insert(shown);
            }
        }
    }
}
