//! Moving one game state — opaque bytes — from one peer to another over the same
//! unreliable datagrams the session uses, sans-IO. The layer a rejoining player's
//! state travels on (see `docs/session.md`, "State transfer").
//!
//! - the sender cuts the bytes into chunks of at most [`CHUNK_SIZE`], announces
//!   them with an offer (frame, length, a 64-bit digest of the whole), and keeps
//!   up to [`WINDOW`] chunks in flight beyond the first missing one, resending a
//!   chunk after `resend_after` without an acknowledgement;
//! - the receiver acknowledges what it holds (everything below a cumulative index
//!   plus a bitmap of the next 64), allocates only after a valid offer no larger
//!   than its limit, checks every chunk's index and length and the digest of the
//!   whole before it hands the state over;
//! - resumable: an offer of the same state (same frame, length and digest) from
//!   another sender keeps the chunks already received; an offer of another state
//!   starts over.
//!
//! Datagram layout (little endian; varints as in the session's datagrams):
//!
//! ```text
//! byte 0      0xD0 | version (4 bits)
//! bytes 1-2   session id (u16)
//! byte 3      kind: 1 offer, 2 chunk, 3 ack
//! bytes 4-11  digest of the whole state (u64): names the transfer
//! offer       varint frame, varint length
//! chunk       varint index, then the chunk's bytes to the end
//! ack         varint cumulative (every chunk below it is held), u64 bitmap
//!             (bit i: chunk cumulative + 1 + i is held)
//! ```

use std::time::Duration;

use super::protocol::{put_varint, DatagramError, Reader, MAX_DATAGRAM_SIZE};
use super::Frame;

/// Version of the transfer datagrams.
pub const TRANSFER_VERSION: u8 = 1;
const MAGIC: u8 = 0xD0;

/// Largest chunk payload (a chunk datagram stays well under the session's
/// datagram limit).
pub const CHUNK_SIZE: usize = 1024;
/// Chunks in flight beyond the first one the receiver lacks.
pub const WINDOW: u32 = 64;
/// Most datagrams one [`StateSender::poll`] returns.
pub const BURST: usize = 8;

const KIND_OFFER: u8 = 1;
const KIND_CHUNK: u8 = 2;
const KIND_ACK: u8 = 3;

/// 64-bit FNV-1a: names a state and catches a damaged reassembly.
pub fn state_digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One transfer datagram, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferMessage<'a> {
    /// Sender → receiver: a state of `len` bytes for `frame` is coming.
    Offer {
        /// Digest of the whole state.
        digest: u64,
        /// The frame the state belongs to.
        frame: Frame,
        /// Its length in bytes.
        len: u32,
    },
    /// Sender → receiver: chunk `index` of the state `digest`.
    Chunk {
        /// Digest of the whole state.
        digest: u64,
        /// Chunk number.
        index: u32,
        /// Its bytes.
        bytes: &'a [u8],
    },
    /// Receiver → sender: what it holds of the state `digest`.
    Ack {
        /// Digest of the whole state.
        digest: u64,
        /// Every chunk below this is held.
        cumulative: u32,
        /// Bit i: chunk `cumulative + 1 + i` is held.
        bitmap: u64,
    },
}

/// Whether `bytes` looks like a transfer datagram (its first byte); the session
/// tells them from its own datagrams by this.
pub fn is_transfer_datagram(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b & 0xF0 == MAGIC)
}

impl<'a> TransferMessage<'a> {
    /// Encode for session `session_id`.
    pub fn encode(&self, session_id: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.push(MAGIC | TRANSFER_VERSION);
        out.extend_from_slice(&session_id.to_le_bytes());
        let (kind, digest) = match self {
            TransferMessage::Offer { digest, .. } => (KIND_OFFER, digest),
            TransferMessage::Chunk { digest, .. } => (KIND_CHUNK, digest),
            TransferMessage::Ack { digest, .. } => (KIND_ACK, digest),
        };
        out.push(kind);
        out.extend_from_slice(&digest.to_le_bytes());
        match self {
            TransferMessage::Offer { frame, len, .. } => {
                put_varint(&mut out, u64::from(*frame));
                put_varint(&mut out, u64::from(*len));
            }
            TransferMessage::Chunk { index, bytes, .. } => {
                put_varint(&mut out, u64::from(*index));
                out.extend_from_slice(bytes);
            }
            TransferMessage::Ack {
                cumulative, bitmap, ..
            } => {
                put_varint(&mut out, u64::from(*cumulative));
                out.extend_from_slice(&bitmap.to_le_bytes());
            }
        }
        out
    }

