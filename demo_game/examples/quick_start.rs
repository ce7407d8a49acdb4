//! A networked Bevy game in one file: two players meet in room `duel`.

use bevy::prelude::*;
use bevy_rtcplay::prelude::*;

/// Rolled back: saved every frame, restored when a late input changes the past.
#[derive(Component, Clone, Copy, Hash, PartialEq, Default)]
struct Position(i32, i32);

/// Which player an entity belongs to (its handle: its place in the room).
#[derive(Component, Clone, Copy, Hash, PartialEq)]
struct Player(usize);

fn spawn_players(mut commands: Commands) {
    for handle in 0..2 {
        commands.spawn((
            Player(handle),
            Position(0, 40 * handle as i32),
            Rollback::new(),
        ));
    }
}

/// This endpoint's input, for each player it plays (`LocalPlayers`: handle 0 on
/// one peer, handle 1 on the other).
fn read_input(
    players: Res<LocalPlayers>,
    keys: Res<ButtonInput<KeyCode>>,
    mut inputs: ResMut<LocalInputs<u8>>,
) {
    for &handle in &players.0 {
        inputs.set(handle, u8::from(keys.pressed(KeyCode::ArrowRight)));
    }
}

/// Game logic: every peer runs it with every player's input.
fn movement(inputs: Res<PlayerInputs<u8>>, mut q: Query<(&Player, &mut Position)>) {
    for (player, mut position) in &mut q {
        position.0 += i32::from(inputs.get(player.0).0);
    }
}

fn main() {
    App::new()
        .add_plugins((
            DefaultPlugins,
            RtcPlayPlugin::<u8>::default(),
            RtcPlayConnectPlugin::<u8>::default(),
        ))
        .rollback_component_with_checksum::<Position>()
        .rollback_component_with_checksum::<Player>()
        .add_systems(Startup, spawn_players)
        .add_systems(ReadInputs, read_input)
        .add_systems(RollbackSchedule, movement)
        // Meet one other player in room "duel"; the session starts by itself once
        // both are connected (run `rtcplay-signal --bind 127.0.0.1:3536` first).
        .insert_resource(RtcPlayConnect::new("ws://127.0.0.1:3536", "duel", 2))
        .run();
}
