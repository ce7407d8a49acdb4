//! Resuming a player whose session restarted: what the survivors track about a
//! rejoining peer, what the rejoining session tracks about itself, and the
//! handover (the game state plus what the session needs to resume from it).
//!
//! The protocol in short (the full rules are in `docs/session.md`, "Rejoining"):
//!
//! 1. A fresh session built with [`SessionBuilder::rejoining`] marks its datagrams
//!    with a rejoin number. A survivor that sees a new number forgets what it knew
//!    about the peer (its old session is gone) and synchronizes with it again; its
//!    players stay absent (input `Disconnected`).
//! 2. The rejoiner asks one synchronized survivor, the donor, for the state. The
//!    donor picks the frame `F` from which the rejoiner's inputs count again: after
//!    everything it has sent or confirmed, plus a lead of half a second. It closes
//!    the absence at `F` and, since statuses ride in every datagram, every peer that
//!    receives any later input of the donor learns `F` in the same datagram — so no
//!    peer can have confirmed a frame at or after `F` without knowing it.
//! 3. The donor exports its newest confirmed state `S` (`Request::Export`) and sends
//!    it with the absences and each player's input at `S - 1` over
//!    [`state_transfer`](super::state_transfer).
//! 4. The rejoiner imports it (`Request::Import`), catches up on confirmed frames
//!    several per tick, commits neutral inputs for the frames the others are
//!    already at, and plays on from there.
//!
//! [`SessionBuilder::rejoining`]: super::SessionBuilder::rejoining

use std::time::Duration;

use super::absence::{self, Absence, MAX_ABSENCES};
use super::protocol::{put_varint, DatagramError, Reader};
use super::state_transfer::{StateReceiver, StateSender};
use super::Frame;
use crate::datagram::PeerId;

const HANDOVER_VERSION: u8 = 1;

/// Frames between the donor's present and the frame `F` it picks: time for the
/// transfer, so that the others rarely have to wait for the rejoiner's inputs.
pub(crate) fn resume_lead(fps: u32) -> Frame {
    (fps / 2).clamp(8, 120)
}

/// What a donor sends ahead of the game state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handover {
    /// The frame the state belongs to (`S`).
    pub state_frame: Frame,
    /// Every player's absences, as the donor knows them.
    pub absences: Vec<Vec<Absence>>,
    /// Every player's input at `S - 1` (the base of the first delta the
    /// rejoiner receives), if the player was present then.
    pub bases: Vec<Option<Vec<u8>>>,
    /// The game's state, opaque.
    pub state: Vec<u8>,
}

impl Handover {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.state.len() + 64);
        out.push(HANDOVER_VERSION);
        put_varint(&mut out, u64::from(self.state_frame));
        put_varint(&mut out, self.absences.len() as u64);
        for (list, base) in self.absences.iter().zip(&self.bases) {
            put_varint(&mut out, list.len() as u64);
            for a in list {
                put_varint(&mut out, u64::from(a.from));
                put_varint(&mut out, a.until.map_or(0, |u| u64::from(u) + 1));
            }
            match base {
                Some(b) => {
                    put_varint(&mut out, b.len() as u64 + 1);
                    out.extend_from_slice(b);
                }
                None => put_varint(&mut out, 0),
            }
        }
        out.extend_from_slice(&self.state);
        out
    }

    /// Decode a handover for a session of `players` players; everything is checked.
    pub(crate) fn decode(
        bytes: &[u8],
        players: usize,
        max_input_size: usize,
    ) -> Result<Self, DatagramError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != HANDOVER_VERSION {
            return Err(DatagramError::Malformed("handover version"));
        }
        let state_frame = r.frame()?;
        if r.varint()? != players as u64 {
            return Err(DatagramError::Malformed("handover player count"));
        }
        let mut absences = Vec::with_capacity(players);
        let mut bases = Vec::with_capacity(players);
        for _ in 0..players {
            let n = r.varint()?;
            if n > MAX_ABSENCES as u64 {
                return Err(DatagramError::Malformed("handover absences"));
            }
            let mut list = Vec::new();
            for _ in 0..n {
                let from = r.frame()?;
                let until = match r.varint()? {
                    0 => None,
                    v => Some(
                        Frame::try_from(v - 1)
                            .map_err(|_| DatagramError::Malformed("handover absence"))?,
                    ),
                };
                list.push(Absence { from, until });
            }
            if !absence::is_valid(&list) {
                return Err(DatagramError::Malformed("handover absences"));
            }
            absences.push(list);
            bases.push(match r.varint()? {
                0 => None,
                v if v - 1 <= max_input_size as u64 => Some(r.take((v - 1) as usize)?.to_vec()),
                _ => return Err(DatagramError::Malformed("handover input size")),
            });
        }
        let state = r.rest().to_vec();
        Ok(Handover {
            state_frame,
            absences,
            bases,
            state,
        })
    }
}

