//! The session's datagram format: one compact datagram per remote peer per tick.
//!
//! ```text
//! byte 0      0xC0 | protocol version (4 bits)
//! bytes 1-2   session id (u16, little endian)
//! byte 3      flags: sync, ping, pong, advantage, inputs, extended, checksums, ack
//! [byte]      extended flags (when the extended flag is set): statuses, rejoin, donor
//! varint      sender's current frame
//! [zigzag]    ack: last frame of the receiver's inputs the sender holds, minus frame
//! [u16]       ping: sender's clock in ms (wrapping)
//! [u16 u16]   pong: echoed ping, ms the ping was held before this reply
//! [i8]        frame advantage of the sender
//! [u32]       rejoin: the sender is a fresh session of its players (this number
//!             names that session); set until it has caught up with the match
//! [inputs]    zigzag(start - frame), player count, then per player its runs
//! [statuses]  player count, then per player its absences: a count, then per
//!             absence varint first frame, varint 0 (still away) or 1 + the frame
//!             from which its inputs count again
//! [checksums] count, then per report zigzag(frame - frame), epoch u8, u64 total, parts
//! ```
//!
//! The donor flag (no payload) asks the receiver to send the sender the game state
//! it rejoins with.
//!
//! Varints are LEB128; zigzag maps small signed deltas to small unsigned ones. Every
//! field is bounds-checked: a decoder never trusts a length it read.

use super::absence::{self, Absence, MAX_ABSENCES};
use super::Frame;

/// The session protocol version carried in every datagram.
pub const PROTOCOL_VERSION: u8 = 2;
const MAGIC: u8 = 0xC0;

/// Largest datagram the decoder accepts.
pub const MAX_DATAGRAM_SIZE: usize = 1200;
/// Most frames of one player's input a datagram may carry.
pub(crate) const MAX_FRAMES_PER_PLAYER: u32 = 128;
/// Most players a datagram may describe.
pub(crate) const MAX_PLAYERS: usize = 16;
/// Most named parts one checksum report may carry.
pub(crate) const MAX_CHECKSUM_PARTS: usize = 64;

const F_SYNC: u8 = 1;
const F_PING: u8 = 1 << 1;
const F_PONG: u8 = 1 << 2;
const F_ADVANTAGE: u8 = 1 << 3;
const F_INPUTS: u8 = 1 << 4;
const F_EXTENDED: u8 = 1 << 5;
const F_CHECKSUMS: u8 = 1 << 6;
const F_ACK: u8 = 1 << 7;
const X_STATUSES: u8 = 1;
const X_REJOIN: u8 = 1 << 1;
const X_DONOR: u8 = 1 << 2;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// It ended before a field was complete.
    #[error("datagram truncated")]
    Truncated,
    /// It is larger than [`MAX_DATAGRAM_SIZE`].
    #[error("datagram larger than {MAX_DATAGRAM_SIZE} bytes")]
    TooLarge,
    /// The first byte is not an rtcplay session datagram.
    #[error("not an rtcplay session datagram")]
    NotSession,
    /// A different protocol version.
    #[error("protocol version {0}, expected {PROTOCOL_VERSION}")]
    Version(u8),
    /// A different session id.
    #[error("datagram of session {0:#06x}")]
    WrongSession(u16),
    /// A field holds a value outside its allowed range.
    #[error("malformed field: {0}")]
    Malformed(&'static str),
    /// Bytes remain after the last field.
    #[error("trailing bytes")]
    Trailing,
}

/// A run of consecutive frames of one player's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Run {
    /// `count` frames equal to the input before the run.
    Repeat(u32),
    /// `count` frames of this encoded input.
    Literal(u32, Vec<u8>),
    /// `count` frames of an input that differs from the previous one only at the
    /// bytes named by `mask` (one bit per byte); `bytes` are the new values there.
    Delta(u32, Vec<u8>, Vec<u8>),
    /// `count` frames in which the player was disconnected.
    Disconnected(u32),
}

impl Run {
    pub(crate) fn count(&self) -> u32 {
        match self {
            Run::Repeat(n) | Run::Literal(n, _) | Run::Delta(n, _, _) | Run::Disconnected(n) => *n,
        }
    }
}

/// Inputs of several players, all starting at `start`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct InputBlock {
    pub start: Frame,
    pub players: Vec<Vec<Run>>,
}

