//! The replay file: what it holds and how it is laid out (format version 1).
//!
//! A replay is written as a stream of records, each complete on its own, so a
//! file cut off anywhere (the game crashed mid-match) still reads up to its last
//! whole record. Little endian; varints are LEB128 as in the session's datagrams.
//!
//! ```text
//! file      magic "RTCPLAY" 0x1A, format version (u16), then records
//! record    varint body length, body, check (u32: low half of the 64-bit FNV-1a
//!           digest of the body)
//! body      kind (u8), then its fields:
//! 1 header  (first record, once) build string, input type name, varint fps,
//!           varint players, per player: seat (u8: 0 local, 1 remote, 2 vacant),
//!           varint start frame, varint checksum spacing, u8 has-state, then
//!           (if 1) the initial state: varint length, bytes
//! 2 inputs  varint first frame (the next frame not yet recorded), varint frame
//!           count n, per player: varint run count, per run: varint frames,
//!           varint length, the encoded input (the runs cover exactly n frames)
//! 3 absent  u8 player, u8 count (≤ 4), per absence: varint first frame, varint
//!           (frame it ended + 1, or 0 while open). Replaces that player's list.
//! 4 names   varint count, per name: string (names of checksum parts)
//! 5 sum     varint frame, u64 total, varint count, count × u64 part values (in
//!           the order of the last names record)
//! 6 end     varint frame: the recording ended cleanly here
//! string    varint length, UTF-8 bytes
//! ```

use std::collections::BTreeMap;

use super::super::absence::{self, Absence, Absences};
use super::super::input_queue::InputQueue;
use super::super::protocol::{put_varint, DatagramError, Reader, MAX_CHECKSUM_PARTS, MAX_PLAYERS};
use super::super::state_transfer::state_digest;
use super::super::{decode_input, Checksum, Frame, Input, InputStatus, PlayerType};
use crate::datagram::PeerId;

/// The first eight bytes of every replay file.
pub const REPLAY_MAGIC: [u8; 8] = *b"RTCPLAY\x1a";
/// The replay format this build writes and reads.
pub const REPLAY_FORMAT_VERSION: u16 = 1;

pub(super) const KIND_HEADER: u8 = 1;
pub(super) const KIND_INPUTS: u8 = 2;
pub(super) const KIND_ABSENT: u8 = 3;
pub(super) const KIND_NAMES: u8 = 4;
pub(super) const KIND_SUM: u8 = 5;
pub(super) const KIND_END: u8 = 6;

/// Longest build string or input type name.
const MAX_NAME: usize = 256;
/// Most frames one inputs record may hold.
const MAX_FRAMES_PER_RECORD: u64 = 1 << 20;

/// Why a replay cannot be read or played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The bytes do not start like a replay file.
    #[error("not an rtcplay replay (the file does not start with the replay marker)")]
    NotAReplay,
    /// Written in a format version this build does not read.
    #[error("replay format version {found}; this build reads version {REPLAY_FORMAT_VERSION}")]
    UnsupportedVersion {
        /// The file's version.
        found: u16,
    },
    /// The file ends before its header is complete.
    #[error("the replay ends inside its header ({0} bytes): nothing to play")]
    Truncated(usize),
    /// A record's bytes do not match its check: the file was damaged.
    #[error("the replay is damaged at byte {offset} (a record fails its check); frames up to {valid_until} are intact")]
    Corrupt {
        /// Where the damaged record starts.
        offset: usize,
        /// Frames before this one were read from intact records.
        valid_until: Frame,
    },
    /// A record passed its check but holds impossible values.
    #[error("malformed replay at byte {offset}: {what}")]
    Malformed {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Recorded by a game with another input type.
    #[error("this replay is of input type `{found}`, the game plays `{expected}`")]
    WrongInputType {
        /// The game's input type.
        expected: String,
        /// The file's.
        found: String,
    },
    /// Recorded by another build of the game (the simulation may differ).
    #[error("this replay was recorded by build `{found}`, this is build `{expected}`")]
    WrongBuild {
        /// The running game's build string.
        expected: String,
        /// The file's.
        found: String,
    },
    /// A seek beyond the recorded frames, or backwards without a kept state.
    #[error("cannot seek to frame {frame}: {why}")]
    CannotSeek {
        /// The frame asked for.
        frame: Frame,
        /// Why not.
        why: &'static str,
    },
}