/// A survivor's view of a peer that is rejoining.
#[derive(Debug)]
pub(crate) struct PeerRejoin {
    /// The number its fresh session marks its datagrams with (unknown when we
    /// learned of the rejoin from another peer's statuses first).
    pub nonce: Option<u32>,
    /// It asked us for the state.
    pub donor_asked: bool,
    /// The state on its way to it.
    pub sender: Option<StateSender>,
}

impl PeerRejoin {
    pub(crate) fn new(nonce: Option<u32>) -> Self {
        PeerRejoin {
            nonce,
            donor_asked: false,
            sender: None,
        }
    }
}

/// A session that rejoins a running match.
#[derive(Debug)]
pub(crate) struct Rejoining {
    pub nonce: u32,
    /// The survivor asked for the state.
    pub donor: Option<PeerId>,
    pub receiver: StateReceiver,
    /// The state arrived and was handed to the game.
    pub imported: bool,
    /// Caught up with the others: plays one frame per tick again.
    pub caught_up: bool,
    /// When we first asked the donor for the state.
    pub asked_at: Option<Duration>,
}

impl Rejoining {
    pub(crate) fn new(nonce: u32, max_state_size: usize) -> Self {
        Rejoining {
            nonce,
            donor: None,
            receiver: StateReceiver::new(max_state_size),
            imported: false,
            caught_up: false,
            asked_at: None,
        }
    }
}

/// A number for [`SessionBuilder::rejoining`](super::SessionBuilder::rejoining)
/// that differs from one run of the game to the next: the wall clock's
/// nanoseconds mixed with the process id (in a browser: `Date.now()` and
/// `Math.random()`).
pub fn new_incarnation() -> u32 {
    #[cfg(all(target_arch = "wasm32", feature = "web"))]
    let seed = (js_sys::Date::now() as u64) ^ ((js_sys::Math::random() * 4e9) as u64) << 20;
    #[cfg(not(target_arch = "wasm32"))]
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    #[cfg(all(target_arch = "wasm32", not(feature = "web")))]
    let seed = 0x5eed_u64;
    // SplitMix64's finalizer spreads close clock values over the whole range.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// How long a transfer chunk waits for its acknowledgement before it is resent.
pub(crate) fn resend_after(rtt: Duration) -> Duration {
    (rtt * 3 / 2).max(Duration::from_millis(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handover {
        Handover {
            state_frame: 700,
            absences: vec![
                vec![],
                vec![Absence {
                    from: 300,
                    until: Some(760),
                }],
                vec![Absence {
                    from: 650,
                    until: None,
                }],
            ],
            bases: vec![Some(vec![1, 2]), None, None],
            state: b"the game".to_vec(),
        }
    }

    #[test]
    fn round_trip_and_every_truncation_fails_cleanly() {
        let h = sample();
        let bytes = h.encode();
        assert_eq!(Handover::decode(&bytes, 3, 16), Ok(h));
        assert!(Handover::decode(&bytes, 2, 16).is_err(), "player count");
        assert!(Handover::decode(&bytes, 3, 1).is_err(), "input too large");
        // Cut inside the header: an error. (A cut in the state itself is caught
        // by the transfer's digest.)
        let header = bytes.len() - b"the game".len();
        for cut in 0..header {
            assert!(Handover::decode(&bytes[..cut], 3, 16).is_err(), "cut {cut}");
        }
    }
}