/// A checksum of one confirmed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChecksumReport {
    pub frame: Frame,
    /// Digest of the connection statuses the frame was computed under.
    pub epoch: u8,
    pub total: u64,
    pub parts: Vec<u64>,
}

/// An answer to a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pong {
    pub echo: u16,
    pub held_ms: u16,
}

/// One session datagram, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Datagram {
    pub sync: bool,
    pub frame: Frame,
    pub ack: Option<Frame>,
    pub ping: Option<u16>,
    pub pong: Option<Pong>,
    pub advantage: Option<i8>,
    pub inputs: Option<InputBlock>,
    /// Per player: its absences (empty: never away). Empty when nobody ever left.
    pub statuses: Vec<Vec<Absence>>,
    /// The sender is a fresh session rejoining the match (its number).
    pub rejoin: Option<u32>,
    /// The sender asks the receiver for the state it rejoins with.
    pub donor: bool,
    pub checksums: Vec<ChecksumReport>,
}

impl Datagram {
    /// Append the encoded datagram to `out`.
    pub(crate) fn encode(&self, session: u16, out: &mut Vec<u8>) {
        let mut flags = 0;
        let mut set = |on: bool, bit: u8| {
            if on {
                flags |= bit;
            }
        };
        set(self.sync, F_SYNC);
        set(self.ping.is_some(), F_PING);
        set(self.pong.is_some(), F_PONG);
        set(self.advantage.is_some(), F_ADVANTAGE);
        set(self.inputs.is_some(), F_INPUTS);
        let mut extended = 0;
        if !self.statuses.is_empty() {
            extended |= X_STATUSES;
        }
        if self.rejoin.is_some() {
            extended |= X_REJOIN;
        }
        if self.donor {
            extended |= X_DONOR;
        }
        set(extended != 0, F_EXTENDED);
        set(!self.checksums.is_empty(), F_CHECKSUMS);
        set(self.ack.is_some(), F_ACK);
        out.push(MAGIC | PROTOCOL_VERSION);
        out.extend_from_slice(&session.to_le_bytes());
        out.push(flags);
        if extended != 0 {
            out.push(extended);
        }
        put_varint(out, u64::from(self.frame));
        if let Some(ack) = self.ack {
            put_delta(out, ack, self.frame);
        }
        if let Some(ping) = self.ping {
            out.extend_from_slice(&ping.to_le_bytes());
        }
        if let Some(pong) = self.pong {
            out.extend_from_slice(&pong.echo.to_le_bytes());
            out.extend_from_slice(&pong.held_ms.to_le_bytes());
        }
        if let Some(adv) = self.advantage {
            out.push(adv as u8);
        }
        if let Some(nonce) = self.rejoin {
            out.extend_from_slice(&nonce.to_le_bytes());
        }
        if let Some(block) = &self.inputs {
            put_delta(out, block.start, self.frame);
            put_varint(out, block.players.len() as u64);
            for runs in &block.players {
                put_varint(out, runs.len() as u64);
                for run in runs {
                    encode_run(run, out);
                }
            }
        }
        if !self.statuses.is_empty() {
            put_varint(out, self.statuses.len() as u64);
            for list in &self.statuses {
                put_varint(out, list.len() as u64);
                for a in list {
                    put_varint(out, u64::from(a.from));
                    put_varint(out, a.until.map_or(0, |f| u64::from(f) + 1));
                }
            }
        }
        if !self.checksums.is_empty() {
            put_varint(out, self.checksums.len() as u64);
            for report in &self.checksums {
                put_delta(out, report.frame, self.frame);
                out.push(report.epoch);
                out.extend_from_slice(&report.total.to_le_bytes());
                put_varint(out, report.parts.len() as u64);
                for part in &report.parts {
                    out.extend_from_slice(&part.to_le_bytes());
                }
            }
        }
    }

