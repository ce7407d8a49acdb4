//! State streams in Bevy: an [`StateSync`] endpoint over the connected socket,
//! beside the rollback session (docs/state-streams.md).

use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use rtcplay::datagram::{PeerId, Transport};
use rtcplay::state_sync::{StateEvent, StateSync, StateSyncConfig};

use crate::connect::{ConnectedPeers, LinkShared, TransportLink};

/// State streams over the match's socket: set our values and send events on
/// `sync`, read the peers' there too; the plugin ticks it `rate` times a second
/// once the match is connected (its peers are the match's players), and its
/// events arrive as [`StateStreamEvent`] messages. Insert it with
/// [`RtcPlayConnect`](crate::RtcPlayConnect); a rollback session and the
/// streams share the socket without disturbing each other.
#[derive(Resource)]
pub struct StateStreams {
    /// The endpoint: `set`, `remove`, `send_event`, `get`, `keys`, `stats`.
    pub sync: StateSync,
    /// State ticks per second.
    pub rate: u32,
    owed: Duration,
}

impl StateStreams {
    /// Streams with `config`, ticked `rate` times a second (30 suits most games).
    pub fn new(config: StateSyncConfig, rate: u32) -> Self {
        StateStreams {
            sync: StateSync::new(config),
            rate: rate.max(1),
            owed: Duration::ZERO,
        }
    }

    /// How far this frame is between the last state tick and the next (0..1):
    /// pass it to `sync.render_tick` to show peers' values between samples.
    pub fn fraction(&self) -> f64 {
        let step = Duration::from_secs(1) / self.rate;
        (self.owed.as_secs_f64() / step.as_secs_f64()).clamp(0.0, 1.0)
    }
}

/// Something the state streams received.
#[derive(Message, Debug, Clone)]
pub struct StateStreamEvent(pub StateEvent);

/// The socket, seen from the state streams: sends are queued for the session's
/// next poll, receives take what it set aside.
struct LinkTransport(Arc<LinkShared>);

impl Transport for LinkTransport {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        if let Ok(mut out) = self.0.state_out.lock() {
            out.push((peer, datagram.to_vec()));
        }
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        if let Ok(mut inbox) = self.0.state_in.lock() {
            out.append(&mut inbox);
        }
    }
}

/// Keep the streams' peers those of the match, and tick them at their rate.
pub(crate) fn tick_state_streams(
    streams: Option<ResMut<StateStreams>>,
    link: Option<Res<TransportLink>>,
    peers: Res<ConnectedPeers>,
    time: Res<Time<Real>>,
    mut known: Local<Vec<PeerId>>,
    mut events: MessageWriter<StateStreamEvent>,
) {
    let (Some(mut streams), Some(link)) = (streams, link) else {
        return;
    };
    let streams = &mut *streams;
    let gone = |p: &PeerId| peers.departed.iter().any(|(d, _)| d == p);
    let current: Vec<PeerId> = peers
        .peers
        .iter()
        .copied()
        .filter(|p| Some(*p) != peers.me && !gone(p))
        .collect();
    for p in known.iter().filter(|p| !current.contains(p)) {
        streams.sync.remove_peer(*p);
    }
    for p in current.iter().filter(|p| !known.contains(p)) {
        streams.sync.add_peer(*p);
    }
    *known = current;
    let step = Duration::from_secs(1) / streams.rate;
    streams.owed = (streams.owed + time.delta()).min(step * 4);
    let mut transport = LinkTransport(link.0.clone());
    while streams.owed >= step {
        streams.owed -= step;
        streams.sync.tick(&mut transport);
    }
    events.write_batch(streams.sync.events().map(StateStreamEvent));
}
