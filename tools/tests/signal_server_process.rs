//! The `rtcplay-signal` binary as an operator runs it: signals, logs, the
//! open-file limit, and the CPU a hostile client can take. Each test starts the
//! real binary on an ephemeral port and talks to it over real WebSockets.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtcplay::signaling::protocol::ClientMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

const BIN: &str = env!("CARGO_BIN_EXE_rtcplay-signal");
const DEADLINE: Duration = Duration::from_secs(10);

/// A running `rtcplay-signal`, killed on drop.
struct SignalProcess {
    child: Child,
    url: String,
    stderr: Option<ChildStderr>,
}

impl SignalProcess {
    /// Start `command` (the binary, or a shell that execs it) and read its URL.
    fn start(mut command: Command) -> SignalProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rtcplay-signal");
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .expect("read the URL line");
        assert!(url.starts_with("ws://"), "first line {url:?}");
        let stderr = child.stderr.take();
        SignalProcess {
            child,
            url: url.trim().to_owned(),
            stderr,
        }
    }

    fn plain(args: &[&str]) -> SignalProcess {
        let mut command = Command::new(BIN);
        command.args(["--bind", "127.0.0.1:0"]).args(args);
        SignalProcess::start(command)
    }

    fn send_signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Wait for the process to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "still running after {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote to stderr (call after it exited or was killed).
    fn stderr_text(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            stderr.read_to_string(&mut text).expect("read stderr");
        }
        text
    }

    /// CPU time (user + system) the process has used so far.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("read /proc/PID/stat");
        // Fields after the command name (which is in parentheses): utime and
        // stime are the 14th and 15th fields of the whole line.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for SignalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect")
        .0
}

fn join(room: &str) -> Message {
    Message::text(ClientMessage::join(room, 2).to_json())
}

/// The close code the server ends `ws` with (skipping text frames before it).
async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await.ok()? {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Finding 1: SIGTERM and SIGINT used to kill the server without the close
/// (code 1001) docs/signaling.md promises; and logs carried ANSI colour codes
/// into pipes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_shut_down_gracefully_with_plain_logs() {
    for signal in ["TERM", "INT"] {
        let mut server = SignalProcess::plain(&["--log", "debug"]);
        let mut a = connect(&server.url).await;
        let mut b = connect(&server.url).await;
        a.send(join("bye")).await.unwrap();
        b.send(join("bye")).await.unwrap();
        // Both are served (their welcome arrived) before the signal.
        for ws in [&mut a, &mut b] {
            match tokio::time::timeout(DEADLINE, ws.next()).await.unwrap() {
                Some(Ok(Message::Text(text))) => assert!(text.contains("welcome"), "{text}"),
                other => panic!("expected welcome, got {other:?}"),
            }
        }
        server.send_signal(signal);
        assert_eq!(
            close_code(&mut a).await,
            Some(CloseCode::Away),
            "SIG{signal}"
        );
        assert_eq!(
            close_code(&mut b).await,
            Some(CloseCode::Away),
            "SIG{signal}"
        );
        drop((a, b));
        assert_eq!(server.wait_exit(), Some(0), "SIG{signal}: exit code");
        let log = server.stderr_text();
        assert!(log.contains(&format!("SIG{signal}")), "{log}");
        assert!(log.contains("shut down"), "{log}");
        assert!(
            !log.contains('\u{1b}'),
            "ANSI escape codes in a piped log:\n{log}"
        );
    }
}

/// Finding 7: with a `--max-connections` above the open-file limit, `accept` used
/// to fail and new clients hung. The limit is lowered at start (and said so);
/// clients beyond it get HTTP 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_limited_by_the_open_file_limit() {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!(
            "ulimit -n 160 && exec {BIN} --bind 127.0.0.1:0 --max-connections-per-ip 10000 --log info"
        ),
    ]);
    let mut server = SignalProcess::start(command);
    // 160 - 64 reserved = 96 connections.
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..130 {
        match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(&server.url)).await {
            Ok(Ok((ws, _))) => open.push(ws),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                assert_eq!(response.status(), 503);
                refused += 1;
            }
            Ok(Err(e)) => panic!("unexpected error: {e}"),
            Err(_) => panic!("a connection hung (after {} open)", open.len()),
        }
    }
    assert_eq!(open.len(), 96);
    assert_eq!(refused, 34);
    // Once some close, new clients are admitted again.
    open.truncate(80);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_again, _) = tokio_tungstenite::connect_async(&server.url)
        .await
        .expect("admitted after others closed");
    drop(open);
    server.send_signal("TERM");
    assert_eq!(server.wait_exit(), Some(0));
    let log = server.stderr_text();
    assert!(
        log.contains("max_connections lowered from 100000 to 96"),
        "{log}"
    );
    assert!(!log.contains("accept failed"), "{log}");
}

/// Finding 5: empty continuation frames carry no message, so the message rate
/// never saw them and one client could burn a whole core. The byte throttle now
/// bounds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_frames_costs_little_cpu() {
    let server = SignalProcess::plain(&["--threads", "1", "--log", "warn"]);
    let mut ws = connect(&server.url).await;
    // Open a fragmented message, then send nothing but empty continuations.
    let first = Frame::message(Bytes::from_static(b"{"), OpCode::Data(Data::Text), false);
    ws.send(Message::Frame(first)).await.unwrap();
    let empty = || {
        Message::Frame(Frame::message(
            Bytes::new(),
            OpCode::Data(Data::Continue),
            false,
        ))
    };
    let cpu_before = server.cpu_time();
    let started = Instant::now();
    let flood = Duration::from_secs(3);
    let mut sent = 0u64;
    while started.elapsed() < flood {
        let batch = async {
            for _ in 0..1000 {
                ws.feed(empty()).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(Duration::from_millis(100), batch).await {
            Ok(Ok(())) => sent += 1000,
            Ok(Err(_)) => break,
            Err(_) => {} // the server reads slowly: that is the point
        }
    }
    let elapsed = started.elapsed();
    let cpu = server.cpu_time() - cpu_before;
    // Unthrottled, the server spent a whole core on this; now it reads at most
    // 64 KiB/s of 6-byte frames (plus the burst).
    assert!(
        cpu < elapsed / 5,
        "server used {cpu:?} of CPU in {elapsed:?} ({sent} frames sent)"
    );
}
