//! When a player was away: the stretches of frames in which its input counts as
//! `Disconnected`, as every peer must agree on them.
//!
//! A player that leaves opens an absence at the first frame without its input; a
//! player that rejoins closes it at the frame `F` from which its inputs count
//! again. Peers exchange these lists in their datagrams and merge them: the
//! earliest start of an absence wins (as the single disconnect frame always did),
//! and a close, once known, is final.

use super::Frame;

/// Most absences one player may have in a match: up to three rejoins, plus the
/// final departure. Keeps the status list of a datagram bounded.
pub(crate) const MAX_ABSENCES: usize = 4;

/// Frames `from..until` (or `from..` while `until` is `None`) without the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Absence {
    pub from: Frame,
    pub until: Option<Frame>,
}

/// What merging a peer's view of one player changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MergeOutcome {
    /// The earliest frame whose inputs now read differently (a rollback target).
    pub changed_from: Option<Frame>,
    /// The open absence was closed at this frame.
    pub closed_at: Option<Frame>,
    /// The views contradict each other (two different closes); nothing was taken.
    pub conflict: bool,
}

impl MergeOutcome {
    fn touch(&mut self, frame: Frame) {
        self.changed_from = Some(self.changed_from.map_or(frame, |f| f.min(frame)));
    }
}

/// One player's absences, oldest first; only the last may be open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Absences(Vec<Absence>);

impl Absences {
    /// Whether the player's input of `frame` counts as disconnected.
    pub(crate) fn contains(&self, frame: Frame) -> bool {
        self.0
            .iter()
            .rev()
            .any(|a| frame >= a.from && a.until.is_none_or(|u| frame < u))
    }

