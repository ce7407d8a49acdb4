//! Playing a replay back, sans-IO: the same save/load/advance requests as a live
//! session, driven by the game loop, with pause, step, speed and seek.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::marker::PhantomData;
use std::time::Duration;

use super::super::{Checksum, Frame, Input, Request, SessionError};
use super::format::{Replay, ReplayError};

/// Kept states at most; beyond, every other one is dropped and the spacing doubles.
const MAX_KEYFRAMES: usize = 512;
/// Slowest and fastest playback.
pub const MIN_SPEED: f32 = 0.25;
/// Fastest playback.
pub const MAX_SPEED: f32 = 8.0;

/// A recorded state whose checksum differs from the replayed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayMismatch {
    /// The frame whose state differs (the state at its start).
    pub frame: Frame,
    /// The checksum in the file.
    pub recorded: u64,
    /// The checksum the game computed now.
    pub replayed: u64,
    /// Names of the checksum parts that differ.
    pub parts: Vec<String>,
}

/// What happened during playback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEvent {
    /// The first state whose checksum differs from the recorded one: the game
    /// does not simulate this match as it did when it was recorded.
    Mismatch(ReplayMismatch),
    /// Playback reached the last recorded frame.
    Ended {
        /// The frame the state is at (one past the last simulated frame).
        frame: Frame,
    },
}

/// Plays a [`Replay`] through the game: each call returns the requests to carry
/// out, like [`P2PSession::advance_frame`](super::super::P2PSession::advance_frame).
///
/// - [`Request::Save`] comes for every frame whose checksum the file holds
///   (and before each `Export`): save the state, and for those frames report
///   its checksum with [`report_checksum`](Self::report_checksum) (see
///   [`wants_checksum`](Self::wants_checksum)); a difference is a
///   [`ReplayEvent::Mismatch`];
/// - [`Request::Export`] comes every few seconds of play: hand the serialized
///   state to [`export_state`](Self::export_state) and the session keeps it in
///   memory so [`seek`](Self::seek) can go back (a game that ignores these can
///   only seek forward);
/// - [`Request::Import`] restores such a state (a seek back, or a replay that
///   starts from a rejoined player's state);
/// - [`Request::Advance`] simulates a frame with the recorded inputs.
pub struct ReplaySession<I> {
    replay: Replay,
    current_frame: Frame,
    started: bool,
    paused: bool,
    speed: f32,
    keyframe_every: Frame,
    keyframes: BTreeMap<Frame, Vec<u8>>,
    export_requested: BTreeSet<Frame>,
    first_mismatch: Option<ReplayMismatch>,
    mismatches: u64,
    verified: u64,
    ended_reported: bool,
    events: VecDeque<ReplayEvent>,
    _input: PhantomData<fn() -> I>,
}

impl<I: Input> ReplaySession<I> {
    /// Play `replay` in a game whose build string is `build` (the one it was
    /// recorded with): another input type or build is an error.
    pub fn new(replay: Replay, build: &str) -> Result<Self, ReplayError> {
        replay.check_game::<I>(build)?;
        let fps = replay.header().fps;
        Ok(ReplaySession {
            current_frame: replay.start_frame(),
            replay,
            started: false,
            paused: false,
            speed: 1.0,
            keyframe_every: fps.saturating_mul(4).max(1),
            keyframes: BTreeMap::new(),
            export_requested: BTreeSet::new(),
            first_mismatch: None,
            mismatches: 0,
            verified: 0,
            ended_reported: false,
            events: VecDeque::new(),
            _input: PhantomData,
        })
    }

    /// Read and check a replay file's bytes (see [`Replay::decode`]).
    pub fn from_bytes(bytes: &[u8], build: &str) -> Result<Self, ReplayError> {
        Self::new(Replay::decode(bytes)?, build)
    }

    /// The replay being played.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Players in the recorded match.
    pub fn num_players(&self) -> usize {
        self.replay.header().players.len()
    }

    /// The frame the next step simulates.
    pub fn current_frame(&self) -> Frame {
        self.current_frame
    }

    /// One past the last recorded frame.
    pub fn end_frame(&self) -> Frame {
        self.replay.end_frame()
    }

    /// Whether every recorded frame was played.
    pub fn is_finished(&self) -> bool {
        self.current_frame >= self.replay.end_frame()
    }

    /// Whether playback is paused ([`advance_frame`](Self::advance_frame) does
    /// nothing; [`step`](Self::step) and [`seek`](Self::seek) still work).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Pause playback.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resume playback.
    pub fn play(&mut self) {
        self.paused = false;
    }

    /// The playback speed (1.0: as recorded).
    pub fn speed(&self) -> f32 {
        self.speed
    }

    /// Set the playback speed, clamped to [`MIN_SPEED`]`..=`[`MAX_SPEED`].
    pub fn set_speed(&mut self, speed: f32) {
        self.speed = if speed.is_nan() {
            1.0
        } else {
            speed.clamp(MIN_SPEED, MAX_SPEED)
        };
    }

    /// One recorded frame.
    pub fn nominal_frame_duration(&self) -> Duration {
        Duration::from_secs(1) / self.replay.header().fps
    }

    /// How long the game loop waits between [`advance_frame`](Self::advance_frame)
    /// calls at the current speed.
    pub fn frame_duration(&self) -> Duration {
        self.nominal_frame_duration().div_f32(self.speed)
    }

