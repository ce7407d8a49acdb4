//! Replays in Bevy: recording the match that drives the app, and playing a
//! recorded one back through the same rollback schedule.

use bevy::prelude::*;
use rtcplay::session::replay::ReplayMismatch;
use rtcplay::session::{Frame, Input};

use crate::driver::carry_out;
use crate::session::RtcPlaySession;
use crate::stats::RtcPlayEvent;

/// Controls a replay's playback ([`RtcPlaySession::Replay`]) and shows where
/// it is. The plugin applies it every update, before the frame advances.
///
/// ```no_run
/// # use bevy::prelude::*;
/// # use bevy_rtcplay::ReplayControl;
/// /// Watch the first minute at double speed, then pause and go back 5 s.
/// fn watch(mut replay: ResMut<ReplayControl>, mut done: Local<bool>) {
///     if !*done {
///         replay.speed = 2.0;
///     }
///     if replay.frame() >= 3600 && !*done {
///         *done = true;
///         replay.paused = true;
///         let back = replay.frame() - 300;
///         replay.seek(back);
///     }
/// }
/// ```
#[derive(Resource, Debug, Clone)]
pub struct ReplayControl {
    /// No frames advance while paused (steps and seeks still do).
    pub paused: bool,
    /// Playback speed, 1.0 as recorded; clamped to ×0.25–×8.
    pub speed: f32,
    seek: Option<Frame>,
    steps: u32,
    frame: Frame,
    end_frame: Frame,
    first_mismatch: Option<ReplayMismatch>,
    verified: u64,
    last_error: Option<String>,
}

impl Default for ReplayControl {
    fn default() -> Self {
        ReplayControl {
            paused: false,
            speed: 1.0,
            seek: None,
            steps: 0,
            frame: 0,
            end_frame: 0,
            first_mismatch: None,
            verified: 0,
            last_error: None,
        }
    }
}

impl ReplayControl {
    /// Go to the state at the start of `frame` in the next update (back through
    /// the nearest state kept on the way, or forward).
    pub fn seek(&mut self, frame: Frame) {
        self.seek = Some(frame);
        self.steps = 0;
    }

    /// Advance one frame in the next update, also while paused.
    pub fn step(&mut self) {
        self.steps += 1;
    }

    /// The frame the replay is at (the next one to simulate).
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// One past the last recorded frame.
    pub fn end_frame(&self) -> Frame {
        self.end_frame
    }

    /// The first state whose checksum differed from the recorded one.
    pub fn first_mismatch(&self) -> Option<&ReplayMismatch> {
        self.first_mismatch.as_ref()
    }

    /// Recorded checksums that matched so far.
    pub fn checksums_verified(&self) -> u64 {
        self.verified
    }

    /// Why the last seek failed, if it did.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

/// Before the frame advances: pause, speed, seek and steps asked for.
pub(crate) fn apply_replay_control<I: Input + Send + Sync + 'static>(
    world: &mut World,
    session: &mut RtcPlaySession<I>,
) {
    let RtcPlaySession::Replay(replay) = session else {
        return;
    };
    let Some(mut control) = world.get_resource_mut::<ReplayControl>() else {
        return;
    };
    if control.paused {
        replay.pause();
    } else {
        replay.play();
    }
    replay.set_speed(control.speed);
    control.speed = replay.speed();
    let seek = control.seek.take();
    let steps = std::mem::take(&mut control.steps);
    if let Some(frame) = seek {
        match replay.seek(frame) {
            Ok(requests) => carry_out(world, session, requests),
            Err(e) => {
                tracing::warn!("rtcplay: replay: {e}");
                world.resource_mut::<ReplayControl>().last_error = Some(e.to_string());
            }
        }
    }
    for _ in 0..steps {
        let RtcPlaySession::Replay(replay) = session else {
            return;
        };
        let requests = replay.step();
        carry_out(world, session, requests);
    }
}

/// After the frame advanced: where the replay is, and its events as messages.
pub(crate) fn publish_replay_state<I: Input + Send + Sync + 'static>(
    world: &mut World,
    session: &mut RtcPlaySession<I>,
) {
    let RtcPlaySession::Replay(replay) = session else {
        return;
    };
    for e in replay.events() {
        world.write_message(RtcPlayEvent::Replay(e));
    }
    if let Some(mut control) = world.get_resource_mut::<ReplayControl>() {
        control.frame = replay.current_frame();
        control.end_frame = replay.end_frame();
        control.verified = replay.checksums_verified();
        if control.first_mismatch.is_none() {
            control.first_mismatch = replay.first_mismatch().cloned();
        }
    }
}

