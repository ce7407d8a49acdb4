//! One player's confirmed inputs, as encoded bytes, contiguous by frame.

use std::collections::VecDeque;

use super::protocol::{apply_change, Run};
use super::Frame;

/// A run list that does not fit: a missing or mismatched base input, or an input
/// the game's type rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadRuns;

/// Called for each appended frame with the input held before it and the new one.
pub(crate) type OnAppend<'a> = dyn FnMut(Frame, &[u8], &[u8]) + 'a;

/// Confirmed inputs of one player for frames `first ..= last`, stored as runs of
/// equal inputs (a held button costs nothing per frame, so a whole match's history
/// stays small).
#[derive(Debug, Clone, Default)]
pub(crate) struct InputQueue {
    first: Frame,
    /// Frames held: `first .. first + len`.
    len: Frame,
    /// (first frame, input) of each run, ascending; a run lasts until the next
    /// one starts (the last one until `first + len - 1`).
    runs: VecDeque<(Frame, Vec<u8>)>,
}

impl InputQueue {
    /// A queue whose first held frame is `frame`, with `input` there.
    pub(crate) fn starting_at(frame: Frame, input: Vec<u8>) -> Self {
        InputQueue {
            first: frame,
            len: 1,
            runs: VecDeque::from([(frame, input)]),
        }
    }

    /// An empty queue whose first input will be for `frame`.
    pub(crate) fn empty_at(frame: Frame) -> Self {
        InputQueue {
            first: frame,
            len: 0,
            runs: VecDeque::new(),
        }
    }

    /// Append `frames` frames of `bytes`.
    pub(crate) fn push_run(&mut self, bytes: &[u8], frames: Frame) {
        if frames == 0 {
            return;
        }
        if self.latest() != Some(bytes) {
            self.runs.push_back((self.next_frame(), bytes.to_vec()));
        }
        self.len += frames;
    }

    /// Forget the inputs of `frame` and later: the next input is for `frame` (or
    /// for the first held frame, if `frame` is before it).
    pub(crate) fn truncate(&mut self, frame: Frame) {
        if frame >= self.next_frame() {
            return;
        }
        let keep = frame.saturating_sub(self.first);
        while self
            .runs
            .back()
            .is_some_and(|(start, _)| *start >= self.first + keep)
        {
            self.runs.pop_back();
        }
        self.len = keep;
    }

    /// Append `input` until the next input is for `frame`.
    pub(crate) fn fill_until(&mut self, frame: Frame, input: &[u8]) {
        while self.next_frame() < frame {
            self.push(input.to_vec());
        }
    }

    /// The last frame with a confirmed input.
    pub(crate) fn last_frame(&self) -> Option<Frame> {
        (self.len > 0).then(|| self.first + self.len - 1)
    }

    /// The frame the next confirmed input must be for.
    pub(crate) fn next_frame(&self) -> Frame {
        self.first + self.len
    }

    /// The confirmed input of `frame`, if held.
    pub(crate) fn get(&self, frame: Frame) -> Option<&[u8]> {
        if frame < self.first || frame >= self.next_frame() {
            return None;
        }
        // Most lookups are of recent frames: try the newest runs before searching.
        for (start, input) in self.runs.iter().rev().take(4) {
            if *start <= frame {
                return Some(input.as_slice());
            }
        }
        let run = self.runs.partition_point(|(start, _)| *start <= frame);
        self.runs
            .get(run.checked_sub(1)?)
            .map(|(_, v)| v.as_slice())
    }

    /// The held inputs of frames `from..to` as runs (frames, input), in order;
    /// frames not held (before the first or from `next_frame` on) are left out.
    pub(crate) fn runs_in(&self, from: Frame, to: Frame) -> impl Iterator<Item = (Frame, &[u8])> {
        let (from, to) = (from.max(self.first), to.min(self.next_frame()));
        let start = self
            .runs
            .partition_point(|(start, _)| *start <= from)
            .saturating_sub(1);
        self.runs
            .range(start..)
            .enumerate()
            .map_while(move |(i, (run_start, input))| {
                let run_end = self
                    .runs
                    .get(start + i + 1)
                    .map_or(self.next_frame(), |(next, _)| *next);
                let (a, b) = ((*run_start).max(from), run_end.min(to));
                (a < to).then_some((b.saturating_sub(a), input.as_slice()))
            })
            .filter(|(frames, _)| *frames > 0)
    }

    /// The newest confirmed input (the basis of predictions).
    pub(crate) fn latest(&self) -> Option<&[u8]> {
        self.runs.back().map(|(_, v)| v.as_slice())
    }

    /// Append the input of the next frame.
    pub(crate) fn push(&mut self, bytes: Vec<u8>) {
        let frame = self.next_frame();
        if self.latest() != Some(bytes.as_slice()) {
            self.runs.push_back((frame, bytes));
        }
        self.len += 1;
    }

    /// Add a local input for `frame`: frames skipped since the last input (input
    /// delay grew) repeat the last input, or `default` at the start; an input for a
    /// frame already filled (input delay shrank) is ignored. Returns whether it was
    /// stored.
    pub(crate) fn add_local(&mut self, frame: Frame, bytes: Vec<u8>, default: &[u8]) -> bool {
        if frame < self.next_frame() {
            return false;
        }
        while self.next_frame() < frame {
            let fill = self.latest().unwrap_or(default).to_vec();
            self.push(fill);
        }
        self.push(bytes);
        true
    }

    /// Forget inputs before `frame`, always keeping the newest one.
    pub(crate) fn discard_before(&mut self, frame: Frame) {
        let Some(last) = self.last_frame() else {
            return;
        };
        let keep = frame.min(last);
        if keep <= self.first {
            return;
        }
        while self.runs.get(1).is_some_and(|(start, _)| *start <= keep) {
            self.runs.pop_front();
        }
        if let Some(run) = self.runs.front_mut() {
            run.0 = keep;
        }
        self.len -= keep - self.first;
        self.first = keep;
    }

