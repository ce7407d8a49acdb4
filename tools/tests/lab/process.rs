//! Child processes of the lab: killed and reaped when dropped, and lab peers whose
//! stdout lines are timestamped on arrival.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Guarded {
    name: String,
    child: Option<Child>,
}

impl Guarded {
    /// Take ownership of `child`.
    pub fn new(name: &str, child: Child) -> Guarded {
        Guarded {
            name: name.to_string(),
            child: Some(child),
        }
    }

    /// SIGKILL the process now and reap it. Returns when it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Wait up to `timeout` for the process to exit by itself; `true` if it exited
    /// successfully.
    pub fn wait_success(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} was already killed", self.name));
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => return Err(format!("{} did not exit within {timeout:?}", self.name)),
                Err(e) => return Err(format!("{}: {e}", self.name)),
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One line a lab peer printed, and when the lab read it.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the line arrived.
    pub at: Instant,
    /// The text, without the newline.
    pub text: String,
}

/// A `rtcplay-lab-peer` process (the sdk's test game over the real socket) in a namespace.
#[derive(Debug)]
pub struct LabPeer {
    /// Index of the player in the lab.
    pub index: usize,
    process: Guarded,
    lines: Receiver<Line>,
    /// Every line read so far.
    pub seen: Vec<Line>,
}

impl LabPeer {
    /// Start player `index` in namespace `ns` with the given `rtcplay-lab-peer` arguments.
    pub fn spawn(index: usize, ns: &str, args: &[String]) -> Result<LabPeer, String> {
        let binary = env!("CARGO_BIN_EXE_rtcplay-lab-peer");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start rtcplay-lab-peer: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx
                    .send(Line {
                        at: Instant::now(),
                        text,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(LabPeer {
            index,
            process: Guarded::new(&format!("rtcplay-lab-peer {index}"), child),
            lines,
            seen: Vec::new(),
        })
    }

    /// Wait up to `timeout` for a line starting with `prefix` (lines already seen
    /// count too). Fails early when the process exits without printing it.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> Result<Line, String> {
        if let Some(line) = self.seen.iter().find(|l| l.text.starts_with(prefix)) {
            return Ok(line.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.text.starts_with(prefix) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "player {} printed no `{prefix}` within {timeout:?}; it printed: {:?}",
                        self.index,
                        self.texts()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "player {} exited without printing `{prefix}`; it printed: {:?}",
                        self.index,
                        self.texts()
                    ))
                }
            }
        }
    }

    /// Read whatever has arrived without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Every line seen so far.
    pub fn texts(&self) -> Vec<String> {
        self.seen.iter().map(|l| l.text.clone()).collect()
    }

    /// SIGKILL the peer.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Wait for the peer to exit successfully.
    pub fn finish(&mut self, timeout: Duration) -> Result<(), String> {
        match self.process.wait_success(timeout)? {
            true => {
                self.drain();
                Ok(())
            }
            false => {
                self.drain();
                Err(format!(
                    "player {} failed; it printed: {:?}",
                    self.index,
                    self.texts()
                ))
            }
        }
    }
}
