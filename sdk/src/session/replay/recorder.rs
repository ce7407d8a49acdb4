//! Writing a replay as the match is confirmed, sans-IO: the recorder produces
//! bytes; the game appends them to a file.

use super::super::absence::Absence;
use super::super::protocol::put_varint;
use super::super::{Checksum, Frame};
use super::format::{
    put_record, put_str, ReplayHeader, KIND_ABSENT, KIND_END, KIND_INPUTS, KIND_NAMES, KIND_SUM,
};

/// Seconds of play between inputs records: a crash loses at most this much of
/// the file's end.
const FLUSH_SECONDS: u32 = 2;
/// Seconds of play between recorded checksums (rounded up to a multiple of the
/// session's checksum interval).
const CHECKSUM_SECONDS: u32 = 2;

/// Frames between recorded checksums for a session that checks every
/// `interval` frames at `fps` (0: no checksums).
pub(crate) fn checksum_spacing(interval: Frame, fps: u32) -> Frame {
    if interval == 0 {
        return 0;
    }
    let want = fps.saturating_mul(CHECKSUM_SECONDS).max(1);
    want.div_ceil(interval).saturating_mul(interval)
}

/// Records one match: the frames handed to it (contiguous), absence lists when
/// they change, and the checksums at the recorded spacing.
#[derive(Debug)]
pub(crate) struct ReplayRecorder {
    /// Bytes not yet taken by the game.
    out: Vec<u8>,
    next_frame: Frame,
    /// Per player, the runs not yet written, starting at `pending_from`.
    pending: Vec<PendingRuns>,
    pending_from: Frame,
    flush_every: Frame,
    absences: Vec<Vec<Absence>>,
    names: Vec<String>,
    spacing: Frame,
    /// Frames whose checksum was written lately (no frame is written twice).
    recorded_sums: std::collections::BTreeSet<Frame>,
    finished: bool,
}

impl ReplayRecorder {
    /// Start a replay with `header`; its bytes are the first ones taken.
    pub(crate) fn new(header: &ReplayHeader) -> Self {
        let n = header.players.len();
        ReplayRecorder {
            out: header.encode(),
            next_frame: header.start_frame,
            pending: (0..n).map(|_| PendingRuns::default()).collect(),
            pending_from: header.start_frame,
            flush_every: header.fps.saturating_mul(FLUSH_SECONDS).max(1),
            absences: vec![Vec::new(); n],
            names: Vec::new(),
            spacing: header.checksum_spacing,
            recorded_sums: std::collections::BTreeSet::new(),
            finished: false,
        }
    }

    /// The next frame to record.
    pub(crate) fn next_frame(&self) -> Frame {
        self.next_frame
    }

    /// Record the inputs of the next frame, one per player in handle order (for
    /// a player away, any placeholder: its absence list says it was away).
    pub(crate) fn record_frame<'a>(&mut self, inputs: impl Iterator<Item = &'a [u8]>) {
        if self.finished {
            return;
        }
        for (runs, input) in self.pending.iter_mut().zip(inputs) {
            runs.push(input);
        }
        self.next_frame += 1;
        if self.next_frame - self.pending_from >= self.flush_every {
            self.flush();
        }
    }

    /// Record the next `frames` frames at once: per player, its held runs
    /// (frames, input) from the next frame on; frames its runs do not cover
    /// (a player away, without placeholders) are recorded as `missing`.
    pub(crate) fn record_span<'a, R>(
        &mut self,
        frames: Frame,
        players: impl Iterator<Item = R>,
        missing: &[u8],
    ) where
        R: Iterator<Item = (Frame, &'a [u8])>,
    {
        if self.finished || frames == 0 {
            return;
        }
        for (pending, runs) in self.pending.iter_mut().zip(players) {
            let mut covered = 0;
            for (n, input) in runs {
                let n = n.min(frames - covered);
                pending.push_many(input, n);
                covered += n;
            }
            pending.push_many(missing, frames - covered);
        }
        self.next_frame += frames;
        if self.next_frame - self.pending_from >= self.flush_every {
            self.flush();
        }
    }

    /// Record player `h`'s absences if they changed since last recorded.
    pub(crate) fn record_absences(&mut self, h: usize, list: &[Absence]) {
        if self.finished || self.absences.get(h).is_none_or(|a| a.as_slice() == list) {
            return;
        }
        self.absences[h] = list.to_vec();
        let mut body = vec![KIND_ABSENT, h as u8, list.len() as u8];
        for a in list {
            put_varint(&mut body, u64::from(a.from));
            put_varint(&mut body, a.until.map_or(0, |u| u64::from(u) + 1));
        }
        put_record(&mut self.out, &body);
    }

    /// Record the final checksum of the state at the start of `frame`, if it
    /// falls on the recorded spacing.
    pub(crate) fn record_checksum(&mut self, frame: Frame, checksum: &Checksum) {
        if self.spacing == 0 || !frame.is_multiple_of(self.spacing) {
            return;
        }
        self.record_checksum_always(frame, checksum);
    }

    /// Record the checksum of `frame` off the spacing (a frame that desynced).
    pub(crate) fn record_checksum_always(&mut self, frame: Frame, checksum: &Checksum) {
        if self.finished || self.recorded_sums.contains(&frame) {
            return;
        }
        self.recorded_sums.insert(frame);
        if self.recorded_sums.len() > 64 {
            self.recorded_sums.pop_first();
        }
        let names = checksum.parts.iter().map(|(n, _)| n);
        if !names.clone().eq(self.names.iter()) {
            self.names = names.cloned().collect();
            let mut body = vec![KIND_NAMES];
            put_varint(&mut body, self.names.len() as u64);
            for n in &self.names {
                put_str(&mut body, n);
            }
            put_record(&mut self.out, &body);
        }
        let mut body = vec![KIND_SUM];
        put_varint(&mut body, u64::from(frame));
        body.extend_from_slice(&checksum.total.to_le_bytes());
        put_varint(&mut body, checksum.parts.len() as u64);
        for (_, v) in &checksum.parts {
            body.extend_from_slice(&v.to_le_bytes());
        }
        put_record(&mut self.out, &body);
    }

    /// Write the frames recorded so far as one record.
    pub(crate) fn flush(&mut self) {
        let count = self.next_frame - self.pending_from;
        if count == 0 {
            return;
        }
        let mut body = vec![KIND_INPUTS];
        put_varint(&mut body, u64::from(self.pending_from));
        put_varint(&mut body, u64::from(count));
        for runs in &mut self.pending {
            runs.close_run();
            put_varint(&mut body, runs.runs);
            body.extend_from_slice(&runs.encoded);
            runs.encoded.clear();
            runs.runs = 0;
        }
        put_record(&mut self.out, &body);
        self.pending_from = self.next_frame;
    }

    /// Write what is pending and the end mark; nothing is recorded after.
    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.flush();
        let mut body = vec![KIND_END];
        put_varint(&mut body, u64::from(self.next_frame));
        put_record(&mut self.out, &body);
        self.finished = true;
    }

    /// The bytes written since the last call.
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// One player's frames since the last inputs record, encoded as they come (no
/// allocation per frame once the buffers have grown).
#[derive(Debug, Default)]
struct PendingRuns {
    /// Finished runs: varint frames, varint length, input.
    encoded: Vec<u8>,
    runs: u64,
    /// The open run: its input and frames so far.
    last: Vec<u8>,
    count: u32,
}