/// What a replay says about the match it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayHeader {
    /// The game's own version string (given when recording): a replay plays only
    /// in the same build, as another build may simulate differently.
    pub build: String,
    /// `std::any::type_name` of the game's input type.
    pub input_type: String,
    /// Frames per second of the match.
    pub fps: u32,
    /// Each seat as the recording peer saw it at the start (peer ids are not
    /// kept: remote seats read back as `Remote(PeerId(0))`).
    pub players: Vec<PlayerType>,
    /// The first recorded frame (0, or where a rejoining player's state began).
    pub start_frame: Frame,
    /// Frames between recorded checksums (a multiple of the session's
    /// `checksum_interval`); 0 when none are recorded.
    pub checksum_spacing: Frame,
    /// The game state at `start_frame` when the match did not start from the
    /// game's initial state (a rejoined player's recording).
    pub initial_state: Option<Vec<u8>>,
}

impl ReplayHeader {
    /// A header for a game with input type `I` recorded from frame 0, without
    /// checksums; the caller sets what differs.
    pub(crate) fn starting<I: Input>(build: &str, fps: u32, players: Vec<PlayerType>) -> Self {
        ReplayHeader {
            build: build.to_string(),
            input_type: std::any::type_name::<I>().to_string(),
            fps,
            players,
            start_frame: 0,
            checksum_spacing: 0,
            initial_state: None,
        }
    }
}

/// The low half of the FNV-1a digest: each record's check.
pub(super) fn record_check(body: &[u8]) -> u32 {
    state_digest(body) as u32
}

/// Append one record with `body` to `out`.
pub(super) fn put_record(out: &mut Vec<u8>, body: &[u8]) {
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
    out.extend_from_slice(&record_check(body).to_le_bytes());
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_NAME)];
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

