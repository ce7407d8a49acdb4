//! The scripted 8-byte inputs both session benchmarks feed to every player.

/// A gamepad-like 8-byte input.
pub type PadInput = [u8; 8];

/// A deterministic input script: every 7–13 frames, one to three of the eight bytes
/// change (a button pressed, a stick moved) — an input "changing every ~10 frames".
#[derive(Debug, Clone)]
pub struct InputScript {
    state: u64,
    current: PadInput,
    next_change: u32,
}

impl InputScript {
    /// A script for one player.
    pub fn new(seed: u64) -> Self {
        InputScript {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            current: [0; 8],
            next_change: 10,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The input for the next frame.
    pub fn next_input(&mut self) -> PadInput {
        if self.next_change == 0 {
            let r = self.next_u64();
            let changes = 1 + (r % 3) as usize;
            for i in 0..changes {
                let byte = ((r >> (8 + 8 * i)) % 8) as usize;
                self.current[byte] = (r >> (32 + 8 * i)) as u8;
            }
            self.next_change = 7 + ((r >> 60) % 7) as u32;
        } else {
            self.next_change -= 1;
        }
        self.current
    }
}