    /// Decode a datagram of session `session`, rejecting anything malformed.
    pub(crate) fn decode(
        bytes: &[u8],
        session: u16,
        max_input_size: usize,
    ) -> Result<Datagram, DatagramError> {
        if bytes.len() > MAX_DATAGRAM_SIZE {
            return Err(DatagramError::TooLarge);
        }
        let mut r = Reader { bytes, pos: 0 };
        r.header(MAGIC, PROTOCOL_VERSION, session)?;
        let flags = r.u8()?;
        let extended = if flags & F_EXTENDED != 0 {
            match r.u8()? {
                0 => return Err(DatagramError::Malformed("empty extended flags")),
                x if x & !(X_STATUSES | X_REJOIN | X_DONOR) != 0 => {
                    return Err(DatagramError::Malformed("unknown extended flags"))
                }
                x => x,
            }
        } else {
            0
        };
        let frame = r.frame()?;
        let mut d = Datagram {
            sync: flags & F_SYNC != 0,
            frame,
            donor: extended & X_DONOR != 0,
            ..Datagram::default()
        };
        if flags & F_ACK != 0 {
            d.ack = Some(r.delta(frame)?);
        }
        if flags & F_PING != 0 {
            d.ping = Some(r.u16()?);
        }
        if flags & F_PONG != 0 {
            d.pong = Some(Pong {
                echo: r.u16()?,
                held_ms: r.u16()?,
            });
        }
        if flags & F_ADVANTAGE != 0 {
            d.advantage = Some(r.u8()? as i8);
        }
        if extended & X_REJOIN != 0 {
            let b = r.take(4)?;
            d.rejoin = Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        if flags & F_INPUTS != 0 {
            let start = r.delta(frame)?;
            let n = r.len(MAX_PLAYERS, "player count")?;
            let mut players = Vec::with_capacity(n);
            for _ in 0..n {
                let runs = r.len(MAX_FRAMES_PER_PLAYER as usize, "run count")?;
                let mut total = 0u32;
                let mut list = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let run = decode_run(&mut r, max_input_size)?;
                    total += run.count();
                    if total > MAX_FRAMES_PER_PLAYER {
                        return Err(DatagramError::Malformed("too many frames"));
                    }
                    list.push(run);
                }
                players.push(list);
            }
            start
                .checked_add(MAX_FRAMES_PER_PLAYER)
                .ok_or(DatagramError::Malformed("input frame"))?;
            d.inputs = Some(InputBlock { start, players });
        }
        if extended & X_STATUSES != 0 {
            let n = r.len(MAX_PLAYERS, "status count")?;
            if n == 0 {
                return Err(DatagramError::Malformed("status count"));
            }
            for _ in 0..n {
                let count = r.len(MAX_ABSENCES, "absence count")?;
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    let from = r.frame()?;
                    let until = match r.varint()? {
                        0 => None,
                        v => Some(
                            Frame::try_from(v - 1)
                                .map_err(|_| DatagramError::Malformed("absence end"))?,
                        ),
                    };
                    list.push(Absence { from, until });
                }
                if !absence::is_valid(&list) {
                    return Err(DatagramError::Malformed("absences"));
                }
                d.statuses.push(list);
            }
        }
        if flags & F_CHECKSUMS != 0 {
            let n = r.len(8, "checksum count")?;
            for _ in 0..n {
                let frame = r.delta(frame)?;
                let epoch = r.u8()?;
                let total = r.u64()?;
                let parts_len = r.len(MAX_CHECKSUM_PARTS, "checksum parts")?;
                let mut parts = Vec::with_capacity(parts_len);
                for _ in 0..parts_len {
                    parts.push(r.u64()?);
                }
                d.checksums.push(ChecksumReport {
                    frame,
                    epoch,
                    total,
                    parts,
                });
            }
        }
        if r.pos != bytes.len() {
            return Err(DatagramError::Trailing);
        }
        Ok(d)
    }
}

const RUN_REPEAT: u64 = 0;
const RUN_LITERAL: u64 = 1;
const RUN_DELTA: u64 = 2;
const RUN_DISCONNECTED: u64 = 3;

