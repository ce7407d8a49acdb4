//! Taking our own seat back after our connection dropped mid-match, without the
//! game's help ([`RtcPlayConnect::auto_rejoin`]).
//!
//! The socket says `SignalingLost` when its signaling connection closes during
//! the match, or does not answer the probe it sends when a link stalls: our
//! network went away or changed (a new address kills every old connection). The
//! old session plays on (the others look `Disconnected` to it) while a new
//! socket joins with our rejoin token:
//! - `seat_taken`: the server still sees our old connection; it pings it and
//!   closes it as lost when it does not answer (3 s), so we try again after that;
//! - the server cannot be reached yet: try again a second later;
//! - refused otherwise (`rejoin_refused`: the grace period is over, the match
//!   has ended, or the server restarted and knows no seats): give up; the old
//!   session goes on as far as it can;
//! - every peer connected: the old session and socket are dropped and a
//!   rejoining session (state from a survivor) takes their place, with the
//!   player handles of the match.
//!
//! We give up after [`GIVE_UP_AFTER`], the server's default seat grace.

use std::time::Duration;

use bevy::prelude::*;
use rtcplay::session::Input;
use rtcplay::signaling::ErrorCode;
use rtcplay::transport::{Socket, SocketEvent, TransportError};

use crate::connect::{
    start_session, ActiveRequest, ConnectStatus, ConnectedPeers, LinkShared, RtcPlayConnect,
    SeatMap, Started, TransportLink,
};

/// The server still saw our old connection: it answers within 3 s or is closed.
const RETRY_AFTER_SEAT_TAKEN: Duration = Duration::from_millis(3500);
/// The server could not be reached, or a peer did not connect.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// How long we keep trying: the server's default seat grace.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Our seat is being taken back.
#[derive(Resource)]
struct SeatRecovery {
    /// The match's request, with our rejoin token.
    request: RtcPlayConnect,
    began: Duration,
    next_try: Duration,
    /// The current try.
    socket: Option<Socket>,
    /// A drop-in room's seats, as the server told the current try.
    seats: Option<SeatMap>,
}

/// What a try came to.
enum Outcome {
    Connected,
    RetryAfter(Duration, String),
    GiveUp(String),
}

/// Notice that our signaling connection is gone, then take the seat back.
pub(crate) fn drive_auto_rejoin<I: Input + Send + Sync + 'static>(world: &mut World) {
    let now = world.resource::<Time<Real>>().elapsed();
    let recovery = match world.remove_resource::<SeatRecovery>() {
        Some(recovery) => recovery,
        None => match begin(world, now) {
            Some(recovery) => recovery,
            None => return,
        },
    };
    if let Some(recovery) = try_once::<I>(world, now, recovery) {
        world.insert_resource(recovery);
    }
}

/// A recovery to start, when the running match's socket lost its signaling
/// connection and we may take our seat back.
fn begin(world: &mut World, now: Duration) -> Option<SeatRecovery> {
    let link = world.get_resource::<TransportLink>()?;
    if !link
        .0
        .signaling_lost
        .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        return None;
    }
    let request = &world.get_resource::<ActiveRequest>()?.0;
    let running = *world.resource::<ConnectStatus>() == ConnectStatus::Running;
    if !request.auto_rejoin || request.spectate || !running {
        return None;
    }
    let Some(token) = world.resource::<ConnectedPeers>().rejoin_token.clone() else {
        tracing::warn!(
            "rtcplay: our signaling connection is gone and the server gave no rejoin token"
        );
        return None;
    };
    let mut request = request.clone();
    request.rejoin_token = Some(token);
    tracing::info!("rtcplay: our signaling connection is gone; taking our seat back");
    world.resource_mut::<ConnectedPeers>().rejoining = true;
    Some(SeatRecovery {
        request,
        began: now,
        next_try: now,
        socket: None,
        seats: None,
    })
}

/// Start or poll the current try; `None` once the recovery is over.
fn try_once<I: Input + Send + Sync + 'static>(
    world: &mut World,
    now: Duration,
    mut recovery: SeatRecovery,
) -> Option<SeatRecovery> {
    if recovery.socket.is_none() {
        if now < recovery.next_try {
            return Some(recovery);
        }
        if now.saturating_sub(recovery.began) > GIVE_UP_AFTER {
            give_up(
                world,
                &format!("not back within {} s", GIVE_UP_AFTER.as_secs()),
            );
            return None;
        }
        match Socket::new(recovery.request.socket_config()) {
            Ok(socket) => recovery.socket = Some(socket),
            Err(e) => {
                give_up(world, &e.to_string());
                return None;
            }
        }
    }
    let socket = recovery.socket.as_mut()?;
    let mut outcome = None;
    for event in socket.events() {
        outcome = match event {
            SocketEvent::AllConnected => Some(Outcome::Connected),
            SocketEvent::Seats { seats, in_progress } => {
                recovery.seats = Some(SeatMap { seats, in_progress });
                None
            }
            SocketEvent::Error(TransportError::JoinRefused {
                code: ErrorCode::SeatTaken,
                message,
            }) => Some(Outcome::RetryAfter(RETRY_AFTER_SEAT_TAKEN, message)),
            SocketEvent::Error(TransportError::JoinRefused { code, message }) => {
                Some(Outcome::GiveUp(format!("{code}: {message}")))
            }
            SocketEvent::Error(e) => Some(Outcome::RetryAfter(RETRY_AFTER_FAILURE, e.to_string())),
            SocketEvent::PeerDisconnected { peer, reason } => Some(Outcome::RetryAfter(
                RETRY_AFTER_FAILURE,
                format!("{peer} disconnected ({reason:?})"),
            )),
            _ => None,
        };
        if outcome.is_some() {
            break;
        }
    }
    match outcome {
        None => Some(recovery),
        Some(Outcome::RetryAfter(after, why)) => {
            tracing::debug!("rtcplay: taking our seat back: {why}; trying again");
            recovery.socket = None;
            recovery.next_try = now + after;
            Some(recovery)
        }
        Some(Outcome::GiveUp(why)) => {
            give_up(world, &why);
            None
        }
        Some(Outcome::Connected) => {
            let socket = recovery.socket.take()?;
            resume::<I>(world, now, socket, recovery.request, recovery.seats);
            None
        }
    }
}

/// Every peer is connected again: a rejoining session replaces the old one.
fn resume<I: Input + Send + Sync + 'static>(
    world: &mut World,
    now: Duration,
    mut socket: Socket,
    request: RtcPlayConnect,
    seats: Option<SeatMap>,
) {
    let Some(me) = socket.id() else {
        give_up(world, "connected without a peer id");
        return;
    };
    // The match's players in handle order (the server's `room_full` lists only
    // the players connected now).
    let players = world.resource::<ConnectedPeers>().peers.clone();
    let link = LinkShared::at(now);
    match start_session::<I>(me, socket, &request, players, seats, link.clone()) {
        Ok(Started::StateOnly(..)) => give_up(world, "a state-only match has no seat to take back"),
        Ok(Started::Session(session, peers)) => {
            tracing::info!("rtcplay: back in the match as {me}; rejoining with a survivor's state");
            world.insert_resource(*session);
            world.insert_resource(TransportLink(link));
            world.insert_resource(ActiveRequest(request));
            *world.resource_mut::<ConnectedPeers>() = peers;
        }
        Err(why) => give_up(world, &why),
    }
}

fn give_up(world: &mut World, why: &str) {
    tracing::warn!("rtcplay: could not take our seat back: {why}");
    world.resource_mut::<ConnectedPeers>().rejoining = false;
}
