//! Running the built `rtcplay-demo` binary as separate processes.

#![allow(dead_code, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rtcplay-demo");

/// A running demo process whose stdout lines are collected by a thread.
pub struct Demo {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Demo {
    pub fn start(args: &[&str]) -> Demo {
        Self::start_with_env(args, &[])
    }

    /// Start with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Demo {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rtcplay-demo");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                s.push_str(&line);
                s.push('\n');
            }
            s
        });
        Demo {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// Wait for a stdout line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; stdout so far:\n{}",
                    self.stdout.join("\n")
                ),
            }
        }
    }

    /// Wait for the exit (killing the process after `timeout`); returns the status,
    /// all stdout lines and stderr.
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().unwrap();
                let stderr = self.stderr.join().unwrap();
                panic!(
                    "rtcplay-demo did not finish within {timeout:?} ({status}); stdout:\n{}\nstderr:\n{stderr}",
                    self.stdout.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.join().unwrap();
        self.stdout.extend(self.lines.try_iter());
        (status, self.stdout, stderr)
    }
}

/// Start a host process; returns it and its signaling URL.
pub fn host(extra: &[&str]) -> (Demo, String) {
    let mut args = vec!["--host", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut demo = Demo::start(&args);
    let line = demo.wait_line("signaling server listening on", Duration::from_secs(30));
    let url = line.rsplit(' ').next().unwrap().to_string();
    (demo, url)
}

/// The `checksum` value printed by a finished `--frames` run.
pub fn checksum(stdout: &[String]) -> String {
    stdout
        .iter()
        .find_map(|l| l.split("checksum ").nth(1).map(str::to_string))
        .unwrap_or_else(|| panic!("no checksum printed; stdout:\n{}", stdout.join("\n")))
}

/// Play `players` headless bot processes for `frames` frames (the first hosts the
/// signaling server); assert every process exits 0 with the same checksum.
pub fn play(players: usize, frames: u32, netem: Option<&str>) -> Vec<Vec<String>> {
    play_recorded(players, frames, netem, None)
}

/// [`play`], each process recording its replay into `record_dir/player{i}.rtcreplay`.
pub fn play_recorded(
    players: usize,
    frames: u32,
    netem: Option<&str>,
    record_dir: Option<&std::path::Path>,
) -> Vec<Vec<String>> {
    let records: Vec<String> = (0..players)
        .map(|i| {
            record_dir.map_or_else(String::new, |d| {
                d.join(format!("player{i}.rtcreplay")).display().to_string()
            })
        })
        .collect();
    let record_args = |i: usize| -> Vec<&str> {
        if record_dir.is_some() {
            vec!["--record", records[i].as_str()]
        } else {
            Vec::new()
        }
    };
    let n = players.to_string();
    let f = frames.to_string();
    let room = format!("test-{players}-{}", netem.unwrap_or("none"));
    let mut common = vec![
        "--headless",
        "--bot",
        "--players",
        &n,
        "--frames",
        &f,
        "--room",
        &room,
    ];
    if let Some(preset) = netem {
        common.extend(["--netem", preset]);
    }
    let mut host_args = common.clone();
    host_args.extend(record_args(0));
    let (host, url) = host(&host_args);
    let mut demos = vec![host];
    for i in 1..players {
        let mut args = vec!["--signal", url.as_str()];
        args.extend_from_slice(&common);
        args.extend(record_args(i));
        demos.push(Demo::start(&args));
    }
    let results: Vec<_> = demos
        .into_iter()
        .map(|d| d.finish(Duration::from_secs(120)))
        .collect();
    let mut sums = Vec::new();
    for (status, stdout, stderr) in &results {
        assert!(
            status.success(),
            "exit {status}; stdout:\n{}\nstderr:\n{stderr}",
            stdout.join("\n")
        );
        sums.push(checksum(stdout));
    }
    for s in &sums[1..] {
        assert_eq!(s, &sums[0], "checksums differ: {sums:?}");
    }
    results.into_iter().map(|r| r.1).collect()
}