fn encode_run(run: &Run, out: &mut Vec<u8>) {
    let tagged = |count: u32, tag: u64| (u64::from(count) << 2) | tag;
    match run {
        Run::Repeat(n) => put_varint(out, tagged(*n, RUN_REPEAT)),
        Run::Disconnected(n) => put_varint(out, tagged(*n, RUN_DISCONNECTED)),
        Run::Literal(n, bytes) => {
            put_varint(out, tagged(*n, RUN_LITERAL));
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Run::Delta(n, mask, bytes) => {
            // The mask length is implied by the previous input's length.
            put_varint(out, tagged(*n, RUN_DELTA));
            put_varint(out, mask.len() as u64);
            out.extend_from_slice(mask);
            out.extend_from_slice(bytes);
        }
    }
}

fn decode_run(r: &mut Reader<'_>, max_input_size: usize) -> Result<Run, DatagramError> {
    let v = r.varint()?;
    let count = u32::try_from(v >> 2).map_err(|_| DatagramError::Malformed("run length"))?;
    if count == 0 || count > MAX_FRAMES_PER_PLAYER {
        return Err(DatagramError::Malformed("run length"));
    }
    Ok(match v & 3 {
        RUN_REPEAT => Run::Repeat(count),
        RUN_DISCONNECTED => Run::Disconnected(count),
        RUN_LITERAL => {
            let len = r.len(max_input_size, "input size")?;
            Run::Literal(count, r.take(len)?.to_vec())
        }
        _ => {
            let mask_len = r.len(max_input_size.div_ceil(8), "delta mask")?;
            let mask = r.take(mask_len)?.to_vec();
            let changed: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
            Run::Delta(count, mask, r.take(changed)?.to_vec())
        }
    })
}

/// Encode `next` relative to `prev`: a delta when few bytes differ, else a literal.
pub(crate) fn encode_change(count: u32, prev: Option<&[u8]>, next: &[u8]) -> Run {
    match prev {
        Some(prev) if prev == next => Run::Repeat(count),
        Some(prev) if prev.len() == next.len() => {
            let mut mask = vec![0u8; next.len().div_ceil(8)];
            let mut bytes = Vec::new();
            for (i, (a, b)) in prev.iter().zip(next).enumerate() {
                if a != b {
                    mask[i / 8] |= 1 << (i % 8);
                    bytes.push(*b);
                }
            }
            if mask.len() + bytes.len() < next.len() + 1 {
                Run::Delta(count, mask, bytes)
            } else {
                Run::Literal(count, next.to_vec())
            }
        }
        _ => Run::Literal(count, next.to_vec()),
    }
}

/// Rebuild the input a run describes from the input before it.
/// `None` when the run needs a previous input that is missing or does not fit.
pub(crate) fn apply_change(run: &Run, prev: Option<&[u8]>) -> Option<Vec<u8>> {
    match run {
        Run::Literal(_, bytes) => Some(bytes.clone()),
        Run::Repeat(_) => prev.map(<[u8]>::to_vec),
        Run::Delta(_, mask, bytes) => {
            let prev = prev?;
            if mask.len() != prev.len().div_ceil(8) {
                return None;
            }
            let mut out = prev.to_vec();
            let mut changed = bytes.iter();
            for (i, slot) in out.iter_mut().enumerate() {
                if mask[i / 8] & (1 << (i % 8)) != 0 {
                    *slot = *changed.next()?;
                }
            }
            // Mask bits beyond the input's length are malformed.
            changed.next().is_none().then_some(out)
        }
        Run::Disconnected(_) => None,
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_delta(out: &mut Vec<u8>, value: Frame, base: Frame) {
    let d = i64::from(value) - i64::from(base);
    put_varint(out, ((d << 1) ^ (d >> 63)) as u64);
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    /// Everything not read yet (then nothing is left).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos = self.bytes.len();
        rest
    }
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }
    /// The first three bytes of every datagram: `magic | version`, then the
    /// session id.
    pub(crate) fn header(
        &mut self,
        magic: u8,
        version: u8,
        session: u16,
    ) -> Result<(), DatagramError> {
        let head = self.u8()?;
        if head & 0xF0 != magic {
            return Err(DatagramError::NotSession);
        }
        if head & 0x0F != version {
            return Err(DatagramError::Version(head & 0x0F));
        }
        let id = self.u16()?;
        if id != session {
            return Err(DatagramError::WrongSession(id));
        }
        Ok(())
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DatagramError> {
        let end = self.pos.checked_add(n).ok_or(DatagramError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(DatagramError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DatagramError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, DatagramError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DatagramError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn varint(&mut self) -> Result<u64, DatagramError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DatagramError::Malformed("varint"))
    }
    fn len(&mut self, max: usize, what: &'static str) -> Result<usize, DatagramError> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|n| *n <= max)
            .ok_or(DatagramError::Malformed(what))
    }
    pub(crate) fn frame(&mut self) -> Result<Frame, DatagramError> {
        Frame::try_from(self.varint()?).map_err(|_| DatagramError::Malformed("frame"))
    }
    fn delta(&mut self, base: Frame) -> Result<Frame, DatagramError> {
        let z = self.varint()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Frame::try_from(i64::from(base) + d).map_err(|_| DatagramError::Malformed("frame delta"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Datagram {
        Datagram {
            sync: false,
            frame: 70_000,
            ack: Some(69_995),
            ping: Some(513),
            pong: Some(Pong {
                echo: 500,
                held_ms: 3,
            }),
            advantage: Some(-2),
            inputs: Some(InputBlock {
                start: 69_990,
                players: vec![vec![
                    Run::Repeat(3),
                    Run::Delta(2, vec![0b10], vec![9]),
                    Run::Literal(1, vec![1, 2, 3]),
                    Run::Disconnected(4),
                ]],
            }),
            statuses: vec![
                vec![],
                vec![
                    Absence {
                        from: 1234,
                        until: Some(1400),
                    },
                    Absence {
                        from: 2000,
                        until: None,
                    },
                ],
            ],
            rejoin: Some(0xDEAD_BEEF),
            donor: true,
            checksums: vec![ChecksumReport {
                frame: 69_960,
                epoch: 7,
                total: u64::MAX - 1,
                parts: vec![1, 2],
            }],
        }
    }

    #[test]
    fn round_trip() {
        let d = sample();
        let mut buf = Vec::new();
        d.encode(0xBEEF, &mut buf);
        assert_eq!(Datagram::decode(&buf, 0xBEEF, 64), Ok(d));
    }

    #[test]
    fn typical_tick_datagram_is_small() {
        let d = Datagram {
            frame: 9_000,
            ack: Some(8_996),
            inputs: Some(InputBlock {
                start: 9_001,
                players: vec![vec![Run::Repeat(5)]],
            }),
            ..Datagram::default()
        };
        let mut buf = Vec::new();
        d.encode(1, &mut buf);
        // header 4, frame 2, ack 1, start 1, players 1, runs 1, run 1.
        assert!(buf.len() <= 12, "{} bytes", buf.len());
    }

    #[test]
    fn rejects_other_sessions_versions_and_garbage() {
        let mut buf = Vec::new();
        sample().encode(5, &mut buf);
        assert_eq!(
            Datagram::decode(&buf, 6, 64),
            Err(DatagramError::WrongSession(5))
        );
        let mut old = buf.clone();
        old[0] = MAGIC | 1;
        assert_eq!(
            Datagram::decode(&old, 5, 64),
            Err(DatagramError::Version(1))
        );
        for cut in 0..buf.len() {
            assert!(Datagram::decode(&buf[..cut], 5, 64).is_err());
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(Datagram::decode(&long, 5, 64), Err(DatagramError::Trailing));
        assert_eq!(
            Datagram::decode(&[0u8; 2000], 5, 64),
            Err(DatagramError::TooLarge)
        );
    }

    #[test]
    fn oversized_inputs_are_rejected() {
        let d = Datagram {
            inputs: Some(InputBlock {
                start: 0,
                players: vec![vec![Run::Literal(1, vec![0; 100])]],
            }),
            ..Datagram::default()
        };
        let mut buf = Vec::new();
        d.encode(1, &mut buf);
        assert!(Datagram::decode(&buf, 1, 99).is_err());
        assert!(Datagram::decode(&buf, 1, 100).is_ok());
    }

    #[test]
    fn changes_encode_compactly_and_rebuild() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut b = a;
        b[6] = 70;
        let run = encode_change(2, Some(&a), &b);
        assert!(matches!(run, Run::Delta(2, _, _)));
        assert_eq!(apply_change(&run, Some(&a)).as_deref(), Some(&b[..]));
        let c = [9u8; 8];
        let run = encode_change(1, Some(&a), &c);
        assert_eq!(run, Run::Literal(1, c.to_vec()));
        assert_eq!(encode_change(4, Some(&a), &a), Run::Repeat(4));
        assert_eq!(apply_change(&Run::Repeat(1), None), None);
        // A delta whose mask does not fit the previous input is refused.
        assert_eq!(
            apply_change(&Run::Delta(1, vec![1, 1], vec![0, 0]), Some(&a)),
            None
        );
    }
}
