//! State datagrams: what one endpoint sends another each tick.
//!
//! ```text
//! byte 0     0xE0 | version (4 bits)
//! bytes 1-2  stream-set id (u16): both sides configure the same one
//! varint     datagram sequence number (per destination, from 1)
//! varint     newest datagram number received from the destination, or 0
//! u32        bit i: datagram (newest - 1 - i) was received too
//! varint     the sender's tick (its state-tick count when it sent this)
//! varint     event count, then per event: varint event number, varint
//!            length, bytes
//! entries    to the end of the datagram, each coded against the entry before
//!            it (the first against stream 0, key 0, version 0):
//!            u8 head: bits 0-1 kind (0 whole, 1 delta, 2 removed), bit 2 a
//!              stream follows (else the previous entry's), bit 3 the key is
//!              the previous key + 1 (else a key difference follows), bit
//!              4 an age follows (else the value is of the sender's tick)
//!            [varint stream]
//!            [varint zigzag(key - previous key)]
//!            varint zigzag(version - previous version)
//!            [varint age: the sender's tick - the tick the value was set for]
//!            kind 0: varint length, bytes; kind 1: varint (version - base
//!            version), varint length, delta bytes; kind 2: nothing
//! ```

use crate::session::protocol::{put_varint, DatagramError, Reader};

/// Version of the state datagrams.
pub const STATE_VERSION: u8 = 2;
const MAGIC: u8 = 0xE0;

/// Whether `bytes` looks like a state datagram (its first byte): a transport
/// shared with a rollback session tells them apart by this.
pub fn is_state_datagram(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b & 0xF0 == MAGIC)
}

/// One value update in a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub stream: u16,
    pub key: u64,
    pub seq: u32,
    /// The sender's tick the value was set for.
    pub tick: u64,
    pub body: Body<'a>,
}

/// What an entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// The whole encoded value.
    Full(&'a [u8]),
    /// A byte-mask delta against the value numbered `base`.
    Delta { base: u32, delta: &'a [u8] },
    /// The key was removed.
    Removed,
}

/// The header part of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub seq: u32,
    pub ack: Option<u32>,
    pub ack_bits: u32,
    /// The sender's tick.
    pub tick: u64,
}