    /// Decode a datagram of session `session_id`. Never trusts a length it read.
    pub fn decode(bytes: &'a [u8], session_id: u16) -> Result<Self, DatagramError> {
        if bytes.len() > MAX_DATAGRAM_SIZE {
            return Err(DatagramError::TooLarge);
        }
        let mut r = Reader::new(bytes);
        r.header(MAGIC, TRANSFER_VERSION, session_id)?;
        let kind = r.u8()?;
        let digest = r.u64()?;
        let message = match kind {
            KIND_OFFER => TransferMessage::Offer {
                digest,
                frame: r.frame()?,
                len: u32::try_from(r.varint()?)
                    .map_err(|_| DatagramError::Malformed("state length"))?,
            },
            KIND_CHUNK => {
                let index = u32::try_from(r.varint()?)
                    .map_err(|_| DatagramError::Malformed("chunk index"))?;
                let bytes = r.rest();
                if bytes.is_empty() || bytes.len() > CHUNK_SIZE {
                    return Err(DatagramError::Malformed("chunk length"));
                }
                TransferMessage::Chunk {
                    digest,
                    index,
                    bytes,
                }
            }
            KIND_ACK => TransferMessage::Ack {
                digest,
                cumulative: u32::try_from(r.varint()?)
                    .map_err(|_| DatagramError::Malformed("ack index"))?,
                bitmap: r.u64()?,
            },
            _ => return Err(DatagramError::Malformed("transfer kind")),
        };
        if !r.at_end() {
            return Err(DatagramError::Trailing);
        }
        Ok(message)
    }
}

/// Chunks of a state of `len` bytes.
fn chunk_count(len: usize) -> u32 {
    u32::try_from(len.div_ceil(CHUNK_SIZE)).unwrap_or(u32::MAX)
}

/// The sending side of one state transfer.
#[derive(Debug)]
pub struct StateSender {
    frame: Frame,
    data: Vec<u8>,
    digest: u64,
    chunks: u32,
    /// Per chunk: held by the receiver.
    held: Vec<bool>,
    /// Per chunk: when it was last sent.
    sent_at: Vec<Option<Duration>>,
    /// Every chunk below this is held.
    cumulative: u32,
    /// The receiver has acknowledged something (it knows the offer).
    heard: bool,
    last_offer: Option<Duration>,
    resend_after: Duration,
}

impl StateSender {
    /// Send `data`, the state of `frame`; an unacknowledged chunk (or offer) is sent
    /// again after `resend_after` (e.g. twice the round trip, at least 50 ms).
    /// `None` if `data` is empty or longer than `u32::MAX` bytes.
    pub fn new(frame: Frame, data: Vec<u8>, resend_after: Duration) -> Option<Self> {
        if data.is_empty() || u32::try_from(data.len()).is_err() {
            return None;
        }
        let chunks = chunk_count(data.len());
        let n = chunks as usize;
        Some(StateSender {
            frame,
            digest: state_digest(&data),
            data,
            chunks,
            held: vec![false; n],
            sent_at: vec![None; n],
            cumulative: 0,
            heard: false,
            last_offer: None,
            resend_after,
        })
    }

    /// Digest of the state being sent.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Change the resend timeout (when the round trip estimate changes).
    pub fn set_resend_after(&mut self, resend_after: Duration) {
        self.resend_after = resend_after;
    }

    /// Chunks the receiver holds, and the total.
    pub fn progress(&self) -> (u32, u32) {
        let held = self.held.iter().filter(|h| **h).count();
        (u32::try_from(held).unwrap_or(u32::MAX), self.chunks)
    }

    /// The receiver holds everything.
    pub fn is_done(&self) -> bool {
        self.cumulative >= self.chunks
    }

    fn due(&self, at: Option<Duration>, now: Duration) -> bool {
        at.is_none_or(|t| now.saturating_sub(t) >= self.resend_after)
    }

