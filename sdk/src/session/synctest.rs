//! The sync-test session: catches non-determinism on one machine by re-simulating
//! the last frames every frame and comparing checksums.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use super::builder::{PlayerType, SessionConfig};
use super::replay::{checksum_spacing, Recording, ReplayHeader};
use super::{
    decode_input, encode_input, Checksum, Frame, Input, InputStatus, PlayerHandle, Request,
    SessionError,
};

/// Every frame: advance, save; then load the state `check_distance` frames back and
/// re-simulate up to the present, saving again. The game reports a checksum for
/// every save; a frame whose checksums differ is returned as
/// [`SessionError::MismatchedChecksum`], naming the parts that differ.
pub struct SyncTestSession<I> {
    config: SessionConfig,
    check_distance: u32,
    current_frame: Frame,
    /// Inputs by frame (encoded), all players.
    inputs: BTreeMap<Frame, Vec<Vec<u8>>>,
    pending: Vec<Option<Vec<u8>>>,
    /// First checksum reported for each frame.
    checksums: BTreeMap<Frame, Checksum>,
    mismatch: Option<SessionError>,
    recording: Option<Recording>,
    _input: PhantomData<fn() -> I>,
}

impl<I: Input> SyncTestSession<I> {
    pub(crate) fn new(config: SessionConfig, check_distance: u32) -> Self {
        SyncTestSession {
            pending: vec![None; config.num_players],
            config,
            check_distance,
            current_frame: 0,
            inputs: BTreeMap::new(),
            checksums: BTreeMap::new(),
            mismatch: None,
            recording: None,
            _input: PhantomData,
        }
    }

    /// The frame the next advance simulates.
    pub fn current_frame(&self) -> Frame {
        self.current_frame
    }

    /// The session's configuration (tick rate, players, ...).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// How many frames back each frame is re-simulated from.
    pub fn check_distance(&self) -> u32 {
        self.check_distance
    }

    /// Number of players (all local).
    pub fn num_players(&self) -> usize {
        self.config.num_players
    }

    /// Give player `handle`'s input for the current frame.
    pub fn add_local_input(&mut self, handle: PlayerHandle, input: I) -> Result<(), SessionError> {
        let slot = self
            .pending
            .get_mut(handle)
            .ok_or(SessionError::NotLocalPlayer(handle))?;
        *slot = Some(encode_input(&input)?);
        Ok(())
    }

    /// Report the checksum of the state saved for `frame`.
    pub fn report_checksum(&mut self, frame: Frame, checksum: Checksum) {
        match self.checksums.get(&frame) {
            None => {
                if let Some(recording) = &mut self.recording {
                    recording.record_checksum(frame, &checksum);
                }
                self.checksums.insert(frame, checksum);
            }
            Some(first) if first.total != checksum.total && self.mismatch.is_none() => {
                let values: Vec<u64> = checksum.parts.iter().map(|(_, v)| *v).collect();
                self.mismatch = Some(SessionError::MismatchedChecksum {
                    frame,
                    original: first.total,
                    resimulated: checksum.total,
                    parts: first.differing_parts(&values),
                });
            }
            Some(_) => {}
        }
    }

    /// Advance one frame, with a full re-simulation of the last `check_distance`.
    /// Returns the mismatch found among the checksums reported so far, if any.
    pub fn advance_frame(&mut self) -> Result<Vec<Request<I>>, SessionError> {
        if let Some(err) = self.mismatch.take() {
            return Err(err);
        }
        let inputs = self
            .pending
            .iter_mut()
            .enumerate()
            .map(|(h, slot)| slot.take().ok_or(SessionError::MissingLocalInput(h)))
            .collect::<Result<Vec<_>, _>>()?;
        let frame = self.current_frame;
        if let Some(recorder) = self.recording.as_mut().and_then(Recording::recorder) {
            recorder.record_frame(inputs.iter().map(Vec::as_slice));
        }
        self.inputs.insert(frame, inputs);
        let mut requests = Vec::new();
        if frame == 0 {
            requests.push(Request::Save { frame });
        }
        requests.push(Request::Advance {
            frame,
            inputs: self.decoded(frame),
        });
        // The first computation of `frame + 1`: re-simulations are compared with it.
        requests.push(Request::Save { frame: frame + 1 });
        self.current_frame += 1;
        if self.current_frame > self.check_distance {
            let from = self.current_frame - self.check_distance;
            requests.push(Request::Load { frame: from });
            for f in from..self.current_frame {
                requests.push(Request::Advance {
                    frame: f,
                    inputs: self.decoded(f),
                });
                requests.push(Request::Save { frame: f + 1 });
            }
        }
        let keep = self.current_frame.saturating_sub(self.check_distance + 2);
        self.inputs.retain(|f, _| *f >= keep);
        self.checksums.retain(|f, _| *f >= keep);
        Ok(requests)
    }

    /// Record the frames played from now on as a replay (see
    /// [`replay`](super::replay)); call before the first frame. `build` is the
    /// game's version string.
    pub fn start_recording(&mut self, build: &str) -> Result<(), SessionError> {
        if self.current_frame != 0 {
            return Err(SessionError::RecordingTooLate(self.current_frame));
        }
        let players = vec![PlayerType::Local; self.config.num_players];
        let header = ReplayHeader {
            checksum_spacing: checksum_spacing(1, self.config.fps),
            ..ReplayHeader::starting::<I>(build, self.config.fps, players)
        };
        self.recording = Some(Recording::started(&header));
        Ok(())
    }

    /// The replay bytes written since the last call: append them to the file.
    pub fn take_replay_bytes(&mut self) -> Vec<u8> {
        Recording::take_from(&mut self.recording)
    }

    /// End the replay (an end mark says it ended cleanly).
    pub fn finish_recording(&mut self) {
        Recording::finish_in(&mut self.recording);
    }

    fn decoded(&self, frame: Frame) -> Vec<(I, InputStatus)> {
        self.inputs
            .get(&frame)
            .map(|all| {
                all.iter()
                    .map(|b| (decode_input(b).unwrap_or_default(), InputStatus::Confirmed))
                    .collect()
            })
            .unwrap_or_default()
    }
}