impl ReplayHeader {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = REPLAY_MAGIC.to_vec();
        out.extend_from_slice(&REPLAY_FORMAT_VERSION.to_le_bytes());
        let mut body = vec![KIND_HEADER];
        put_str(&mut body, &self.build);
        put_str(&mut body, &self.input_type);
        put_varint(&mut body, u64::from(self.fps));
        put_varint(&mut body, self.players.len() as u64);
        for p in &self.players {
            body.push(match p {
                PlayerType::Local => 0,
                PlayerType::Remote(_) => 1,
                PlayerType::Vacant => 2,
            });
        }
        put_varint(&mut body, u64::from(self.start_frame));
        put_varint(&mut body, u64::from(self.checksum_spacing));
        match &self.initial_state {
            Some(state) => {
                body.push(1);
                put_varint(&mut body, state.len() as u64);
                body.extend_from_slice(state);
            }
            None => body.push(0),
        }
        put_record(&mut out, &body);
        out
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DatagramError> {
        let build = read_str(r)?;
        let input_type = read_str(r)?;
        let fps = u32::try_from(r.varint()?)
            .ok()
            .filter(|f| (1..=1000).contains(f))
            .ok_or(DatagramError::Malformed("fps"))?;
        let n = r.varint()?;
        if n == 0 || n > MAX_PLAYERS as u64 {
            return Err(DatagramError::Malformed("player count"));
        }
        let players = (0..n)
            .map(|_| match r.u8()? {
                0 => Ok(PlayerType::Local),
                1 => Ok(PlayerType::Remote(PeerId(0))),
                2 => Ok(PlayerType::Vacant),
                _ => Err(DatagramError::Malformed("seat")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let start_frame = r.frame()?;
        let checksum_spacing = r.frame()?;
        let initial_state = match r.u8()? {
            0 => None,
            1 => {
                let len = usize::try_from(r.varint()?)
                    .map_err(|_| DatagramError::Malformed("state length"))?;
                Some(r.take(len)?.to_vec())
            }
            _ => return Err(DatagramError::Malformed("state flag")),
        };
        Ok(ReplayHeader {
            build,
            input_type,
            fps,
            players,
            start_frame,
            checksum_spacing,
            initial_state,
        })
    }
}

fn read_str(r: &mut Reader<'_>) -> Result<String, DatagramError> {
    let len = r.varint()?;
    if len > MAX_NAME as u64 {
        return Err(DatagramError::Malformed("string length"));
    }
    let bytes = r.take(len as usize)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| DatagramError::Malformed("string"))
}

/// A replay read into memory: every recorded input, absence and checksum.
#[derive(Debug, Clone)]
pub struct Replay {
    header: ReplayHeader,
    inputs: Vec<InputQueue>,
    absences: Vec<Absences>,
    checksums: BTreeMap<Frame, Checksum>,
    /// Frames `start_frame..end` have every player's input.
    end: Frame,
    /// An end record was read: the recording stopped cleanly.
    complete: bool,
    /// Bytes after the last whole record (a recording cut off mid-write).
    trailing: usize,
}

/// One record's place in the file, for errors.
struct At {
    offset: usize,
}

impl At {
    fn malformed(&self, e: DatagramError) -> ReplayError {
        ReplayError::Malformed {
            offset: self.offset,
            what: match e {
                DatagramError::Malformed(what) => what,
                _ => "a record's fields end before the record does",
            },
        }
    }
}

impl Replay {
    /// Read a replay. A file cut off mid-record (a crash while recording) reads up
    /// to its last whole record ([`Replay::is_complete`] says whether it ended
    /// cleanly); a damaged or foreign file is an error.
    pub fn decode(bytes: &[u8]) -> Result<Replay, ReplayError> {
        if bytes.len() < REPLAY_MAGIC.len() || bytes[..REPLAY_MAGIC.len()] != REPLAY_MAGIC {
            return Err(ReplayError::NotAReplay);
        }
        let version = bytes
            .get(8..10)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
            .ok_or(ReplayError::Truncated(bytes.len()))?;
        if version != REPLAY_FORMAT_VERSION {
            return Err(ReplayError::UnsupportedVersion { found: version });
        }
        let mut pos = 10;
        let mut replay: Option<Replay> = None;
        let mut names: Vec<String> = Vec::new();
        loop {
            let at = At { offset: pos };
            let Some(record) = split_record(bytes, pos) else {
                break;
            };
            let valid_until = replay.as_ref().map_or(0, |r| r.end);
            if record_check(record.body) != record.check {
                return Err(ReplayError::Corrupt {
                    offset: pos,
                    valid_until,
                });
            }
            pos = record.next;
            let mut r = Reader::new(record.body);
            let kind = r.u8().map_err(|e| at.malformed(e))?;
            let Some(replay) = replay.as_mut() else {
                if kind != KIND_HEADER {
                    return Err(
                        at.malformed(DatagramError::Malformed("the header must come first"))
                    );
                }
                let header = ReplayHeader::decode(&mut r).map_err(|e| at.malformed(e))?;
                let n = header.players.len();
                replay = Some(Replay {
                    end: header.start_frame,
                    inputs: vec![InputQueue::empty_at(header.start_frame); n],
                    absences: vec![Absences::default(); n],
                    header,
                    checksums: BTreeMap::new(),
                    complete: false,
                    trailing: 0,
                });
                if !r.at_end() {
                    return Err(at.malformed(DatagramError::Trailing));
                }
                continue;
            };
            if replay.complete {
                return Err(at.malformed(DatagramError::Malformed("a record after the end")));
            }
            match kind {
                KIND_INPUTS => replay.read_inputs(&mut r),
                KIND_ABSENT => replay.read_absences(&mut r),
                KIND_NAMES => read_names(&mut r).map(|n| names = n),
                KIND_SUM => replay.read_checksum(&mut r, &names),
                KIND_END => r.frame().and_then(|f| {
                    if f == replay.end {
                        replay.complete = true;
                        Ok(())
                    } else {
                        Err(DatagramError::Malformed("end frame"))
                    }
                }),
                KIND_HEADER => Err(DatagramError::Malformed("a second header")),
                _ => Err(DatagramError::Malformed("record kind")),
            }
            .map_err(|e| at.malformed(e))?;
            if !r.at_end() {
                return Err(at.malformed(DatagramError::Trailing));
            }
        }
        let mut replay = replay.ok_or(ReplayError::Truncated(bytes.len()))?;
        replay.trailing = bytes.len() - pos;
        Ok(replay)
    }

    fn read_inputs(&mut self, r: &mut Reader<'_>) -> Result<(), DatagramError> {
        let first = r.frame()?;
        if first != self.end {
            return Err(DatagramError::Malformed("inputs not contiguous"));
        }
        let count = r.varint()?;
        if count == 0 || count > MAX_FRAMES_PER_RECORD {
            return Err(DatagramError::Malformed("frame count"));
        }
        let end = Frame::try_from(u64::from(first) + count)
            .map_err(|_| DatagramError::Malformed("frame count"))?;
        for q in &mut self.inputs {
            let runs = r.varint()?;
            if runs == 0 || runs > count {
                return Err(DatagramError::Malformed("run count"));
            }
            let mut covered = 0u64;
            for _ in 0..runs {
                let frames = r.varint()?;
                let len = r.varint()?;
                if frames == 0 || len > 64 * 1024 {
                    return Err(DatagramError::Malformed("run"));
                }
                covered += frames;
                if covered > count {
                    return Err(DatagramError::Malformed("runs exceed the record"));
                }
                let value = r.take(len as usize)?;
                q.push_run(value, frames as Frame);
            }
            if covered != count {
                return Err(DatagramError::Malformed("runs do not cover the record"));
            }
        }
        self.end = end;
        Ok(())
    }

    fn read_absences(&mut self, r: &mut Reader<'_>) -> Result<(), DatagramError> {
        let h = usize::from(r.u8()?);
        let n = r.u8()?;
        if h >= self.absences.len() || usize::from(n) > absence::MAX_ABSENCES {
            return Err(DatagramError::Malformed("absences"));
        }
        let mut list = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let from = r.frame()?;
            let until = match r.frame()? {
                0 => None,
                u => Some(u - 1),
            };
            list.push(Absence { from, until });
        }
        if !absence::is_valid(&list) {
            return Err(DatagramError::Malformed("absences"));
        }
        let new = Absences::from(list);
        // A departure learned late can move an absence earlier: states after the
        // first frame that now reads differently were recomputed by the session,
        // so their earlier checksums no longer hold.
        if let Some(changed) = first_difference(&self.absences[h], &new) {
            self.checksums.retain(|f, _| *f <= changed);
        }
        self.absences[h] = new;
        Ok(())
    }

    fn read_checksum(&mut self, r: &mut Reader<'_>, names: &[String]) -> Result<(), DatagramError> {
        let frame = r.frame()?;
        let total = r.u64()?;
        let n = r.varint()?;
        if n > MAX_CHECKSUM_PARTS as u64 {
            return Err(DatagramError::Malformed("part count"));
        }
        let mut parts = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let name = names.get(i).cloned().unwrap_or_else(|| format!("part {i}"));
            parts.push((name, r.u64()?));
        }
        self.checksums.insert(frame, Checksum { total, parts });
        Ok(())
    }