/// Where a recording stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RecordingState {
    /// No session yet.
    Waiting,
    Recording,
    Finished,
    Failed(String),
}

/// Records the match of the session that drives the app as a replay: insert it
/// before (or together with) the session, e.g. next to
/// [`RtcPlayConnect`](crate::RtcPlayConnect). Bytes are written every update
/// as frames are confirmed (a crash leaves a file that plays up to its last
/// ~2 s); an app that exits with `AppExit` ends the file cleanly. Play it with
/// [`RtcPlaySession::replay_file`].
#[derive(Resource, Debug)]
pub struct RtcPlayRecording {
    build: String,
    #[cfg(not(target_arch = "wasm32"))]
    file: Option<(std::path::PathBuf, Option<std::fs::File>)>,
    memory: Vec<u8>,
    written: u64,
    state: RecordingState,
}

impl RtcPlayRecording {
    /// Record into a file at `path` (created, or replaced). `build` is the
    /// game's version string: a replay plays only in the same build.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_file(path: impl Into<std::path::PathBuf>, build: &str) -> Self {
        RtcPlayRecording {
            file: Some((path.into(), None)),
            ..Self::in_memory(build)
        }
    }

    /// Record into memory ([`bytes`](Self::bytes)), e.g. in a browser.
    pub fn in_memory(build: &str) -> Self {
        RtcPlayRecording {
            build: build.to_string(),
            #[cfg(not(target_arch = "wasm32"))]
            file: None,
            memory: Vec::new(),
            written: 0,
            state: RecordingState::Waiting,
        }
    }

    /// The file recorded into, if any.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn path(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// The replay so far, when recording into memory.
    pub fn bytes(&self) -> &[u8] {
        &self.memory
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Whether the session's match is being recorded now.
    pub fn is_recording(&self) -> bool {
        self.state == RecordingState::Recording
    }

    /// Whether the recording ended (the app exited or the session went away).
    pub fn is_finished(&self) -> bool {
        self.state == RecordingState::Finished
    }

    /// Why recording stopped or never started (the session began before the
    /// recording was inserted; the file could not be written).
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            RecordingState::Failed(why) => Some(why),
            _ => None,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.written += bytes.len() as u64;
        #[cfg(not(target_arch = "wasm32"))]
        if let Some((path, file)) = &mut self.file {
            use std::io::Write;
            let written = match file {
                Some(f) => f.write_all(bytes),
                None => std::fs::File::create(&*path).and_then(|mut f| {
                    let r = f.write_all(bytes);
                    *file = Some(f);
                    r
                }),
            };
            if let Err(e) = written {
                let why = format!("cannot write the replay to {}: {e}", path.display());
                tracing::error!("rtcplay: {why}");
                self.state = RecordingState::Failed(why);
            }
            return;
        }
        self.memory.extend_from_slice(bytes);
    }
}

/// Starts recording a new session, and writes what it recorded.
pub(crate) fn record_replay<I: Input + Send + Sync + 'static>(world: &mut World) {
    if !world.contains_resource::<RtcPlayRecording>() {
        return;
    }
    world.resource_scope(|world, mut recording: Mut<RtcPlayRecording>| {
        let Some(mut session) = world.get_resource_mut::<RtcPlaySession<I>>() else {
            if recording.state == RecordingState::Recording {
                recording.state = RecordingState::Finished;
            }
            return;
        };
        if recording.state == RecordingState::Waiting {
            match session.start_recording(&recording.build) {
                Ok(()) => recording.state = RecordingState::Recording,
                Err(e) => {
                    tracing::error!("rtcplay: cannot record this match: {e}");
                    recording.state = RecordingState::Failed(e.to_string());
                }
            }
        }
        if recording.state == RecordingState::Recording {
            let bytes = session.take_replay_bytes();
            recording.write(&bytes);
        }
    });
}

/// An app that exits ends its recording cleanly.
pub(crate) fn finish_recording_on_exit<I: Input + Send + Sync + 'static>(
    mut exits: MessageReader<AppExit>,
    recording: Option<ResMut<RtcPlayRecording>>,
    session: Option<ResMut<RtcPlaySession<I>>>,
) {
    if exits.read().next().is_none() {
        return;
    }
    let (Some(mut recording), Some(mut session)) = (recording, session) else {
        return;
    };
    if recording.state == RecordingState::Recording {
        session.finish_recording();
        let bytes = session.take_replay_bytes();
        recording.write(&bytes);
        if recording.state == RecordingState::Recording {
            recording.state = RecordingState::Finished;
        }
    }
}
