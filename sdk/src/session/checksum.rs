//! Checksums of game states, optionally split into named parts, and the bookkeeping
//! that compares them between peers.

use std::collections::BTreeMap;

use super::protocol::ChecksumReport;
use super::Frame;
use crate::datagram::PeerId;

/// A checksum of one game state. `parts` name pieces of the state (a component or
/// resource type, say) so a desync report can say which piece differs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checksum {
    /// Checksum of the whole state.
    pub total: u64,
    /// Optional named parts (at most 64); peers must report the same names in the
    /// same order.
    pub parts: Vec<(String, u64)>,
}

impl Checksum {
    /// A checksum without parts.
    pub fn new(total: u64) -> Self {
        Checksum {
            total,
            parts: Vec::new(),
        }
    }

    /// Names of the parts whose values differ from `values` (all names when the
    /// counts differ).
    pub(crate) fn differing_parts(&self, values: &[u64]) -> Vec<String> {
        if self.parts.len() != values.len() {
            return self.parts.iter().map(|(n, _)| n.clone()).collect();
        }
        self.parts
            .iter()
            .zip(values)
            .filter(|((_, a), b)| a != *b)
            .map(|((n, _), _)| n.clone())
            .collect()
    }
}

/// A detected mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub frame: Frame,
    pub peer: PeerId,
    pub local: u64,
    pub remote: u64,
    pub parts: Vec<String>,
}

/// How many frames of checksums each side keeps waiting for its counterpart.
const KEEP: usize = 32;

/// Compares final local checksums with the ones peers report.
#[derive(Debug, Default)]
pub(crate) struct ChecksumTracker {
    local: BTreeMap<Frame, (u8, Checksum)>,
    remote: BTreeMap<(Frame, PeerId), ChecksumReport>,
}

impl ChecksumTracker {
    /// Record this peer's final checksum of `frame`, computed under `epoch`.
    pub(crate) fn add_local(&mut self, frame: Frame, epoch: u8, checksum: Checksum) {
        self.local.insert(frame, (epoch, checksum));
        while self.local.len() > KEEP {
            self.local.pop_first();
        }
    }

    /// This peer's final checksum of `frame`, if still kept.
    pub(crate) fn local(&self, frame: Frame) -> Option<&Checksum> {
        self.local.get(&frame).map(|(_, c)| c)
    }

    /// Record a report from `peer`.
    pub(crate) fn add_remote(&mut self, peer: PeerId, report: ChecksumReport) {
        self.remote.insert((report.frame, peer), report);
        while self.remote.len() > KEEP * 8 {
            self.remote.pop_first();
        }
    }

    /// Compare every pair available; pairs computed under different connection
    /// epochs (a disconnect not yet agreed on) are skipped, not reported.
    pub(crate) fn compare(&mut self, out: &mut Vec<Mismatch>) -> u64 {
        let mut done = Vec::new();
        for (&(frame, peer), report) in &self.remote {
            let Some((epoch, local)) = self.local.get(&frame) else {
                continue;
            };
            if *epoch != report.epoch {
                continue;
            }
            done.push((frame, peer));
            if local.total != report.total {
                out.push(Mismatch {
                    frame,
                    peer,
                    local: local.total,
                    remote: report.total,
                    parts: local.differing_parts(&report.parts),
                });
            }
        }
        let compared = done.len() as u64;
        for key in done {
            self.remote.remove(&key);
        }
        compared
    }
}
