//! The signaling server's and client's message parsers on arbitrary text: no panic,
//! and whatever decodes re-encodes to something that decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rtcplay::signaling::{ClientMessage, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = ClientMessage::from_json(text) {
        let again = ClientMessage::from_json(&message.to_json());
        assert_eq!(again.as_ref(), Ok(&message));
    }
    if let Ok(message) = ServerMessage::from_json(text) {
        let again = ServerMessage::from_json(&message.to_json());
        assert_eq!(again.as_ref(), Ok(&message));
    }
});