    /// Decode `runs` (starting at frame `start`) and append the frames this queue
    /// lacks. `valid` checks each distinct new input; `on_append(frame, latest, new)`
    /// sees each appended frame with the input held before it. A `Disconnected` run
    /// appends `default` placeholders and is reported to `on_absent` with its first
    /// frame (a spectator's host sends them for absent players).
    pub(crate) fn receive_runs(
        &mut self,
        start: Frame,
        runs: &[Run],
        default: &[u8],
        valid: &mut dyn FnMut(&[u8]) -> bool,
        on_append: &mut OnAppend<'_>,
        on_absent: &mut dyn FnMut(Frame),
    ) -> Result<(), BadRuns> {
        let mut frame = start;
        let mut prev: Option<Vec<u8>> = frame
            .checked_sub(1)
            .and_then(|f| self.get(f))
            .map(<[u8]>::to_vec);
        for run in runs {
            let end = frame.saturating_add(run.count());
            let next = self.next_frame();
            if frame > next {
                // A gap: frames we lack were skipped. Wait for a resend.
                return Ok(());
            }
            if let Run::Disconnected(_) = run {
                if end > next {
                    on_absent(frame);
                    self.fill_until(end, default);
                }
                prev = Some(default.to_vec());
                frame = end;
                continue;
            }
            if end <= next {
                // Already held: only its value matters, as the next run's base.
                prev = self.get(end - 1).map(<[u8]>::to_vec);
                frame = end;
                continue;
            }
            let value = apply_change(run, prev.as_deref()).ok_or(BadRuns)?;
            if !valid(&value) {
                return Err(BadRuns);
            }
            for f in next..end {
                on_append(f, self.latest().unwrap_or(default), &value);
                self.push(value.clone());
            }
            prev = Some(value);
            frame = end;
        }
        Ok(())
    }

    /// The oldest frame held.
    pub(crate) fn first_frame(&self) -> Frame {
        self.first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_changes_fill_and_skip() {
        let mut q = InputQueue::default();
        assert!(q.add_local(2, vec![5], &[0]));
        assert_eq!(q.get(0), Some(&[0][..]));
        assert_eq!(q.get(2), Some(&[5][..]));
        // Delay grew by two: frames 3 and 4 repeat the last input.
        assert!(q.add_local(5, vec![6], &[0]));
        assert_eq!(q.get(4), Some(&[5][..]));
        // Delay shrank: an input for a filled frame is ignored.
        assert!(!q.add_local(4, vec![7], &[0]));
        assert_eq!(q.last_frame(), Some(5));
        q.discard_before(4);
        assert_eq!(q.get(3), None);
        assert_eq!(q.get(4), Some(&[5][..]));
        q.discard_before(100);
        assert_eq!(q.latest(), Some(&[6][..]));
        assert_eq!((q.first_frame(), q.last_frame()), (5, Some(5)));
    }

    #[test]
    fn runs_in_a_span() {
        let mut q = InputQueue::starting_at(10, vec![1]);
        q.push_run(&[1], 4);
        q.push_run(&[2], 3);
        q.push_run(&[3], 2);
        // Frames 10-14: 1, 15-17: 2, 18-19: 3.
        let runs = |a, b| q.runs_in(a, b).map(|(n, v)| (n, v[0])).collect::<Vec<_>>();
        assert_eq!(runs(10, 20), vec![(5, 1), (3, 2), (2, 3)]);
        assert_eq!(runs(12, 16), vec![(3, 1), (1, 2)]);
        assert_eq!(runs(15, 18), vec![(3, 2)]);
        assert_eq!(runs(0, 11), vec![(1, 1)]);
        assert_eq!(runs(19, 40), vec![(1, 3)]);
        assert_eq!(runs(20, 40), vec![]);
        for f in 10..20 {
            assert_eq!(runs(f, f + 1), vec![(1, q.get(f).expect("held")[0])]);
        }
    }

    #[test]
    fn truncate_and_fill() {
        let mut q = InputQueue::starting_at(10, vec![1]);
        q.push(vec![1]);
        q.push(vec![2]);
        q.push(vec![3]);
        assert_eq!(q.next_frame(), 14);
        q.truncate(12);
        assert_eq!((q.next_frame(), q.latest()), (12, Some(&[1][..])));
        q.fill_until(15, &[0]);
        assert_eq!(
            (q.get(12), q.get(14), q.next_frame()),
            (Some(&[0][..]), Some(&[0][..]), 15)
        );
        q.truncate(3);
        assert_eq!((q.next_frame(), q.latest()), (10, None));
        q.push(vec![7]);
        assert_eq!(q.get(10), Some(&[7][..]));
    }

    #[test]
    fn runs_of_equal_inputs_share_one_entry() {
        let mut q = InputQueue::default();
        for f in 0..1000u32 {
            q.push(vec![(f / 100) as u8]);
        }
        assert_eq!(q.runs.len(), 10);
        // Both the newest-first scan (the last four runs) and the binary search.
        for f in [0, 99, 100, 555, 650, 999] {
            assert_eq!(q.get(f), Some(&[(f / 100) as u8][..]), "frame {f}");
        }
        assert_eq!(q.get(1000), None);
        q.discard_before(250);
        assert_eq!(q.get(249), None);
        assert_eq!(q.get(250), Some(&[2][..]));
        assert_eq!(q.get(300), Some(&[3][..]));
        assert_eq!((q.first_frame(), q.next_frame()), (250, 1000));
        assert_eq!(q.runs.len(), 8);
    }
}
