//! Windowed smoke tests: the demo opens a window under Xvfb (software rendering),
//! plays a local match against a bot peer over WebRTC (or watches one as a
//! spectator), and saves a screenshot that is not blank. `.ci/test` installs xvfb
//! and mesa-vulkan-drivers.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::BIN;

/// Start Xvfb on a free display; returns the process and the display name.
fn xvfb() -> (std::process::Child, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb not found: install xvfb (.ci/test does)");
    let mut out = child.stdout.take().unwrap();
    let mut number = String::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        number.push(byte[0] as char);
    }
    assert!(!number.is_empty(), "Xvfb reported no display");
    (child, format!(":{}", number.trim()))
}

/// A fresh screenshot path in a directory of its own.
fn shot_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcplay-demo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("shot.png");
    let _ = std::fs::remove_file(&shot);
    shot
}

/// Run the demo with a window on `display` until it exits (killed after 120 s);
/// its exit status, stdout and stderr.
fn run_windowed(args: &[&str], display: &str) -> (ExitStatus, String, String) {
    let mut demo = Command::new(BIN)
        .args(args)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = demo.kill();
            break demo.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    demo.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    demo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

/// The screenshot is a window-sized image with more than a few colours.
fn assert_not_blank(shot: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(
        info.width >= 640 && info.height >= 480,
        "{}x{}",
        info.width,
        info.height
    );
    let colors: HashSet<&[u8]> = bytes.chunks(channels).collect();
    // Background, arena floor, two player colours and HUD text at least.
    assert!(
        colors.len() >= 5,
        "screenshot looks blank: {} colours",
        colors.len()
    );
    if let Some(dir) = shot.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Run the demo with `args` in a window under a fresh Xvfb with `--screenshot`:
/// it exits 0 after saving a screenshot that is not blank.
fn assert_windowed_screenshot(name: &str, args: &[&str]) {
    let (mut x, display) = xvfb();
    let shot = shot_path(name);
    let mut args = args.to_vec();
    args.extend(["--screenshot", shot.to_str().unwrap()]);
    let (status, stdout, stderr) = run_windowed(&args, &display);
    let _ = x.kill();
    let _ = x.wait();
    assert!(
        status.success(),
        "{name}: exit {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("screenshot"), "{stdout}");
    assert_not_blank(&shot);
}

#[test]
fn windowed_match_renders_a_non_blank_screenshot() {
    assert_windowed_screenshot("shot", &["--bot", "--room", "window-smoke"]);
}

#[test]
fn windowed_state_sync_match_renders_a_non_blank_screenshot() {
    assert_windowed_screenshot(
        "state",
        &["--bot", "--room", "window-state", "--netcode", "state"],
    );
}

/// Two headless bot players; a windowed spectator joins their match once it runs,
/// draws it, saves a screenshot and leaves; the players play on to the end, in sync.
#[test]
fn windowed_spectator_draws_a_running_match_and_the_players_finish() {
    let common = [
        "--headless",
        "--bot",
        "--players",
        "2",
        "--frames",
        "1800",
        "--room",
        "window-watched",
    ];
    let (mut host, url) = common::host(&common);
    let mut guest_args = vec!["--signal", url.as_str()];
    guest_args.extend(common);
    let guest = common::Demo::start(&guest_args);
    host.wait_line("match running", Duration::from_secs(60));

    assert_windowed_screenshot(
        "spectator",
        &[
            "--spectate",
            "--signal",
            url.as_str(),
            "--players",
            "2",
            "--room",
            "window-watched",
        ],
    );

    let mut sums = Vec::new();
    for (i, demo) in [host, guest].into_iter().enumerate() {
        let (status, out, err) = demo.finish(Duration::from_secs(120));
        assert!(
            status.success(),
            "player exit {status}; stdout:\n{}\nstderr:\n{err}",
            out.join("\n")
        );
        if i == 0 {
            let saw = |what: &str| {
                out.iter()
                    .any(|l| l.contains("spectator") && l.contains(what))
            };
            assert!(
                saw("joined") && saw("left"),
                "the host never saw the spectator come and go: {out:?}"
            );
        }
        sums.push(common::checksum(&out));
    }
    assert_eq!(sums[0], sums[1], "players differ");
}

/// A recorded match played back in a window (`--replay`): it draws the match,
/// saves a screenshot that is not blank and exits 0.
#[test]
fn a_replay_plays_in_a_window() {
    let dir =
        std::env::temp_dir().join(format!("rtcplay-demo-replay-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("match.rtcreplay");
    let (status, stdout, stderr) = common::Demo::start(&[
        "--headless",
        "--players",
        "3",
        "--frames",
        "900",
        "--room",
        "window-replay",
        "--record",
        file.to_str().unwrap(),
    ])
    .finish(Duration::from_secs(120));
    assert!(status.success(), "{stdout:?}\n{stderr}");
    assert_windowed_screenshot("replay", &["--replay", file.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
}