    /// What the file says about the match.
    pub fn header(&self) -> &ReplayHeader {
        &self.header
    }

    /// The first recorded frame.
    pub fn start_frame(&self) -> Frame {
        self.header.start_frame
    }

    /// One past the last frame with every input: the replay plays frames
    /// `start_frame()..end_frame()`.
    pub fn end_frame(&self) -> Frame {
        self.end
    }

    /// Whether the recording ended cleanly (false: the game stopped mid-match,
    /// e.g. crashed; everything up to [`end_frame`](Self::end_frame) still plays).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes after the last whole record (a recording cut off mid-write).
    pub fn trailing_bytes(&self) -> usize {
        self.trailing
    }

    /// The recorded checksum of the state at the start of `frame`, if any.
    pub fn checksum(&self, frame: Frame) -> Option<&Checksum> {
        self.checksums.get(&frame)
    }

    /// Frames with a recorded checksum, ascending.
    pub fn checksum_frames(&self) -> impl Iterator<Item = Frame> + '_ {
        self.checksums.keys().copied()
    }

    /// Check that this replay is of a game with input type `I` and build `build`.
    pub fn check_game<I: Input>(&self, build: &str) -> Result<(), ReplayError> {
        let expected = std::any::type_name::<I>();
        if self.header.input_type != expected {
            return Err(ReplayError::WrongInputType {
                expected: expected.to_string(),
                found: self.header.input_type.clone(),
            });
        }
        if self.header.build != build {
            return Err(ReplayError::WrongBuild {
                expected: build.to_string(),
                found: self.header.build.clone(),
            });
        }
        Ok(())
    }

    /// Every player's input of `frame`, as the recorded match simulated it
    /// (`Confirmed`, or `Disconnected` with the default input while a player was
    /// away); `None` outside the recorded frames.
    pub fn inputs<I: Input>(&self, frame: Frame) -> Option<Vec<(I, InputStatus)>> {
        if frame < self.header.start_frame || frame >= self.end {
            return None;
        }
        Some(
            self.inputs
                .iter()
                .zip(&self.absences)
                .map(|(q, away)| {
                    if away.contains(frame) {
                        return (I::default(), InputStatus::Disconnected);
                    }
                    let input = q.get(frame).and_then(decode_input).unwrap_or_default();
                    (input, InputStatus::Confirmed)
                })
                .collect(),
        )
    }
}

