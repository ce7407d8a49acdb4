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

/// The player handles this endpoint plays (its local players), kept up to date
/// by the plugin: in P2P one handle (its place in the room), in sync-test every
/// handle, as a spectator none. Write [`LocalInputs`] for exactly these handles;
/// input for any other handle is dropped (with one warning).
///
/// ```
/// use bevy::prelude::*;
/// use bevy_rtcplay::prelude::*;
///
/// fn read_input(players: Res<LocalPlayers>, mut inputs: ResMut<LocalInputs<u8>>) {
///     for &handle in &players.0 {
///         inputs.set(handle, 0b01); // e.g. "right" from the keyboard
///     }
/// }
/// # let mut app = App::new();
/// # app.add_plugins((MinimalPlugins, RtcPlayPlugin::<u8>::default()))
/// #     .insert_resource(RtcPlaySession::<u8>::sync_test(2, 4).unwrap())
/// #     .add_systems(ReadInputs, read_input);
/// # app.update();
/// # assert_eq!(app.world().resource::<LocalPlayers>().0, vec![0, 1]);
/// ```
#[derive(Resource, Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPlayers(pub Vec<PlayerHandle>);

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
