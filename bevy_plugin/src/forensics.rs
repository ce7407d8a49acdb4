//! Desync forensics between peers: at every checksummed frame the plugin keeps
//! the hash of each rolled-back value; when the session detects a desync, the
//! two peers swap those hashes for that frame over the reliable channel, and
//! each names the same diverging values (type and rollback id) — what
//! sync-test does on one machine, across machines.
//!
//! Report message (reliable channel, one per desync and peer):
//!
//! ```text
//! "RPF" 1          magic and version
//! varint frame
//! u8 flags         bit 0: the sender had the frame's values; bit 1: cut short
//! varint types     then per type: varint name length, name, varint values,
//!                  per value: u8 has-id, [varint rollback id], u64 hash
//! ```

use std::collections::BTreeMap;

use bevy::prelude::*;
use rtcplay::session::Frame;
use rtcplay::transport::PeerId;

use crate::desync::{differing_ids, DivergedValue};
use crate::rollback_id::{Rollback, RollbackId};
use crate::snapshot::SnapshotRegistry;
use crate::transfer::{put_varint, Cursor};

/// Checksummed frames whose value hashes are kept.
const KEEP_FRAMES: usize = 16;
/// Desynced frames exchanged per peer (a desync usually repeats at every later
/// checksum; the first ones say what diverged).
const REPORTS_PER_PEER: usize = 4;
/// A report stays under the transport's message limit.
const MAX_REPORT: usize = 60 * 1024;
const MAGIC: &[u8; 4] = b"RPF\x01";
const KNOWN: u8 = 1;
const CUT: u8 = 2;

/// One type's value hashes by rollback id (a resource: id `None`), sorted.
type TypeValues = (String, Vec<(Option<RollbackId>, u64)>);

/// What the two peers' values of a desynced frame show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesyncReport {
    /// The frame whose state differs.
    pub frame: Frame,
    /// The peer whose state differs from ours.
    pub peer: PeerId,
    /// The values that differ (or exist on one side only), by type then id.
    pub values: Vec<DivergedValue>,
    /// Every value of the differing types was compared (false: a side no
    /// longer had the frame's values, or the report hit the size limit).
    pub complete: bool,
    /// Where the report was written (next to the replay being recorded).
    pub file: Option<String>,
}

/// Value hashes of recent checksummed frames, and reports waiting to go out.
#[derive(Resource, Default)]
pub(crate) struct ForensicsTrace {
    frames: BTreeMap<Frame, Vec<TypeValues>>,
    /// (peer, report bytes) to send on the reliable channel.
    pub(crate) outbox: Vec<(PeerId, Vec<u8>)>,
    sent: BTreeMap<PeerId, usize>,
}

impl ForensicsTrace {
    /// Keep the live values as the state of `frame` (call right after its save;
    /// a later save of the same frame, after a rollback, replaces them).
    pub(crate) fn record(
        &mut self,
        registry: &mut SnapshotRegistry,
        world: &mut World,
        frame: Frame,
    ) {
        let values = registry
            .value_hashes(world)
            .into_iter()
            .map(|(index, values)| (registry.type_name(index).to_string(), values))
            .collect();
        self.frames.insert(frame, values);
        while self.frames.len() > KEEP_FRAMES {
            self.frames.pop_first();
        }
    }

