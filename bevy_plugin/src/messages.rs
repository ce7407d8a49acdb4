//! Rollback-safe messages: written in the rollback schedule, delivered outside it
//! once per frame, as the frame finally happened.

use std::collections::BTreeMap;

use bevy::ecs::message::Messages;
use bevy::prelude::*;
use rtcplay::session::Frame;

/// A message written in [`RollbackSchedule`](crate::RollbackSchedule) during
/// `frame`, delivered once the frame is confirmed (can no longer be rolled back).
/// Use it for sounds, particles and other effects that must not fire twice.
#[derive(Message, Debug, Clone)]
pub struct Confirmed<M> {
    /// The frame that wrote it.
    pub frame: Frame,
    /// The message.
    pub message: M,
}

/// Collects one message type's output per frame (replaced on re-simulation) and
/// releases confirmed frames.
pub(crate) trait MessageCollector: Send + Sync {
    /// Take what `frame`'s step wrote.
    fn collect(&mut self, world: &mut World, frame: Frame);
    /// Deliver frames up to `confirmed` as [`Confirmed`] messages.
    fn release(&mut self, world: &mut World, confirmed: Frame);
}

pub(crate) struct RollbackMessages<M: Message + Clone> {
    pending: BTreeMap<Frame, Vec<M>>,
}

impl<M: Message + Clone> Default for RollbackMessages<M> {
    fn default() -> Self {
        RollbackMessages {
            pending: BTreeMap::new(),
        }
    }
}

impl<M: Message + Clone> MessageCollector for RollbackMessages<M> {
    fn collect(&mut self, world: &mut World, frame: Frame) {
        let Some(mut messages) = world.get_resource_mut::<Messages<M>>() else {
            return;
        };
        let written: Vec<M> = messages.drain().collect();
        self.pending.insert(frame, written);
    }

    fn release(&mut self, world: &mut World, confirmed: Frame) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > confirmed {
                break;
            }
            let (frame, list) = entry.remove_entry();
            for message in list {
                world.write_message(Confirmed { frame, message });
            }
        }
    }
}

/// Every registered rollback message type.
#[derive(Resource, Default)]
pub(crate) struct MessageRegistry(pub Vec<Box<dyn MessageCollector>>);
