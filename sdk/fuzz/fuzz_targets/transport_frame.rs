//! The transport's data-channel framing (hello, ack, ping, data, bye) on arbitrary
//! bytes: no panic, and every decoded frame re-encodes to the same bytes' meaning.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcplay::transport::wire::WireFrame;

fuzz_target!(|data: &[u8]| {
    if let Some(frame) = WireFrame::decode(data) {
        let bytes = frame.encode();
        assert_eq!(WireFrame::decode(&bytes), Some(frame));
    }
});
