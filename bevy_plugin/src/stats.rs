//! Session events as Bevy messages, network stats as a resource and as Bevy
//! diagnostics.

use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::prelude::*;
use rtcplay::session::{Frame, Input, PeerStats, ReplayEvent, SessionEvent, SessionStats};
use rtcplay::transport::PeerId;

use crate::desync::DivergedValue;
use crate::forensics::DesyncReport;
use crate::session::RtcPlaySession;

/// What the session reports, as a Bevy message.
#[derive(Message, Debug, Clone)]
pub enum RtcPlayEvent {
    /// A session event (synchronization, interruptions, disconnects, desyncs, …).
    Session(SessionEvent),
    /// Sync-test: re-simulating `frame` gave a different state.
    SyncTestMismatch {
        /// The frame.
        frame: Frame,
        /// Checksum of the first simulation.
        original: u64,
        /// Checksum of the re-simulation.
        resimulated: u64,
        /// Registered types whose checksums differ.
        parts: Vec<String>,
        /// The values that differ: type, rollback id and entity (or a resource).
        values: Vec<DivergedValue>,
    },
    /// Replay playback: a recorded checksum differs, or the end was reached.
    Replay(ReplayEvent),
    /// After a P2P desync: the values that differ between us and the peer at
    /// the desynced frame (both peers report the same ones).
    DesyncForensics(DesyncReport),
}

/// Network statistics, refreshed every update.
#[derive(Resource, Debug, Clone, Default)]
pub struct NetworkStats {
    /// Per remote peer.
    pub peers: Vec<(PeerId, PeerStats)>,
    /// Session totals.
    pub session: SessionStats,
}

/// Diagnostic paths published by the plugin (show them with Bevy's diagnostics
/// overlay or log them with `LogDiagnosticsPlugin`).
pub struct RtcPlayDiagnostics;

impl RtcPlayDiagnostics {
    /// Highest round-trip time among peers, in ms.
    pub const PING_MS: DiagnosticPath = DiagnosticPath::const_new("rtcplay/ping_ms");
    /// Largest frame advantage of a remote peer over us.
    pub const FRAME_ADVANTAGE: DiagnosticPath =
        DiagnosticPath::const_new("rtcplay/frame_advantage");
    /// Payload sent per second, all peers, in kbit/s.
    pub const KBPS_OUT: DiagnosticPath = DiagnosticPath::const_new("rtcplay/kbps_out");
    /// Payload received per second, all peers, in kbit/s.
    pub const KBPS_IN: DiagnosticPath = DiagnosticPath::const_new("rtcplay/kbps_in");
    /// Rollbacks so far.
    pub const ROLLBACKS: DiagnosticPath = DiagnosticPath::const_new("rtcplay/rollbacks");
    /// Depth of the latest rollback, in frames.
    pub const ROLLBACK_DEPTH: DiagnosticPath = DiagnosticPath::const_new("rtcplay/rollback_depth");
}

pub(crate) fn register_diagnostics(app: &mut App) {
    for path in [
        RtcPlayDiagnostics::PING_MS,
        RtcPlayDiagnostics::FRAME_ADVANTAGE,
        RtcPlayDiagnostics::KBPS_OUT,
        RtcPlayDiagnostics::KBPS_IN,
        RtcPlayDiagnostics::ROLLBACKS,
        RtcPlayDiagnostics::ROLLBACK_DEPTH,
    ] {
        app.register_diagnostic(Diagnostic::new(path));
    }
}

pub(crate) fn update_stats<I: Input>(world: &mut World, session: &RtcPlaySession<I>) {
    let session = match session {
        RtcPlaySession::P2P { session, .. } => session,
        RtcPlaySession::Spectator { session, .. } => {
            let mut stats = world.resource_mut::<NetworkStats>();
            stats.session = session.stats();
            stats.peers.clear();
            stats.peers.push((session.host(), session.host_stats()));
            return;
        }
        RtcPlaySession::SyncTest(_) | RtcPlaySession::Replay(_) => return,
    };
    let mut stats = world.resource_mut::<NetworkStats>();
    stats.session = session.stats();
    stats.peers.clear();
    for peer in session.remote_peers() {
        if let Some(s) = session.peer_stats(peer) {
            stats.peers.push((peer, s));
        }
    }
}

pub(crate) fn publish_diagnostics(stats: Res<NetworkStats>, mut diagnostics: Diagnostics) {
    if stats.peers.is_empty() {
        return;
    }
    let peers = &stats.peers;
    let max = |f: fn(&PeerStats) -> f64| peers.iter().map(|(_, s)| f(s)).fold(f64::MIN, f64::max);
    let sum = |f: fn(&PeerStats) -> f64| peers.iter().map(|(_, s)| f(s)).sum::<f64>();
    diagnostics.add_measurement(&RtcPlayDiagnostics::PING_MS, || {
        max(|s| s.rtt.as_secs_f64() * 1000.0)
    });
    diagnostics.add_measurement(&RtcPlayDiagnostics::FRAME_ADVANTAGE, || {
        max(|s| f64::from(s.local_frame_advantage))
    });
    diagnostics.add_measurement(&RtcPlayDiagnostics::KBPS_OUT, || {
        sum(|s| f64::from(s.bytes_out_per_sec) * 8.0 / 1000.0)
    });
    diagnostics.add_measurement(&RtcPlayDiagnostics::KBPS_IN, || {
        sum(|s| f64::from(s.bytes_in_per_sec) * 8.0 / 1000.0)
    });
    let session = stats.session;
    diagnostics.add_measurement(&RtcPlayDiagnostics::ROLLBACKS, || session.rollbacks as f64);
    diagnostics.add_measurement(&RtcPlayDiagnostics::ROLLBACK_DEPTH, || {
        f64::from(session.last_rollback_depth)
    });
}
