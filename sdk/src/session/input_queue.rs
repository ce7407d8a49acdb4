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

/// Confirmed inputs of one player for frames `first ..= last`.
#[derive(Debug, Clone, Default)]
pub(crate) struct InputQueue {
    first: Frame,
    inputs: VecDeque<Vec<u8>>,
}

impl InputQueue {
    /// The last frame with a confirmed input.
    pub(crate) fn last_frame(&self) -> Option<Frame> {
        (!self.inputs.is_empty()).then(|| self.first + self.inputs.len() as Frame - 1)
    }

    /// The frame the next confirmed input must be for.
    pub(crate) fn next_frame(&self) -> Frame {
        self.first + self.inputs.len() as Frame
    }

    /// The confirmed input of `frame`, if held.
    pub(crate) fn get(&self, frame: Frame) -> Option<&[u8]> {
        let i = frame.checked_sub(self.first)? as usize;
        self.inputs.get(i).map(Vec::as_slice)
    }

    /// The newest confirmed input (the basis of predictions).
    pub(crate) fn latest(&self) -> Option<&[u8]> {
        self.inputs.back().map(Vec::as_slice)
    }

    /// Append the input of the next frame.
    pub(crate) fn push(&mut self, bytes: Vec<u8>) {
        self.inputs.push_back(bytes);
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
        while self.first < frame && self.inputs.len() > 1 {
            self.inputs.pop_front();
            self.first += 1;
        }
    }

    /// Decode `runs` (starting at frame `start`) and append the frames this queue
    /// lacks. `valid` checks each distinct new input; `on_append(frame, latest, new)`
    /// sees each appended frame with the input held before it. A `Disconnected` run
    /// appends `default` placeholders and ends the list; its first frame is returned.
    pub(crate) fn receive_runs(
        &mut self,
        start: Frame,
        runs: &[Run],
        default: &[u8],
        valid: &mut dyn FnMut(&[u8]) -> bool,
        on_append: &mut OnAppend<'_>,
    ) -> Result<Option<Frame>, BadRuns> {
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
                return Ok(None);
            }
            if let Run::Disconnected(_) = run {
                while self.next_frame() < end {
                    self.push(default.to_vec());
                }
                return Ok(Some(frame));
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
        Ok(None)
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
    }
}