    /// Checksums that matched the recorded ones so far.
    pub fn checksums_verified(&self) -> u64 {
        self.verified
    }

    /// Checksums that differed.
    pub fn checksum_mismatches(&self) -> u64 {
        self.mismatches
    }

    /// The first difference found, if any.
    pub fn first_mismatch(&self) -> Option<&ReplayMismatch> {
        self.first_mismatch.as_ref()
    }

    /// Events since the last call.
    pub fn events(&mut self) -> impl Iterator<Item = ReplayEvent> + '_ {
        self.events.drain(..)
    }

    /// Whether the file holds a checksum for the state at the start of `frame`
    /// (the game then reports one on that frame's `Save`).
    pub fn wants_checksum(&self, frame: Frame) -> bool {
        self.replay.checksum(frame).is_some()
    }

    /// The next frame's requests, unless paused or at the end.
    pub fn advance_frame(&mut self) -> Vec<Request<I>> {
        if self.paused {
            return Vec::new();
        }
        self.step()
    }

    /// The next frame's requests, also while paused (empty at the end).
    pub fn step(&mut self) -> Vec<Request<I>> {
        let mut requests = Vec::new();
        self.start(&mut requests);
        self.one_frame(&mut requests);
        requests
    }

    /// The requests that bring the game to the state at the start of `frame`:
    /// forward from here, or from the nearest kept state before it.
    pub fn seek(&mut self, frame: Frame) -> Result<Vec<Request<I>>, ReplayError> {
        let (start, end) = (self.replay.start_frame(), self.replay.end_frame());
        if frame < start || frame > end {
            return Err(ReplayError::CannotSeek {
                frame,
                why: "outside the recorded frames",
            });
        }
        let mut requests = Vec::new();
        self.start(&mut requests);
        let kept = self.keyframes.range(..=frame).next_back();
        let from_here = frame >= self.current_frame;
        match kept {
            Some((&k, state)) if !from_here || k > self.current_frame => {
                requests.push(Request::Import {
                    frame: k,
                    state: state.clone(),
                });
                self.current_frame = k;
            }
            _ if from_here => {}
            _ => {
                return Err(ReplayError::CannotSeek {
                    frame,
                    why: "no kept state at or before it (the game did not answer Export requests)",
                })
            }
        }
        if frame < end {
            self.ended_reported = false;
        }
        while self.current_frame < frame {
            self.one_frame(&mut requests);
        }
        Ok(requests)
    }

    /// Answer a [`Request::Export`]: `state` is the game's serialized state at
    /// the start of `frame`. Kept in memory for seeking back.
    pub fn export_state(&mut self, frame: Frame, state: Vec<u8>) -> Result<(), SessionError> {
        if !self.export_requested.remove(&frame) {
            return Err(SessionError::StateNotRequested(frame));
        }
        self.keyframes.insert(frame, state);
        if self.keyframes.len() > MAX_KEYFRAMES {
            self.keyframe_every = self.keyframe_every.saturating_mul(2);
            let start = self.replay.start_frame();
            let every = self.keyframe_every;
            self.keyframes
                .retain(|f, _| (f - start).is_multiple_of(every));
        }
        Ok(())
    }

    /// Report the checksum of the state saved for `frame`; compared with the
    /// recorded one.
    pub fn report_checksum(&mut self, frame: Frame, checksum: Checksum) {
        let Some(recorded) = self.replay.checksum(frame) else {
            return;
        };
        if recorded.total == checksum.total {
            self.verified += 1;
            return;
        }
        self.mismatches += 1;
        if self.first_mismatch.is_none() {
            let values: Vec<u64> = checksum.parts.iter().map(|(_, v)| *v).collect();
            let mismatch = ReplayMismatch {
                frame,
                recorded: recorded.total,
                replayed: checksum.total,
                parts: recorded.differing_parts(&values),
            };
            self.first_mismatch = Some(mismatch.clone());
            self.events.push_back(ReplayEvent::Mismatch(mismatch));
        }
    }

    /// A replay that starts from a state (a rejoined player's) imports it first.
    fn start(&mut self, requests: &mut Vec<Request<I>>) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(state) = &self.replay.header().initial_state {
            requests.push(Request::Import {
                frame: self.replay.start_frame(),
                state: state.clone(),
            });
        }
    }

    fn one_frame(&mut self, requests: &mut Vec<Request<I>>) {
        let frame = self.current_frame;
        let Some(inputs) = self.replay.inputs::<I>(frame) else {
            if !self.ended_reported {
                self.ended_reported = true;
                self.events.push_back(ReplayEvent::Ended { frame });
            }
            return;
        };
        let due = (frame - self.replay.start_frame()).is_multiple_of(self.keyframe_every)
            && !self.keyframes.contains_key(&frame);
        if due || self.wants_checksum(frame) {
            requests.push(Request::Save { frame });
        }
        if due {
            self.export_requested.insert(frame);
            requests.push(Request::Export { frame });
        }
        requests.push(Request::Advance { frame, inputs });
        self.current_frame += 1;
        if self.current_frame >= self.replay.end_frame() && !self.ended_reported {
            self.ended_reported = true;
            self.events.push_back(ReplayEvent::Ended {
                frame: self.current_frame,
            });
        }
    }
}