    /// Datagrams to send now (at most [`BURST`]): the offer until the receiver
    /// has answered, then chunks of the window that are unsent or overdue.
    pub fn poll(&mut self, now: Duration, session_id: u16, out: &mut Vec<Vec<u8>>) {
        if self.is_done() {
            return;
        }
        let mut budget = BURST;
        if !self.heard && self.due(self.last_offer, now) {
            self.last_offer = Some(now);
            out.push(
                TransferMessage::Offer {
                    digest: self.digest,
                    frame: self.frame,
                    len: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
                }
                .encode(session_id),
            );
            budget -= 1;
        }
        let end = self.cumulative.saturating_add(WINDOW).min(self.chunks);
        for index in self.cumulative..end {
            if budget == 0 {
                break;
            }
            let i = index as usize;
            if self.held[i] || !self.due(self.sent_at[i], now) {
                continue;
            }
            self.sent_at[i] = Some(now);
            let start = i * CHUNK_SIZE;
            let bytes = &self.data[start..(start + CHUNK_SIZE).min(self.data.len())];
            out.push(
                TransferMessage::Chunk {
                    digest: self.digest,
                    index,
                    bytes,
                }
                .encode(session_id),
            );
            budget -= 1;
        }
    }

    /// An acknowledgement from the receiver. Acks of another transfer, or that
    /// claim chunks that do not exist, are errors (drop and count them).
    pub fn on_ack(&mut self, message: &TransferMessage<'_>) -> Result<(), DatagramError> {
        let TransferMessage::Ack {
            digest,
            cumulative,
            bitmap,
        } = *message
        else {
            return Err(DatagramError::Malformed("not an ack"));
        };
        if digest != self.digest {
            return Err(DatagramError::Malformed("ack of another transfer"));
        }
        if cumulative > self.chunks {
            return Err(DatagramError::Malformed("ack beyond the last chunk"));
        }
        self.heard = true;
        for i in self.cumulative..cumulative {
            self.held[i as usize] = true;
        }
        self.cumulative = self.cumulative.max(cumulative);
        for bit in 0..64u32 {
            if bitmap & (1 << bit) == 0 {
                continue;
            }
            let index = u64::from(cumulative) + 1 + u64::from(bit);
            if let Some(held) = usize::try_from(index)
                .ok()
                .and_then(|i| self.held.get_mut(i))
            {
                *held = true;
            }
        }
        while self.cumulative < self.chunks && self.held[self.cumulative as usize] {
            self.cumulative += 1;
        }
        Ok(())
    }
}

/// The state being received.
#[derive(Debug)]
struct Incoming {
    digest: u64,
    frame: Frame,
    len: usize,
    buffer: Vec<u8>,
    held: Vec<bool>,
    cumulative: u32,
}

/// The receiving side of state transfers.
#[derive(Debug)]
pub struct StateReceiver {
    max_len: usize,
    incoming: Option<Incoming>,
    ack_due: bool,
    complete: Option<(Frame, Vec<u8>)>,
}