/// Start a datagram: header and events. Entries are appended after with
/// [`put_entry`].
pub(crate) fn start(out: &mut Vec<u8>, id: u16, header: &Header, events: &[(u32, &[u8])]) {
    out.clear();
    out.push(MAGIC | STATE_VERSION);
    out.extend_from_slice(&id.to_le_bytes());
    put_varint(out, u64::from(header.seq));
    put_varint(out, header.ack.map_or(0, |a| u64::from(a) + 1));
    out.extend_from_slice(&header.ack_bits.to_le_bytes());
    put_varint(out, header.tick);
    put_varint(out, events.len() as u64);
    for (seq, bytes) in events {
        put_varint(out, u64::from(*seq));
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

/// Where the previous entry of a datagram was (entries are coded against it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    stream: Option<u16>,
    key: u64,
    seq: u32,
    /// The datagram's tick (ages count back from it).
    tick: u64,
}

impl Cursor {
    /// Before the first entry of a datagram sent at `tick`.
    pub(crate) fn at_tick(tick: u64) -> Self {
        Cursor {
            tick,
            ..Cursor::default()
        }
    }
}

const HEAD_STREAM: u8 = 1 << 2;
const HEAD_NEXT_KEY: u8 = 1 << 3;
const HEAD_AGED: u8 = 1 << 4;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Append one entry, coded against `at` (which it then becomes).
pub(crate) fn put_entry(out: &mut Vec<u8>, at: &mut Cursor, entry: &Entry<'_>) {
    let kind = match entry.body {
        Body::Full(_) => 0,
        Body::Delta { .. } => 1,
        Body::Removed => 2,
    };
    let new_stream = at.stream != Some(entry.stream);
    let next_key = !new_stream && entry.key == at.key.wrapping_add(1);
    let mut head = kind;
    if new_stream {
        head |= HEAD_STREAM;
    }
    if next_key {
        head |= HEAD_NEXT_KEY;
    }
    let age = at.tick.saturating_sub(entry.tick);
    if age > 0 {
        head |= HEAD_AGED;
    }
    out.push(head);
    if new_stream {
        put_varint(out, u64::from(entry.stream));
    }
    if !next_key {
        put_varint(out, zigzag(entry.key.wrapping_sub(at.key) as i64));
    }
    put_varint(out, zigzag(i64::from(entry.seq) - i64::from(at.seq)));
    if age > 0 {
        put_varint(out, age);
    }
    match entry.body {
        Body::Full(bytes) => {
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Body::Delta { base, delta } => {
            put_varint(out, u64::from(entry.seq.saturating_sub(base)));
            put_varint(out, delta.len() as u64);
            out.extend_from_slice(delta);
        }
        Body::Removed => {}
    }
    *at = Cursor {
        stream: Some(entry.stream),
        key: entry.key,
        seq: entry.seq,
        tick: at.tick,
    };
}

/// The bytes an entry takes after `at` (to keep a datagram under its limit).
pub(crate) fn entry_size(at: &Cursor, entry: &Entry<'_>) -> usize {
    let mut out = Vec::with_capacity(32);
    put_entry(&mut out, &mut at.clone(), entry);
    out.len()
}

/// A decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub header: Header,
    pub events: Vec<(u32, &'a [u8])>,
    pub entries: Vec<Entry<'a>>,
}

fn u32_of(v: u64, what: &'static str) -> Result<u32, DatagramError> {
    u32::try_from(v).map_err(|_| DatagramError::Malformed(what))
}

/// Decode a datagram of stream set `id`; every length is checked against the
/// bytes, values longer than `max_value` are refused.
pub(crate) fn decode(
    bytes: &[u8],
    id: u16,
    max_value: usize,
) -> Result<Decoded<'_>, DatagramError> {
    let mut r = Reader::new(bytes);
    r.header(MAGIC, STATE_VERSION, id)?;
    let seq = u32_of(r.varint()?, "sequence")?;
    let ack = match r.varint()? {
        0 => None,
        a => Some(u32_of(a - 1, "ack")?),
    };
    let bits = r.take(4)?;
    let ack_bits = u32::from_le_bytes([bits[0], bits[1], bits[2], bits[3]]);
    let tick = r.varint()?;
    let event_count = r.varint()?;
    if event_count > bytes.len() as u64 {
        return Err(DatagramError::Malformed("event count"));
    }
    let mut events = Vec::new();
    for _ in 0..event_count {
        let seq = u32_of(r.varint()?, "event number")?;
        let len = r.varint()?;
        if len > max_value as u64 {
            return Err(DatagramError::Malformed("event length"));
        }
        events.push((seq, slice(&mut r, len)?));
    }
    let mut entries = Vec::new();
    let mut at = Cursor::at_tick(tick);
    while !r.at_end() {
        let head = r.u8()?;
        if head & !(3 | HEAD_STREAM | HEAD_NEXT_KEY | HEAD_AGED) != 0 {
            return Err(DatagramError::Malformed("entry head"));
        }
        let stream = if head & HEAD_STREAM != 0 {
            u16::try_from(r.varint()?).map_err(|_| DatagramError::Malformed("stream"))?
        } else {
            at.stream.ok_or(DatagramError::Malformed("no stream"))?
        };
        let key = if head & HEAD_NEXT_KEY != 0 {
            at.key.wrapping_add(1)
        } else {
            at.key.wrapping_add(unzigzag(r.varint()?) as u64)
        };
        let seq = i64::from(at.seq)
            .checked_add(unzigzag(r.varint()?))
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(DatagramError::Malformed("version"))?;
        let value_tick = if head & HEAD_AGED != 0 {
            tick.checked_sub(r.varint()?)
                .ok_or(DatagramError::Malformed("age"))?
        } else {
            tick
        };
        let body = match head & 3 {
            0 => {
                let len = r.varint()?;
                if len > max_value as u64 {
                    return Err(DatagramError::Malformed("value length"));
                }
                Body::Full(slice(&mut r, len)?)
            }
            1 => {
                let back = u32_of(r.varint()?, "base")?;
                let base = seq
                    .checked_sub(back)
                    .ok_or(DatagramError::Malformed("base"))?;
                let len = r.varint()?;
                if len > max_value as u64 + max_value.div_ceil(8) as u64 {
                    return Err(DatagramError::Malformed("delta length"));
                }
                Body::Delta {
                    base,
                    delta: slice(&mut r, len)?,
                }
            }
            2 => Body::Removed,
            _ => return Err(DatagramError::Malformed("entry kind")),
        };
        at = Cursor {
            stream: Some(stream),
            key,
            seq,
            tick,
        };
        entries.push(Entry {
            stream,
            key,
            seq,
            tick: value_tick,
            body,
        });
    }
    Ok(Decoded {
        header: Header {
            seq,
            ack,
            ack_bits,
            tick,
        },
        events,
        entries,
    })
}

/// `len` bytes of the datagram, borrowed from it.
fn slice<'a>(r: &mut Reader<'a>, len: u64) -> Result<&'a [u8], DatagramError> {
    let len = usize::try_from(len).map_err(|_| DatagramError::Truncated)?;
    r.take(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_extreme_differences_are_refused() {
        let header = Header {
            seq: 9,
            ack: Some(4),
            ack_bits: 0b101,
            tick: 50,
        };
        let mut out = Vec::new();
        start(&mut out, 7, &header, &[(1, b"hi")]);
        let mut at = Cursor::at_tick(50);
        let entries = [
            Entry {
                stream: 3,
                key: 10,
                seq: 100,
                tick: 50,
                body: Body::Full(b"abc"),
            },
            Entry {
                stream: 3,
                key: 11,
                seq: 101,
                tick: 47,
                body: Body::Delta {
                    base: 90,
                    delta: &[1, 2],
                },
            },
            Entry {
                stream: 4,
                key: 2,
                seq: 95,
                tick: 0,
                body: Body::Removed,
            },
        ];
        for e in &entries {
            put_entry(&mut out, &mut at, e);
        }
        let d = decode(&out, 7, 64).expect("decodes");
        assert_eq!(d.header, header);
        assert_eq!(d.entries, entries);
        // A version difference that overflows: refused, no panic.
        let mut bad = Vec::new();
        start(&mut bad, 7, &header, &[]);
        bad.extend([HEAD_STREAM, 1, 0]);
        put_varint(&mut bad, u64::MAX - 1);
        bad.extend([0, 0]);
        assert!(decode(&bad, 7, 64).is_err());
        // An age older than the datagram's tick: refused.
        let mut old = Vec::new();
        start(&mut old, 7, &header, &[]);
        old.extend([HEAD_STREAM | HEAD_AGED | 2, 1, 0, 2, 51]);
        assert!(decode(&old, 7, 64).is_err());
    }
}