impl PendingRuns {
    fn push(&mut self, input: &[u8]) {
        self.push_many(input, 1);
    }

    fn push_many(&mut self, input: &[u8], frames: u32) {
        if frames == 0 {
            return;
        }
        if self.count > 0 && self.last == input {
            self.count += frames;
            return;
        }
        self.close_run();
        self.last.clear();
        self.last.extend_from_slice(input);
        self.count = frames;
    }

    fn close_run(&mut self) {
        if self.count == 0 {
            return;
        }
        put_varint(&mut self.encoded, u64::from(self.count));
        put_varint(&mut self.encoded, self.last.len() as u64);
        self.encoded.extend_from_slice(&self.last);
        self.runs += 1;
        self.count = 0;
    }
}

/// A session's replay: waiting for the state it starts from (a rejoining
/// session), or being written.
#[derive(Debug)]
pub(crate) enum Recording {
    Waiting(String),
    Active(ReplayRecorder),
}

impl Recording {
    pub(crate) fn waiting(build: &str) -> Self {
        Recording::Waiting(build.to_string())
    }

    pub(crate) fn started(header: &ReplayHeader) -> Self {
        Recording::Active(ReplayRecorder::new(header))
    }

    /// The build string a waiting recording will use.
    pub(crate) fn build(&self) -> &str {
        match self {
            Recording::Waiting(build) => build,
            Recording::Active(_) => "",
        }
    }

    /// Start writing with `header` (a waiting recording only).
    pub(crate) fn begin(&mut self, header: &ReplayHeader) {
        if matches!(self, Recording::Waiting(_)) {
            *self = Recording::started(header);
        }
    }

    pub(crate) fn recorder(&mut self) -> Option<&mut ReplayRecorder> {
        match self {
            Recording::Active(r) => Some(r),
            Recording::Waiting(_) => None,
        }
    }

    pub(crate) fn record_checksum(&mut self, frame: Frame, checksum: &Checksum) {
        if let Some(r) = self.recorder() {
            r.record_checksum(frame, checksum);
        }
    }

    pub(crate) fn record_checksum_always(&mut self, frame: Frame, checksum: &Checksum) {
        if let Some(r) = self.recorder() {
            r.record_checksum_always(frame, checksum);
        }
    }

    pub(crate) fn finish(&mut self) {
        if let Some(r) = self.recorder() {
            r.finish();
        }
    }

    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        self.recorder()
            .map(ReplayRecorder::take_bytes)
            .unwrap_or_default()
    }

    /// A session's `take_replay_bytes`.
    pub(crate) fn take_from(recording: &mut Option<Recording>) -> Vec<u8> {
        recording
            .as_mut()
            .map(Recording::take_bytes)
            .unwrap_or_default()
    }

    /// A session's `finish_recording` (after any frames it still had to hand over).
    pub(crate) fn finish_in(recording: &mut Option<Recording>) {
        if let Some(recording) = recording {
            recording.finish();
        }
    }
}