impl StateReceiver {
    /// Accept states of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        StateReceiver {
            max_len,
            incoming: None,
            ack_due: false,
            complete: None,
        }
    }

    /// Chunks held, and the total (zero before an offer).
    pub fn progress(&self) -> (u32, u32) {
        self.incoming.as_ref().map_or((0, 0), |s| {
            let held = s.held.iter().filter(|h| **h).count();
            (u32::try_from(held).unwrap_or(u32::MAX), chunk_count(s.len))
        })
    }

    /// An offer or a chunk from the sender. Errors mean the datagram was dropped
    /// (count them); nothing already received is lost.
    pub fn on_message(&mut self, message: &TransferMessage<'_>) -> Result<(), DatagramError> {
        match *message {
            TransferMessage::Offer { digest, frame, len } => {
                let len = len as usize;
                if len == 0 || len > self.max_len {
                    return Err(DatagramError::Malformed("offered state too large"));
                }
                let same = self
                    .incoming
                    .as_ref()
                    .is_some_and(|s| s.digest == digest && s.frame == frame && s.len == len);
                if !same {
                    // Another state: start over (a state of the same identity keeps
                    // its chunks, whoever sends it now).
                    self.incoming = Some(Incoming {
                        digest,
                        frame,
                        len,
                        buffer: vec![0; len],
                        held: vec![false; chunk_count(len) as usize],
                        cumulative: 0,
                    });
                    self.complete = None;
                }
                self.ack_due = true;
                Ok(())
            }
            TransferMessage::Chunk {
                digest,
                index,
                bytes,
            } => {
                let Some(state) = self.incoming.as_mut().filter(|s| s.digest == digest) else {
                    return Err(DatagramError::Malformed("chunk of an unknown transfer"));
                };
                let i = index as usize;
                let start = i.checked_mul(CHUNK_SIZE).filter(|s| *s < state.len);
                let Some(start) = start else {
                    return Err(DatagramError::Malformed("chunk index"));
                };
                let expected = CHUNK_SIZE.min(state.len - start);
                if bytes.len() != expected {
                    return Err(DatagramError::Malformed("chunk length"));
                }
                self.ack_due = true;
                if state.held[i] {
                    return Ok(()); // a repeat: acknowledge again
                }
                state.buffer[start..start + expected].copy_from_slice(bytes);
                state.held[i] = true;
                while (state.cumulative as usize) < state.held.len()
                    && state.held[state.cumulative as usize]
                {
                    state.cumulative += 1;
                }
                if state.cumulative as usize == state.held.len() {
                    if state_digest(&state.buffer) != state.digest {
                        // Damaged (or a sender lying about its digest): start over.
                        state.held.iter_mut().for_each(|h| *h = false);
                        state.cumulative = 0;
                        return Err(DatagramError::Malformed("state digest mismatch"));
                    }
                    self.complete = Some((state.frame, state.buffer.clone()));
                }
                Ok(())
            }
            TransferMessage::Ack { .. } => Err(DatagramError::Malformed("ack to the receiver")),
        }
    }

    /// The acknowledgement to send, if something arrived since the last one.
    pub fn poll(&mut self, session_id: u16, out: &mut Vec<Vec<u8>>) {
        if !self.ack_due {
            return;
        }
        let Some(state) = &self.incoming else {
            return;
        };
        self.ack_due = false;
        let mut bitmap = 0u64;
        for bit in 0..64u32 {
            let index = state.cumulative as usize + 1 + bit as usize;
            if state.held.get(index).copied().unwrap_or(false) {
                bitmap |= 1 << bit;
            }
        }
        out.push(
            TransferMessage::Ack {
                digest: state.digest,
                cumulative: state.cumulative,
                bitmap,
            }
            .encode(session_id),
        );
    }

    /// The whole state, once every chunk arrived and the digest matched: its frame
    /// and bytes (handed over once).
    pub fn take_complete(&mut self) -> Option<(Frame, Vec<u8>)> {
        self.complete.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netem::{LinkConditions, Netem};

    const SESSION: u16 = 0x1ab;
    const MS: Duration = Duration::from_millis(1);

    fn state(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// Run sender → receiver over two conditioned links until complete; returns
    /// the state and how many chunk datagrams were sent.
    fn transfer(
        sender: &mut StateSender,
        receiver: &mut StateReceiver,
        conditions: LinkConditions,
        seed: u64,
        limit: Duration,
    ) -> Option<((Frame, Vec<u8>), usize)> {
        let mut forward = Netem::<Vec<u8>>::new(conditions, seed);
        let mut back = Netem::<Vec<u8>>::new(conditions, seed ^ 0x5555);
        let mut now = Duration::ZERO;
        let mut chunks_sent = 0;
        while now < limit {
            let mut out = Vec::new();
            sender.poll(now, SESSION, &mut out);
            for datagram in out {
                if matches!(
                    TransferMessage::decode(&datagram, SESSION),
                    Ok(TransferMessage::Chunk { .. })
                ) {
                    chunks_sent += 1;
                }
                forward.send(now, datagram);
            }
            while let Some(datagram) = forward.poll(now) {
                if let Ok(message) = TransferMessage::decode(&datagram, SESSION) {
                    let _ = receiver.on_message(&message);
                }
            }
            if let Some(done) = receiver.take_complete() {
                return Some((done, chunks_sent));
            }
            let mut acks = Vec::new();
            receiver.poll(SESSION, &mut acks);
            for ack in acks {
                back.send(now, ack);
            }
            while let Some(datagram) = back.poll(now) {
                if let Ok(message) = TransferMessage::decode(&datagram, SESSION) {
                    sender.on_ack(&message).expect("a valid ack");
                }
            }
            now += MS;
        }
        None
    }

    #[test]
    fn every_kind_round_trips_and_garbage_is_refused() {
        let messages = [
            TransferMessage::Offer {
                digest: 7,
                frame: 600,
                len: 5000,
            },
            TransferMessage::Chunk {
                digest: 7,
                index: 3,
                bytes: &[1, 2, 3],
            },
            TransferMessage::Ack {
                digest: 7,
                cumulative: 2,
                bitmap: 0b101,
            },
        ];
        for message in &messages {
            let bytes = message.encode(SESSION);
            assert!(is_transfer_datagram(&bytes));
            assert_eq!(
                TransferMessage::decode(&bytes, SESSION).as_ref(),
                Ok(message)
            );
            assert_eq!(
                TransferMessage::decode(&bytes, SESSION + 1),
                Err(DatagramError::WrongSession(SESSION))
            );
            // Every cut into the fixed fields fails (a chunk cut inside its payload
            // is a shorter chunk: the receiver refuses its length).
            let payload = match message {
                TransferMessage::Chunk { bytes, .. } => bytes.len() - 1,
                _ => 0,
            };
            for cut in 0..bytes.len() - payload {
                assert!(TransferMessage::decode(&bytes[..cut], SESSION).is_err());
            }
        }
        let mut trailing = messages[2].encode(SESSION);
        trailing.push(0);
        assert!(TransferMessage::decode(&trailing, SESSION).is_err());
        let mut big = messages[1].encode(SESSION);
        big.extend(std::iter::repeat_n(0, CHUNK_SIZE));
        assert!(TransferMessage::decode(&big, SESSION).is_err());
        assert_eq!(
            TransferMessage::decode(&[0xC1, 0xab, 0x01, 0], SESSION),
            Err(DatagramError::NotSession)
        );
    }

    #[test]
    fn a_state_arrives_whole_over_a_perfect_link_without_resends() {
        let data = state(10 * CHUNK_SIZE + 17, 1);
        let mut sender = StateSender::new(42, data.clone(), 50 * MS).expect("a state");
        let mut receiver = StateReceiver::new(1 << 20);
        let ((frame, got), sent) = transfer(
            &mut sender,
            &mut receiver,
            LinkConditions::perfect(),
            1,
            Duration::from_secs(5),
        )
        .expect("complete");
        assert_eq!((frame, got), (42, data));
        assert_eq!(sent, 11, "each chunk once");
    }

    #[test]
    fn loss_duplication_and_reordering_never_corrupt_the_state() {
        for seed in 0..8 {
            let data = state(200 * CHUNK_SIZE + seed as usize, seed as u8);
            let mut sender = StateSender::new(7, data.clone(), 100 * MS).expect("a state");
            let mut receiver = StateReceiver::new(1 << 20);
            let mut conditions = LinkConditions::lossy();
            conditions.duplicate = 0.05;
            let ((frame, got), _) = transfer(
                &mut sender,
                &mut receiver,
                conditions,
                seed,
                Duration::from_secs(60),
            )
            .unwrap_or_else(|| panic!("seed {seed}: not complete in a minute"));
            assert_eq!((frame, got.len()), (7, data.len()));
            assert!(got == data, "seed {seed}: bytes differ");
            // The sender learns it is done from the final ack.
            let mut acks = Vec::new();
            receiver.poll(SESSION, &mut acks);
            for ack in &acks {
                let message = TransferMessage::decode(ack, SESSION).expect("ack");
                sender.on_ack(&message).expect("valid");
            }
            assert!(sender.is_done(), "seed {seed}");
        }
    }

    #[test]
    fn a_new_sender_of_the_same_state_resumes_and_another_state_starts_over() {
        let data = state(100 * CHUNK_SIZE, 3);
        let mut first = StateSender::new(9, data.clone(), 50 * MS).expect("a state");
        let mut receiver = StateReceiver::new(1 << 20);
        // The first sender gets 40 chunks across, then goes away.
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        while receiver.progress().0 < 40 {
            out.clear();
            first.poll(now, SESSION, &mut out);
            for datagram in &out {
                let message = TransferMessage::decode(datagram, SESSION).expect("valid");
                receiver.on_message(&message).expect("accepted");
            }
            let mut acks = Vec::new();
            receiver.poll(SESSION, &mut acks);
            for ack in &acks {
                let message = TransferMessage::decode(ack, SESSION).expect("valid");
                first.on_ack(&message).expect("valid");
            }
            now += MS;
        }
        let before = receiver.progress().0;
        let mut second = StateSender::new(9, data.clone(), 50 * MS).expect("a state");
        let ((_, got), sent) = transfer(
            &mut second,
            &mut receiver,
            LinkConditions::perfect(),
            2,
            Duration::from_secs(5),
        )
        .expect("complete");
        assert!(got == data);
        // Until the receiver's first ack it cannot know what is there: at most one
        // burst is sent again.
        let missing = (100 - before) as usize;
        assert!(
            (missing..=missing + BURST).contains(&sent),
            "sent {sent}, missing {missing}"
        );
        // Another state (another frame) replaces it from scratch.
        let other = state(3 * CHUNK_SIZE, 4);
        let mut third = StateSender::new(10, other.clone(), 50 * MS).expect("a state");
        let ((frame, got), sent) = transfer(
            &mut third,
            &mut receiver,
            LinkConditions::perfect(),
            3,
            Duration::from_secs(5),
        )
        .expect("complete");
        assert_eq!((frame, got, sent), (10, other, 3));
    }

    #[test]
    fn hostile_transfers_are_refused_and_never_hand_over_wrong_bytes() {
        let mut receiver = StateReceiver::new(10 * CHUNK_SIZE);
        // Too large: refused before anything is allocated.
        let huge = TransferMessage::Offer {
            digest: 1,
            frame: 0,
            len: u32::MAX,
        };
        assert!(receiver.on_message(&huge).is_err());
        assert_eq!(receiver.progress(), (0, 0));
        // Chunks of no offer, out of range, or of the wrong length.
        let chunk = |index, bytes: &'static [u8]| TransferMessage::Chunk {
            digest: 2,
            index,
            bytes,
        };
        assert!(receiver.on_message(&chunk(0, &[1])).is_err());
        receiver
            .on_message(&TransferMessage::Offer {
                digest: 2,
                frame: 5,
                len: 1500,
            })
            .expect("a valid offer");
        assert!(
            receiver.on_message(&chunk(2, &[1])).is_err(),
            "beyond the end"
        );
        assert!(
            receiver.on_message(&chunk(0, &[1; 10])).is_err(),
            "short first chunk"
        );
        assert!(
            receiver.on_message(&chunk(1, &[1; 600])).is_err(),
            "long last chunk"
        );
        // A sender whose bytes do not match its digest: never handed over.
        static FIRST: [u8; CHUNK_SIZE] = [9; CHUNK_SIZE];
        static LAST: [u8; 476] = [9; 476];
        receiver.on_message(&chunk(0, &FIRST)).expect("fits");
        assert!(
            receiver.on_message(&chunk(1, &LAST)).is_err(),
            "digest mismatch"
        );
        assert_eq!(receiver.take_complete(), None);
        assert_eq!(receiver.progress(), (0, 2), "starts over");
        // The sender refuses acks of other transfers or beyond its chunks.
        let mut sender = StateSender::new(1, vec![1; 100], 50 * MS).expect("a state");
        let ack = |digest, cumulative| TransferMessage::Ack {
            digest,
            cumulative,
            bitmap: u64::MAX,
        };
        assert!(sender.on_ack(&ack(sender.digest() ^ 1, 0)).is_err());
        assert!(sender.on_ack(&ack(sender.digest(), 2)).is_err());
        sender
            .on_ack(&ack(sender.digest(), 0))
            .expect("a bitmap beyond the end is ignored");
        assert!(!sender.is_done());
        assert!(StateSender::new(1, Vec::new(), 50 * MS).is_none());
    }
}
