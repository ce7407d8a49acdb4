//! The lobby line, in both netcode modes, over the state streams beside the
//! match: each player's ready flag (a state stream, latest-wins) and short
//! chat/emote lines (reliable events, also carrying the state mode's hits).

use bevy::prelude::*;
use bevy_rtcplay::{ConnectStatus, ConnectedPeers, StateStreamEvent, StateStreams};
use rtcplay::state_sync::{StateEvent, StateSyncConfig, Stream};
use serde::{Deserialize, Serialize};

use crate::app::{report, DemoSettings};

/// Each player's lobby state, keyed by its peer id.
pub const LOBBY: Stream<Ready> = Stream::new(1);

/// A player's lobby state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// Its player number (1-based).
    pub player: u8,
    /// Ready to play.
    pub ready: bool,
}

/// Reliable messages between the players.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LobbyMessage {
    /// A chat or emote line from player `player` (1-based).
    Chat {
        /// Who says it.
        player: u8,
        /// What (at most [`MAX_CHAT`] characters are shown).
        text: String,
    },
    /// (State mode) a shot of `shooter` hit `victim`, pushing it by `push`.
    Hit {
        /// Handle of the shooter.
        shooter: u8,
        /// Handle of the player hit.
        victim: u8,
        /// The shot's velocity: the victim's knock-back.
        push: (i32, i32),
    },
}

/// Characters of a chat line shown (longer ones are cut).
pub const MAX_CHAT: usize = 80;

/// Lines the lobby received, newest last (the window shows the last few).
#[derive(Resource, Debug, Default)]
pub struct LobbyLog {
    /// Text lines.
    pub lines: Vec<String>,
    announced: bool,
    ready: Vec<(u32, bool)>,
}

/// Send `message` to every player (reliably, in order).
pub fn send(streams: &mut StateStreams, message: &LobbyMessage) {
    if let Err(e) = streams.sync.send_event(None, message) {
        tracing::warn!("lobby message not sent: {e}");
    }
}

/// A lobby message from its bytes.
pub fn decode(bytes: &[u8]) -> Option<LobbyMessage> {
    rtcplay::state_sync::decode_event(bytes)
}

/// Add the state streams (30 Hz) and the lobby line to `app`.
pub fn add_lobby(app: &mut App) {
    let mut streams = StateStreams::new(StateSyncConfig::default(), 30);
    streams.sync.accept(LOBBY);
    app.insert_resource(streams)
        .init_resource::<LobbyLog>()
        .add_systems(Update, (announce, emote, listen).chain());
}

/// Once the match runs: we are ready, and we greet the others.
fn announce(
    status: Res<ConnectStatus>,
    peers: Res<ConnectedPeers>,
    settings: Res<DemoSettings>,
    streams: Option<ResMut<StateStreams>>,
    mut log: ResMut<LobbyLog>,
) {
    let (Some(mut streams), ConnectStatus::Running, Some(me)) = (streams, &*status, peers.me)
    else {
        return;
    };
    if log.announced || peers.spectating {
        return;
    }
    log.announced = true;
    let player = u8::try_from(peers.local_handle + 1).unwrap_or(0);
    let ready = Ready {
        player,
        ready: true,
    };
    if let Err(e) = streams.sync.set(LOBBY, u64::from(me.0), &ready) {
        tracing::warn!("lobby state not sent: {e}");
    }
    let text = if settings.bot { "gl hf (bot)" } else { "gl hf" };
    send(
        &mut streams,
        &LobbyMessage::Chat {
            player,
            text: text.into(),
        },
    );
}

/// In the window: G sends "gg", H sends "nice shot".
fn emote(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    peers: Res<ConnectedPeers>,
    streams: Option<ResMut<StateStreams>>,
    mut log: ResMut<LobbyLog>,
) {
    let (Some(keys), Some(mut streams)) = (keys, streams) else {
        return;
    };
    let text = if keys.just_pressed(KeyCode::KeyG) {
        "gg"
    } else if keys.just_pressed(KeyCode::KeyH) {
        "nice shot"
    } else {
        return;
    };
    let player = u8::try_from(peers.local_handle + 1).unwrap_or(0);
    send(
        &mut streams,
        &LobbyMessage::Chat {
            player,
            text: text.into(),
        },
    );
    log.lines.push(format!("P{player} (you): {text}"));
}

/// Print and keep what arrives: chat lines, and players turning ready.
fn listen(
    settings: Res<DemoSettings>,
    streams: Option<Res<StateStreams>>,
    mut events: MessageReader<StateStreamEvent>,
    mut log: ResMut<LobbyLog>,
) {
    let Some(streams) = streams else {
        events.clear();
        return;
    };
    let say = |line: &str| report(&settings, line);
    for StateStreamEvent(event) in events.read() {
        match event {
            StateEvent::Event { bytes, .. } => {
                if let Some(LobbyMessage::Chat { player, text }) = decode(bytes) {
                    let text: String = text
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(MAX_CHAT)
                        .collect();
                    let line = format!("P{player}: {text}");
                    say(&format!("chat {line}"));
                    log.lines.push(line);
                }
            }
            StateEvent::Updated { peer, key } if key.stream == LOBBY.id => {
                let Some(ready) = streams.sync.get(*peer, LOBBY, key.key) else {
                    continue;
                };
                if log.ready.contains(&(peer.0, ready.ready)) {
                    continue;
                }
                log.ready.retain(|(p, _)| *p != peer.0);
                log.ready.push((peer.0, ready.ready));
                let line = format!(
                    "P{} is {}",
                    ready.player,
                    if ready.ready { "ready" } else { "not ready" }
                );
                say(&format!("lobby: {line}"));
                log.lines.push(line);
            }
            _ => {}
        }
        // Keep the log short.
        if log.lines.len() > 32 {
            log.lines.remove(0);
        }
    }
}
