//! The transport's framing inside each data-channel message.
//!
//! One tag byte, then the body. Control frames (hello, ping, bye) let the transport
//! prove a channel works, measure RTT on the unreliable channel and detect peers that
//! vanish. Decoding never panics: anything malformed is `None` and gets counted.

/// Largest data-channel message either side sends or accepts, framing included:
/// 64 KiB. The SDP of every native peer advertises it (`a=max-message-size:65536`),
/// webrtc-rs refuses to receive more, and a peer must not send more.
pub const MAX_WIRE_MESSAGE: usize = 64 * 1024;

/// Tag of a game payload.
pub const DATA_TAG: u8 = 0;
const DATA: u8 = DATA_TAG;
/// "My side of this channel is open" — repeated until acknowledged.
const HELLO: u8 = 1;
/// Answer to a hello.
const HELLO_ACK: u8 = 2;
/// RTT probe / keepalive; body: `seq: u32`, `sent_us: u64` (sender's clock).
const PING: u8 = 3;
/// Echo of a ping's body.
const PONG: u8 = 4;
/// The sender is closing the connection on purpose.
const BYE: u8 = 5;

/// One decoded frame. `Data` borrows the payload from the received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFrame<'a> {
    /// Game payload.
    Data(&'a [u8]),
    /// Channel-open probe.
    Hello,
    /// Answer to [`WireFrame::Hello`].
    HelloAck,
    /// RTT probe.
    Ping {
        /// Sequence number, for loss.
        seq: u32,
        /// Sender's timestamp in microseconds, echoed back.
        sent_us: u64,
    },
    /// Echo of a ping.
    Pong {
        /// The ping's sequence number.
        seq: u32,
        /// The ping's timestamp.
        sent_us: u64,
    },
    /// Goodbye.
    Bye,
}

impl WireFrame<'_> {
    /// Encode into a fresh buffer.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            WireFrame::Data(payload) => {
                let mut out = Vec::with_capacity(payload.len() + 1);
                out.push(DATA);
                out.extend_from_slice(payload);
                out
            }
            WireFrame::Hello => vec![HELLO],
            WireFrame::HelloAck => vec![HELLO_ACK],
            WireFrame::Ping { seq, sent_us } => timed(PING, seq, sent_us),
            WireFrame::Pong { seq, sent_us } => timed(PONG, seq, sent_us),
            WireFrame::Bye => vec![BYE],
        }
    }

    /// Decode a received message; `None` if it is not a valid frame.
    pub fn decode(bytes: &[u8]) -> Option<WireFrame<'_>> {
        let (&tag, body) = bytes.split_first()?;
        match tag {
            DATA => Some(WireFrame::Data(body)),
            HELLO if body.is_empty() => Some(WireFrame::Hello),
            HELLO_ACK if body.is_empty() => Some(WireFrame::HelloAck),
            PING | PONG => {
                let seq = u32::from_le_bytes(body.get(0..4)?.try_into().ok()?);
                let sent_us = u64::from_le_bytes(body.get(4..12)?.try_into().ok()?);
                if body.len() != 12 {
                    return None;
                }
                Some(if tag == PING {
                    WireFrame::Ping { seq, sent_us }
                } else {
                    WireFrame::Pong { seq, sent_us }
                })
            }
            BYE if body.is_empty() => Some(WireFrame::Bye),
            _ => None,
        }
    }
}

fn timed(tag: u8, seq: u32, sent_us: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(13);
    out.push(tag);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sent_us.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            WireFrame::Data(b"hello world"),
            WireFrame::Data(b""),
            WireFrame::Hello,
            WireFrame::HelloAck,
            WireFrame::Ping {
                seq: 7,
                sent_us: u64::MAX - 3,
            },
            WireFrame::Pong { seq: 9, sent_us: 1 },
            WireFrame::Bye,
        ];
        for frame in frames {
            let bytes = frame.encode();
            assert_eq!(WireFrame::decode(&bytes), Some(frame));
        }
    }

    #[test]
    fn malformed_input_is_rejected_not_panicking() {
        assert_eq!(WireFrame::decode(&[]), None);
        assert_eq!(WireFrame::decode(&[99]), None);
        assert_eq!(WireFrame::decode(&[HELLO, 0]), None);
        assert_eq!(WireFrame::decode(&[PING, 1, 2, 3]), None);
        assert_eq!(WireFrame::decode(&[PONG; 20]), None);
        for len in 0..16 {
            let bytes: Vec<u8> = (0..len).map(|i: u8| i.wrapping_mul(37)).collect();
            let _ = WireFrame::decode(&bytes);
        }
    }
}