    /// The open absence's first frame, if the player is away now.
    pub(crate) fn open_from(&self) -> Option<Frame> {
        self.0.last().filter(|a| a.until.is_none()).map(|a| a.from)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn as_slice(&self) -> &[Absence] {
        &self.0
    }

    /// The player is away from `from` on. Returns whether anything changed: a new
    /// absence, or an earlier start of the open one. A player with
    /// [`MAX_ABSENCES`] absences keeps its last one.
    pub(crate) fn open(&mut self, from: Frame) -> bool {
        let full = self.0.len() >= MAX_ABSENCES;
        match self.0.last_mut() {
            Some(a) if a.until.is_none() => {
                if from < a.from {
                    a.from = from;
                    return true;
                }
                false
            }
            Some(a) if a.until.is_some_and(|u| from < u) => false,
            _ if full => false,
            _ => {
                self.0.push(Absence { from, until: None });
                true
            }
        }
    }

    /// Close the open absence at `until` (the player's inputs count again from
    /// there). Returns false when nothing is open or `until` is not after its start.
    pub(crate) fn close(&mut self, until: Frame) -> bool {
        match self.0.last_mut() {
            Some(a) if a.until.is_none() && until > a.from => {
                a.until = Some(until);
                true
            }
            _ => false,
        }
    }

    /// Whether another rejoin fits (one slot always stays for a final departure).
    pub(crate) fn can_rejoin(&self) -> bool {
        self.0.len() < MAX_ABSENCES
    }

    /// Take in a peer's view of this player (a list that passed [`is_valid`]).
    pub(crate) fn merge(&mut self, theirs: &[Absence]) -> MergeOutcome {
        let mut out = MergeOutcome::default();
        for (i, t) in theirs.iter().enumerate() {
            let last = i + 1 == self.0.len();
            match self.0.get_mut(i) {
                Some(ours) => {
                    if let (Some(a), Some(b)) = (ours.until, t.until) {
                        if a != b {
                            out.conflict = true;
                            return out;
                        }
                    }
                    if t.from < ours.from && ours.until.is_none_or(|u| t.from < u) {
                        ours.from = t.from;
                        out.touch(t.from);
                    }
                    if let (None, Some(until)) = (ours.until, t.until) {
                        if until > ours.from && last {
                            ours.until = Some(until);
                            out.closed_at = Some(until);
                            out.touch(until);
                        }
                    }
                }
                None => {
                    let after_last = self.0.last().map_or(Some(0), |a| a.until);
                    match after_last {
                        Some(end) if t.from >= end && self.0.len() < MAX_ABSENCES => {
                            self.0.push(Absence {
                                from: t.from,
                                until: None,
                            });
                            out.touch(t.from);
                            if let Some(until) = t.until {
                                self.0[i].until = Some(until);
                                out.closed_at = Some(until);
                            }
                        }
                        _ => return out,
                    }
                }
            }
        }
        out
    }

    /// A small digest of the list (checksums are compared only between states
    /// computed under the same absences).
    pub(crate) fn fold(&self, acc: u8) -> u8 {
        self.0.iter().fold(acc, |acc, a| {
            acc.wrapping_mul(31)
                .wrapping_add((a.from as u8).wrapping_add(1))
                .wrapping_mul(31)
                .wrapping_add(a.until.map_or(0, |u| (u as u8).wrapping_add(1)))
        })
    }
}

impl From<Vec<Absence>> for Absences {
    fn from(list: Vec<Absence>) -> Self {
        Absences(list)
    }
}

/// Whether a list read from the network is well formed: at most [`MAX_ABSENCES`],
/// ascending, every close after its start, only the last one open.
pub(crate) fn is_valid(list: &[Absence]) -> bool {
    if list.len() > MAX_ABSENCES {
        return false;
    }
    let mut end: Frame = 0;
    for (i, a) in list.iter().enumerate() {
        if a.from < end {
            return false;
        }
        match a.until {
            Some(u) if u > a.from => end = u,
            Some(_) => return false,
            None if i + 1 == list.len() => {}
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(from: Frame, until: Frame) -> Absence {
        Absence {
            from,
            until: Some(until),
        }
    }

    fn open(from: Frame) -> Absence {
        Absence { from, until: None }
    }

    #[test]
    fn open_close_and_contains() {
        let mut a = Absences::default();
        assert!(!a.contains(5));
        assert!(a.open(100));
        assert!(!a.open(120), "a later start does not move the open absence");
        assert!(a.open(90), "an earlier start does");
        assert!(a.contains(90) && a.contains(10_000) && !a.contains(89));
        assert!(!a.close(90), "a close must follow the start");
        assert!(a.close(150));
        assert!(a.contains(149) && !a.contains(150));
        assert_eq!(a.open_from(), None);
        assert!(!a.open(140), "inside a closed absence: nothing new");
        assert!(a.open(300));
        assert_eq!(a.open_from(), Some(300));
        assert!(a.contains(120) && !a.contains(200) && a.contains(300));
    }

    #[test]
    fn merge_takes_the_earliest_start_and_a_close_once() {
        let mut ours = Absences::from(vec![open(100)]);
        let got = ours.merge(&[open(95)]);
        assert_eq!(got.changed_from, Some(95));
        assert_eq!(ours.open_from(), Some(95));
        let got = ours.merge(&[closed(95, 160)]);
        assert_eq!(got.closed_at, Some(160));
        assert_eq!(ours.as_slice(), &[closed(95, 160)]);
        // An old view (still open) changes nothing; another close conflicts.
        assert_eq!(ours.merge(&[open(95)]), MergeOutcome::default());
        assert!(ours.merge(&[closed(95, 170)]).conflict);
        // A later departure is appended.
        let got = ours.merge(&[closed(95, 160), open(400)]);
        assert_eq!(got.changed_from, Some(400));
        assert_eq!(ours.open_from(), Some(400));
    }

    #[test]
    fn merge_of_an_unknown_absence_with_its_close() {
        let mut ours = Absences::default();
        let got = ours.merge(&[closed(10, 40)]);
        assert_eq!((got.changed_from, got.closed_at), (Some(10), Some(40)));
        assert!(ours.contains(39) && !ours.contains(40));
    }

    #[test]
    fn validity_of_lists_from_the_network() {
        assert!(is_valid(&[]));
        assert!(is_valid(&[closed(1, 5), closed(5, 9), open(20)]));
        assert!(!is_valid(&[open(5), closed(10, 20)]), "open in the middle");
        assert!(!is_valid(&[closed(5, 5)]), "empty absence");
        assert!(!is_valid(&[closed(10, 20), open(15)]), "overlap");
        assert!(!is_valid(&[open(1); MAX_ABSENCES + 1]));
    }

    #[test]
    fn the_slot_limit_keeps_the_last_departure() {
        let mut a = Absences::default();
        for i in 0..MAX_ABSENCES as Frame - 1 {
            assert!(a.open(i * 10));
            assert!(a.can_rejoin());
            assert!(a.close(i * 10 + 5));
        }
        // The last slot: the player may leave once more, but not come back.
        assert!(a.open(100));
        assert!(!a.can_rejoin());
        assert_eq!(a.open_from(), Some(100));
    }
}
