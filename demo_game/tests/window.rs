//! Windowed smoke test: the demo opens a window under Xvfb (software rendering),
//! plays a local match against a bot peer over WebRTC, and saves a screenshot that
//! is not blank. `.ci/test` installs xvfb and mesa-vulkan-drivers.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rtcplay-demo");

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

#[test]
fn windowed_match_renders_a_non_blank_screenshot() {
    let (mut x, display) = xvfb();
    let dir = std::env::temp_dir().join(format!("rtcplay-demo-shot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("shot.png");
    let _ = std::fs::remove_file(&shot);
    let mut demo = Command::new(BIN)
        .args(["--bot", "--room", "window-smoke", "--screenshot"])
        .arg(&shot)
        .env("DISPLAY", &display)
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
    let _ = x.kill();
    let _ = x.wait();
    assert!(
        status.success(),
        "exit {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("screenshot"), "{stdout}");

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
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
    let _ = std::fs::remove_dir_all(&dir);
}
