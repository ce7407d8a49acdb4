//! Arbitrary replay files: the decoder must return a replay or a clear error,
//! never panic, and a replay it accepts must play back (inputs, checksums, seeks)
//! without panicking either.
//!
//! The fuzzer's bytes are split at `0xFF`; each piece becomes one record. Its
//! first byte picks whether it gets a correct length and check (so the fuzzer
//! reaches the record contents) and whether a valid header record comes first.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcplay::session::replay::{Replay, ReplaySession, REPLAY_FORMAT_VERSION, REPLAY_MAGIC};
use rtcplay::session::state_transfer::state_digest;
use rtcplay::session::Request;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn record(out: &mut Vec<u8>, body: &[u8]) {
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
    out.extend_from_slice(&(state_digest(body) as u32).to_le_bytes());
}

/// A header for a 2-player game with input type `u8` and build "fuzz".
fn header() -> Vec<u8> {
    let mut body = vec![1];
    for s in ["fuzz", std::any::type_name::<u8>()] {
        varint(&mut body, s.len() as u64);
        body.extend_from_slice(s.as_bytes());
    }
    body.extend_from_slice(&[60, 2, 0, 1, 0, 30, 0]);
    body
}

fuzz_target!(|data: &[u8]| {
    let mut file = REPLAY_MAGIC.to_vec();
    file.extend_from_slice(&REPLAY_FORMAT_VERSION.to_le_bytes());
    if data.first().is_some_and(|b| b & 4 == 0) {
        record(&mut file, &header());
    }
    for piece in data.split(|b| *b == 0xFF) {
        let Some((&how, rest)) = piece.split_first() else {
            continue;
        };
        if how & 1 == 1 {
            record(&mut file, rest);
        } else {
            file.extend_from_slice(rest);
        }
    }
    let Ok(replay) = Replay::decode(&file) else {
        return;
    };
    let (start, end) = (replay.start_frame(), replay.end_frame());
    for f in start..end.min(start.saturating_add(4096)) {
        let inputs = replay.inputs::<u8>(f).expect("a recorded frame has inputs");
        assert_eq!(inputs.len(), replay.header().players.len());
    }
    let _ = replay.checksum_frames().count();
    let Ok(mut session) = ReplaySession::<u8>::new(replay, "fuzz") else {
        return;
    };
    let mut frame = start;
    for _ in 0..4096 {
        for r in session.step() {
            match r {
                Request::Export { frame } => session.export_state(frame, vec![1]).unwrap(),
                Request::Save { frame } => {
                    session.report_checksum(frame, rtcplay::session::Checksum::new(u64::from(frame)))
                }
                Request::Advance { frame: f, .. } => frame = f + 1,
                _ => {}
            }
        }
        if session.is_finished() {
            break;
        }
    }
    let _ = session.seek(start);
    let _ = session.seek(frame / 2);
    let _ = session.events().count();
});