/// One record as laid out in the file.
struct RawRecord<'a> {
    body: &'a [u8],
    check: u32,
    /// Where the next record starts.
    next: usize,
}

/// The record at `pos`; `None` when the bytes end before the record does.
fn split_record(bytes: &[u8], pos: usize) -> Option<RawRecord<'_>> {
    let tail = bytes.get(pos..)?;
    let mut r = Reader::new(tail);
    let len = usize::try_from(r.varint().ok()?).ok()?;
    let head = tail.len() - r.rest().len();
    let body_end = head.checked_add(len)?;
    let body = tail.get(head..body_end)?;
    let check: [u8; 4] = tail
        .get(body_end..body_end.checked_add(4)?)?
        .try_into()
        .ok()?;
    Some(RawRecord {
        body,
        check: u32::from_le_bytes(check),
        next: pos + body_end + 4,
    })
}

fn read_names(r: &mut Reader<'_>) -> Result<Vec<String>, DatagramError> {
    let n = r.varint()?;
    if n > MAX_CHECKSUM_PARTS as u64 {
        return Err(DatagramError::Malformed("name count"));
    }
    (0..n).map(|_| read_str(r)).collect()
}

/// The first frame whose status differs between two absence lists.
fn first_difference(a: &Absences, b: &Absences) -> Option<Frame> {
    let mut edges: Vec<Frame> = a
        .as_slice()
        .iter()
        .chain(b.as_slice())
        .flat_map(|x| [Some(x.from), x.until])
        .flatten()
        .collect();
    edges.sort_unstable();
    edges.into_iter().find(|f| a.contains(*f) != b.contains(*f))
}