    /// The session found `frame` desynced with `peer` in `parts` (type names;
    /// empty: unknown): queue our values of those types for the peer.
    pub(crate) fn on_desync(&mut self, frame: Frame, peer: PeerId, parts: &[String]) {
        let sent = self.sent.entry(peer).or_default();
        if *sent >= REPORTS_PER_PEER {
            return;
        }
        *sent += 1;
        let ours = self.frames.get(&frame);
        let mut out = MAGIC.to_vec();
        put_varint(&mut out, u64::from(frame));
        let flags_at = out.len();
        out.push(if ours.is_some() { KNOWN } else { 0 });
        let types: Vec<&TypeValues> = ours
            .map(|all| {
                all.iter()
                    .filter(|(name, _)| parts.is_empty() || parts.contains(name))
                    .collect()
            })
            .unwrap_or_default();
        put_varint(&mut out, types.len() as u64);
        for (name, values) in types {
            put_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            let room = MAX_REPORT.saturating_sub(out.len() + 10) / 17;
            if values.len() > room {
                out[flags_at] |= CUT;
            }
            let values = &values[..values.len().min(room)];
            put_varint(&mut out, values.len() as u64);
            for (id, hash) in values {
                match id {
                    Some(id) => {
                        out.push(1);
                        put_varint(&mut out, id.0);
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(&hash.to_le_bytes());
            }
        }
        self.outbox.push((peer, out));
    }

    /// Compare a peer's report with our values of the same frame; `None` when
    /// the bytes are not a report.
    #[cfg_attr(not(any(feature = "native", feature = "web")), allow(dead_code))]
    pub(crate) fn compare(
        &self,
        world: &mut World,
        peer: PeerId,
        bytes: &[u8],
    ) -> Option<DesyncReport> {
        let (frame, flags, theirs) = decode_report(bytes).ok()?;
        let ours = self.frames.get(&frame);
        let mut live = world.query::<(Entity, &Rollback)>();
        let entities: BTreeMap<RollbackId, Entity> =
            live.iter(world).map(|(e, r)| (r.id(), e)).collect();
        let mut values = Vec::new();
        for (name, their_values) in &theirs {
            let Some((_, our_values)) = ours.and_then(|o| o.iter().find(|(n, _)| n == name)) else {
                continue;
            };
            let our_values = if flags & CUT != 0 {
                // Compare only the ids they had room for.
                let last = their_values.last().map(|(id, _)| *id);
                &our_values[..our_values.partition_point(|(id, _)| Some(*id) <= last)]
            } else {
                our_values.as_slice()
            };
            for rollback_id in differing_ids(our_values, their_values) {
                values.push(DivergedValue {
                    type_name: name.clone(),
                    rollback_id,
                    entity: rollback_id.and_then(|id| entities.get(&id).copied()),
                });
            }
        }
        Some(DesyncReport {
            frame,
            peer,
            values,
            complete: ours.is_some() && flags & KNOWN != 0 && flags & CUT == 0,
            file: None,
        })
    }
}

/// (frame, flags, types) of a report; every length checked against the bytes.
#[cfg_attr(not(any(feature = "native", feature = "web")), allow(dead_code))]
fn decode_report(bytes: &[u8]) -> Result<(Frame, u8, Vec<TypeValues>), String> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not a desync report")?;
    let mut c = Cursor::new(rest);
    let frame = Frame::try_from(c.varint()?).map_err(|_| "frame")?;
    let flags = c.take(1)?[0];
    let types = c.count()?;
    let mut out = Vec::with_capacity(types.min(64));
    for _ in 0..types {
        let len = c.count()?;
        let name = String::from_utf8(c.take(len)?.to_vec()).map_err(|_| "type name")?;
        let n = c.count()?;
        let mut values = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let id = match c.take(1)?[0] {
                0 => None,
                1 => Some(RollbackId(c.varint()?)),
                _ => return Err("value id".into()),
            };
            values.push((id, c.u64()?));
        }
        // `differing_ids` walks both lists in id order.
        if values.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("values out of order".into());
        }
        out.push((name, values));
    }
    if !c.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok((frame, flags, out))
}

/// A report as text, for the file written beside the replay.
#[cfg_attr(not(any(feature = "native", feature = "web")), allow(dead_code))]
pub(crate) fn report_text(report: &DesyncReport, replay: Option<&str>) -> String {
    let mut text = format!(
        "rtcplay desync report\nframe: {}\npeer: {}\ncompared every value: {}\ndiffering values (type, rollback id):\n",
        report.frame, report.peer, report.complete
    );
    for v in &report.values {
        text.push_str(&format!("  {v}\n"));
    }
    if let Some(replay) = replay {
        text.push_str(&format!(
            "replay of this peer: {replay}\nreproduce: play the other peer's replay in this build (its recorded checksum of frame {} is kept); the first difference names the frame and types\n",
            report.frame
        ));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reports_decode_and_bad_ones_are_refused() {
        let mut trace = ForensicsTrace::default();
        trace.frames.insert(
            30,
            vec![
                (
                    "Pos".into(),
                    vec![(Some(RollbackId(1)), 5), (Some(RollbackId(2)), 6)],
                ),
                ("Score".into(), vec![(None, 9)]),
            ],
        );
        trace.on_desync(30, PeerId(1), &["Pos".to_string()]);
        let (_, bytes) = trace.outbox.pop().unwrap();
        let (frame, flags, types) = decode_report(&bytes).unwrap();
        assert_eq!((frame, flags, types.len()), (30, KNOWN, 1));
        assert_eq!(types[0].1.len(), 2);
        for cut in 0..bytes.len() {
            assert!(decode_report(&bytes[..cut]).is_err());
        }
        let mut swapped = bytes.clone();
        let n = swapped.len();
        swapped.truncate(n - 18);
        assert!(decode_report(&swapped).is_err());
        // Only four reports per peer.
        for _ in 0..10 {
            trace.on_desync(60, PeerId(1), &[]);
        }
        assert_eq!(trace.outbox.len(), 3);
    }
}
