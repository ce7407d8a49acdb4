//! State datagrams: what one endpoint sends another each tick.
//!
//! ```text
//! byte 0     0xE0 | version (4 bits)
//! bytes 1-2  stream-set id (u16): both sides configure the same one
//! varint     datagram sequence number (per destination, from 1)
//! varint     newest datagram number received from the destination, or 0
//! u32        bit i: datagram (newest - 1 - i) was received too
//! varint     event count, then per event: varint event number, varint
//!            length, bytes
//! entries    to the end of the datagram, each: varint stream, varint key,
//!            varint value number, u8 kind, then kind 0 (full): varint
//!            length, bytes; kind 1 (delta): varint base value number,
//!            varint length, delta bytes; kind 2: removed
//! ```

use crate::session::protocol::{put_varint, DatagramError, Reader};

/// Version of the state datagrams.
pub const STATE_VERSION: u8 = 1;
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
    put_varint(out, events.len() as u64);
    for (seq, bytes) in events {
        put_varint(out, u64::from(*seq));
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

/// Append one entry.
pub(crate) fn put_entry(out: &mut Vec<u8>, entry: &Entry<'_>) {
    put_varint(out, u64::from(entry.stream));
    put_varint(out, entry.key);
    put_varint(out, u64::from(entry.seq));
    match entry.body {
        Body::Full(bytes) => {
            out.push(0);
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Body::Delta { base, delta } => {
            out.push(1);
            put_varint(out, u64::from(base));
            put_varint(out, delta.len() as u64);
            out.extend_from_slice(delta);
        }
        Body::Removed => out.push(2),
    }
}

/// The bytes an entry takes (to keep a datagram under its limit).
pub(crate) fn entry_size(entry: &Entry<'_>) -> usize {
    let mut out = Vec::with_capacity(32);
    put_entry(&mut out, entry);
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
    while !r.at_end() {
        let stream = u16::try_from(r.varint()?).map_err(|_| DatagramError::Malformed("stream"))?;
        let key = r.varint()?;
        let seq = u32_of(r.varint()?, "value number")?;
        let body = match r.u8()? {
            0 => {
                let len = r.varint()?;
                if len > max_value as u64 {
                    return Err(DatagramError::Malformed("value length"));
                }
                Body::Full(slice(&mut r, len)?)
            }
            1 => {
                let base = u32_of(r.varint()?, "base")?;
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
        entries.push(Entry {
            stream,
            key,
            seq,
            body,
        });
    }
    Ok(Decoded {
        header: Header { seq, ack, ack_bits },
        events,
        entries,
    })
}

/// `len` bytes of the datagram, borrowed from it.
fn slice<'a>(r: &mut Reader<'a>, len: u64) -> Result<&'a [u8], DatagramError> {
    let len = usize::try_from(len).map_err(|_| DatagramError::Truncated)?;
    r.take(len)
}
