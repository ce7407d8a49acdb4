//! Arbitrary datagrams fed to both sides of a state transfer, between the real
//! datagrams of a real transfer: the decoder, the receiver (offers, chunks) and
//! the sender (acks) must drop garbage without panicking, the receiver must never
//! hold more than its limit, and a state it hands over must be the one sent or
//! match its own digest.
//!
//! Each `0xFF`-separated chunk of the input is one injected datagram; its first
//! byte picks where it goes and whether it gets a valid header (magic, version,
//! session id) so the fuzzer starts past the first checks.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rtcplay::session::state_transfer::{
    state_digest, StateReceiver, StateSender, TransferMessage, TRANSFER_VERSION,
};

const SESSION_ID: u16 = 0x5eed;
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let state: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let Some(mut sender) = StateSender::new(3, state.clone(), Duration::from_millis(20)) else {
        return;
    };
    let mut receiver = StateReceiver::new(LIMIT);
    let mut now = Duration::ZERO;
    for injected in data.split(|b| *b == 0xFF) {
        let Some((&how, rest)) = injected.split_first() else {
            continue;
        };
        let mut bytes = Vec::new();
        if how & 1 == 1 {
            bytes.push(0xD0 | TRANSFER_VERSION);
            bytes.extend_from_slice(&SESSION_ID.to_le_bytes());
        }
        bytes.extend_from_slice(rest);
        if let Ok(message) = TransferMessage::decode(&bytes, SESSION_ID) {
            if how & 2 == 0 {
                let _ = receiver.on_message(&message);
            } else {
                let _ = sender.on_ack(&message);
            }
        }
        // Real traffic in between.
        let mut out = Vec::new();
        sender.poll(now, SESSION_ID, &mut out);
        for datagram in &out {
            if let Ok(message) = TransferMessage::decode(datagram, SESSION_ID) {
                let _ = receiver.on_message(&message);
            }
        }
        let mut acks = Vec::new();
        receiver.poll(SESSION_ID, &mut acks);
        for ack in &acks {
            if let Ok(message) = TransferMessage::decode(ack, SESSION_ID) {
                let _ = sender.on_ack(&message);
            }
        }
        let (held, total) = receiver.progress();
        assert!(held <= total && (total as usize) <= LIMIT.div_ceil(1024));
        if let Some((frame, bytes)) = receiver.take_complete() {
            // Either our state, or one an attacker offered whose bytes match
            // the digest it announced: never a mix.
            assert!((frame == 3 && bytes == state) || state_digest(&bytes) != state_digest(&state));
        }
        now += Duration::from_millis(7);
    }
});
