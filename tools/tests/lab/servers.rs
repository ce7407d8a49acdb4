//! The "internet" side of the lab: coturn (STUN + TURN with time-limited
//! credentials) and the rtcplay signaling server, both in the public namespace.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{exec, SERVER_IP};
use super::process::Guarded;

/// STUN/TURN port of coturn.
pub const TURN_PORT: u16 = 3478;
/// Signaling server port.
pub const SIGNAL_PORT: u16 = 3536;

/// Start coturn in `ns` with `use-auth-secret`, UDP only, relay ports in a small range.
pub fn start_coturn(ns: &str, secret: &str) -> Result<Guarded, String> {
    let dir = std::env::temp_dir().join(format!("{ns}-coturn"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    let conf = dir.join("turnserver.conf");
    std::fs::write(
        &conf,
        format!(
            "listening-ip={SERVER_IP}\nrelay-ip={SERVER_IP}\nlistening-port={TURN_PORT}\n\
             min-port=49152\nmax-port=49352\nuse-auth-secret\nstatic-auth-secret={secret}\n\
             realm=rtcplay.lab\nno-tls\nno-dtls\nno-cli\nno-tcp-relay\nfingerprint\n\
             log-file=stdout\nsimple-log\npidfile={}\nuserdb={}\n",
            dir.join("turnserver.pid").display(),
            dir.join("turndb").display(),
        ),
    )
    .map_err(|e| format!("cannot write {conf:?}: {e}"))?;
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "turnserver", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start turnserver: {e}"))?;
    let guarded = Guarded::new("coturn", child);
    // Ready once its UDP port is bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = format!("sport = :{TURN_PORT}");
    loop {
        let listening = exec(ns, "ss", &["-Hlun", &port]).unwrap_or_default();
        if !listening.trim().is_empty() {
            return Ok(guarded);
        }
        if Instant::now() > deadline {
            return Err("coturn did not bind its UDP port within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `rtcplay-signal` in `ns`, handing out TURN credentials signed with `secret`.
/// Returns once it prints its URL.
pub fn start_signaling(ns: &str, secret: &str) -> Result<Guarded, String> {
    let stun = format!("stun:{SERVER_IP}:{TURN_PORT}");
    let turn = format!("turn:{SERVER_IP}:{TURN_PORT}?transport=udp");
    let bind = format!("{SERVER_IP}:{SIGNAL_PORT}");
    let mut child: Child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_rtcplay-signal")])
        .args(["--bind", &bind, "--stun", &stun, "--turn-url", &turn])
        .args(["--turn-ttl", "600", "--log", "warn", "--threads", "1"])
        .env("RTCPLAY_TURN_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start rtcplay-signal: {e}"))?;
    let stdout = child.stdout.take();
    let guarded = Guarded::new("rtcplay-signal", child);
    let mut line = String::new();
    if let Some(stdout) = stdout {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("rtcplay-signal: {e}"))?;
    }
    if line.trim().is_empty() {
        return Err("rtcplay-signal exited before printing its URL".into());
    }
    Ok(guarded)
}

/// The signaling URL peers use.
pub fn signaling_url() -> String {
    format!("ws://{SERVER_IP}:{SIGNAL_PORT}")
}
