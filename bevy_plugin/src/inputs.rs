//! Where the game writes its local input and reads everyone's.

use bevy::platform::collections::HashMap;
use bevy::prelude::*;
use rtcplay::session::{InputStatus, PlayerHandle};

/// This endpoint's inputs for the next frame, written in [`ReadInputs`](crate::ReadInputs)
/// (one per local player handle). Missing handles send `I::default()`.
#[derive(Resource, Debug)]
pub struct LocalInputs<I>(pub HashMap<PlayerHandle, I>);

impl<I> Default for LocalInputs<I> {
    fn default() -> Self {
        LocalInputs(HashMap::default())
    }
}

impl<I> LocalInputs<I> {
    /// Set a local player's input.
    pub fn set(&mut self, handle: PlayerHandle, input: I) {
        self.0.insert(handle, input);
    }
}

/// Every player's input for the frame being simulated, with its status. Read it in
/// [`RollbackSchedule`](crate::RollbackSchedule).
#[derive(Resource, Debug)]
pub struct PlayerInputs<I>(pub Vec<(I, InputStatus)>);

impl<I> Default for PlayerInputs<I> {
    fn default() -> Self {
        PlayerInputs(Vec::new())
    }
}

impl<I: Clone + Default> PlayerInputs<I> {
    /// A player's input and status (default and `Disconnected` if out of range).
    pub fn get(&self, handle: PlayerHandle) -> (I, InputStatus) {
        self.0
            .get(handle)
            .cloned()
            .unwrap_or((I::default(), InputStatus::Disconnected))
    }
}
