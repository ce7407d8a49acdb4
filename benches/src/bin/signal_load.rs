//! Load generator for the rtcplay signaling server.
//!
//! Starts the `rtcplay-signal` binary as a separate process (so only the
//! server's memory is measured) and drives it with real WebSocket clients on
//! 127.0.0.1:
//!
//! 1. **Idle clients**: N clients connect and join 2-player rooms (N/2 full
//!    rooms), then stay idle; the server's RSS from `/proc/<pid>/status` is read
//!    at each checkpoint and divided by the number of clients.
//! 2. **Pairing rate**: a pool of connected clients is paired into new 2-player
//!    rooms at a fixed offered rate (open loop); each room's pairing latency is
//!    from the first `join` sent to the last `room_full` received. Members then
//!    `leave`, so every room is freed and the clients return to the pool.
//! 3. **Pairing with fresh connections**: every new room is two new WebSocket
//!    connections (TCP + WebSocket handshake + join), timed from the start of the
//!    connects to the last `room_full`, then closed.
//! 4. **Unfinished messages** (an attacker's worst case): N connections each send
//!    the first 60,000 bytes of a text message and never finish it; the server's
//!    RSS is read with the default server-wide budget for unfinished input and
//!    with the budget lifted, and the connections the server refused are counted.
//!
//! With `--matchbox PATH` the same idle and fresh-connection runs are made against
//! `matchbox_server` (0.15, `ws://host/<room>?next=2`; pairing ends when the first
//! client receives `NewPeer`) in the same run, for comparison.
//!
//! Build the server first, then run (release):
//! ```text
//! cargo build --release -p rtcplay_tools --bin rtcplay-signal
//! cargo run --release -p rtcplay_benches --bin signal_load
//! ```
//! Needs `ulimit -n` above the largest idle count (+ a few hundred) for both
//! processes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use rtcplay::signaling::protocol::ClientMessage;
use rtcplay_benches::percentiles::duration_percentile;
use rtcplay_benches::signal_clients::{
    connect, cpu_seconds, server_binary, until_room_full, BoxError, Ws,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Signaling server load generator (see the module docs).
#[derive(Debug, Parser)]
struct Args {
    /// Path of the `rtcplay-signal` binary (default: next to this executable).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Idle client counts to measure, cumulative (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 5000, 10000])]
    idle: Vec<usize>,
    /// Offered room rates (rooms/s) for the pairing test (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [500u32, 1000, 2000, 4000, 6000, 8000, 12000, 16000])]
    rates: Vec<u32>,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Connected clients in the pairing pool.
    #[arg(long, default_value_t = 4000)]
    pool: usize,
    /// Stop raising the rate once pairing p99 exceeds this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    stop_p99_ms: f64,
    /// Worker threads of the server process (default: one per core).
    #[arg(long)]
    server_threads: Option<usize>,
    /// Offered room rates (rooms/s) with fresh connections (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [500u32, 1000, 2000, 3000, 4000, 6000])]
    fresh_rates: Vec<u32>,
    /// Path of a `matchbox_server` binary to measure side by side.
    #[arg(long)]
    matchbox: Option<PathBuf>,
    /// Skip the idle-memory test.
    #[arg(long)]
    skip_idle: bool,
    /// Skip the pooled pairing-rate test.
    #[arg(long)]
    skip_pairing: bool,
    /// Skip the fresh-connection pairing test.
    #[arg(long)]
    skip_fresh: bool,
    /// Connection counts for the unfinished-message test, cumulative.
    #[arg(long, value_delimiter = ',', default_values_t = [2000usize, 10000])]
    unfinished: Vec<usize>,
    /// Skip the unfinished-message test.
    #[arg(long)]
    skip_unfinished: bool,
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let server_path = server_binary(args.server.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "machine: {} cores; server: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        server_path.display()
    );
    let mut kinds = vec![(Kind::Rtcplay, server_path)];
    if let Some(path) = &args.matchbox {
        kinds.push((Kind::Matchbox, path.clone()));
    }
    if !args.skip_idle {
        for (kind, path) in &kinds {
            let server = Server::spawn(*kind, path, args.server_threads)?;
            runtime.block_on(idle_memory(&server, &args.idle))?;
        }
    }
    if !args.skip_pairing {
        let server = Server::spawn(Kind::Rtcplay, &kinds[0].1, args.server_threads)?;
        runtime.block_on(pairing_rate(&server, &args))?;
    }
    if !args.skip_fresh {
        for (kind, path) in &kinds {
            let server = Server::spawn(*kind, path, args.server_threads)?;
            runtime.block_on(fresh_pairing(&server, &args))?;
        }
    }
    if !args.skip_unfinished {
        for (label, extra) in [
            ("default budget (64 MiB)", &[][..]),
            (
                "budget lifted",
                &["--max-unfinished-bytes", "1000000000000"][..],
            ),
        ] {
            let server = Server::spawn_rtcplay_with(&kinds[0].1, args.server_threads, extra)?;
            runtime.block_on(unfinished_memory(&server, &args.unfinished, label))?;
        }
    }
    Ok(())
}

/// Which signaling server a child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `rtcplay-signal`.
    Rtcplay,
    /// `matchbox_server` 0.15.
    Matchbox,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rtcplay => "rtcplay-signal",
            Kind::Matchbox => "matchbox_server 0.15",
        }
    }
}

/// The server child process.
struct Server {
    child: Child,
    url: String,
    kind: Kind,
}

impl Server {
    fn spawn(kind: Kind, path: &PathBuf, threads: Option<usize>) -> Result<Server, BoxError> {
        match kind {
            Kind::Rtcplay => Self::spawn_rtcplay(path, threads),
            Kind::Matchbox => Self::spawn_matchbox(path),
        }
    }

    fn spawn_rtcplay(path: &PathBuf, threads: Option<usize>) -> Result<Server, BoxError> {
        Self::spawn_rtcplay_with(path, threads, &[])
    }

    fn spawn_rtcplay_with(
        path: &PathBuf,
        threads: Option<usize>,
        extra: &[&str],
    ) -> Result<Server, BoxError> {
        let mut cmd = Command::new(path);
        // The pool clients join many rooms each: lift the per-connection join
        // rate (30/min by default), which is not what is measured here.
        cmd.args(["--joins-per-minute", "100000000"]);
        cmd.args(extra);
        cmd.args([
            "--bind",
            "127.0.0.1:0",
            "--max-connections",
            "1000000",
            "--max-connections-per-ip",
            "1000000",
            "--max-rooms",
            "1000000",
            "--idle-timeout",
            "3600",
            "--log",
            "warn",
        ]);
        if let Some(threads) = threads {
            cmd.args(["--threads", &threads.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line.trim().to_owned();
        if !url.starts_with("ws://") {
            let _ = child.kill();
            return Err(format!("server printed {url:?} instead of its URL").into());
        }
        Ok(Server {
            child,
            url,
            kind: Kind::Rtcplay,
        })
    }

    fn spawn_matchbox(path: &PathBuf) -> Result<Server, BoxError> {
        // matchbox_server takes a fixed address: pick a free port first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(path)
            .arg(&addr)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Server {
            child,
            url: format!("ws://{addr}"),
            kind: Kind::Matchbox,
        };
        // Ready when it accepts TCP connections.
        for _ in 0..500 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("matchbox_server did not start listening".into())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in bytes.
    fn rss(&self) -> Result<u64, BoxError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or("no VmRSS")?;
        Ok(kb * 1024)
    }

    /// User + system CPU time of the server in seconds.
    fn cpu_seconds(&self) -> Result<f64, BoxError> {
        cpu_seconds(&self.pid().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn join_msg(room: String) -> Message {
    Message::text(ClientMessage::join(room, 2).to_json())
}

async fn idle_memory(server: &Server, checkpoints: &[usize]) -> Result<(), BoxError> {
    // Let the server finish starting its runtime before the baseline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = server.rss()?;
    println!(
        "\n## Idle clients, {} (each in a full 2-player room)",
        server.kind.name()
    );
    println!("server RSS before clients: {:.1} MiB", mib(base));
    println!("| clients | server RSS | per client (vs. empty) | per client (vs. previous) |");
    println!("|---:|---:|---:|---:|");
    let mut held: Vec<Ws> = Vec::new();
    let (mut prev_n, mut prev_rss) = (0usize, base);
    for &target in checkpoints {
        let start = held.len();
        if target <= start {
            continue;
        }
        // Clients 2k and 2k+1 share a room; bounded concurrency keeps the
        // listen backlog from overflowing.
        let url = server.url.clone();
        let joined: Vec<Result<Ws, BoxError>> = futures_util::stream::iter(start..target)
            .map(|i| {
                let url = url.clone();
                let kind = server.kind;
                async move {
                    match kind {
                        Kind::Rtcplay => {
                            let mut ws = connect(&url).await?;
                            ws.send(join_msg(format!("idle-{}", i / 2))).await?;
                            until_room_full(&mut ws).await?;
                            Ok(ws)
                        }
                        Kind::Matchbox => {
                            let mut ws = connect(&format!("{url}/idle-{}?next=2", i / 2)).await?;
                            matchbox_event(&mut ws, "IdAssigned").await?;
                            Ok(ws)
                        }
                    }
                }
            })
            .buffer_unordered(200)
            .collect()
            .await;
        for ws in joined {
            held.push(ws?);
        }
        // Everything was answered; give the allocator a moment, then read.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss = server.rss()?;
        let n = held.len();
        println!(
            "| {} | {:.1} MiB | {:.1} KB | {:.1} KB |",
            n,
            mib(rss),
            kb(rss.saturating_sub(base)) / n as f64,
            kb(rss.saturating_sub(prev_rss)) / (n - prev_n) as f64,
        );
        (prev_n, prev_rss) = (n, rss);
    }
    Ok(())
}

/// Connections that each hold an unfinished 60,000-byte text message.
async fn unfinished_memory(
    server: &Server,
    checkpoints: &[usize],
    label: &str,
) -> Result<(), BoxError> {
    use futures_util::FutureExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = server.rss()?;
    println!("\n## Unfinished 60,000-byte messages, rtcplay-signal, {label}");
    println!("server RSS before clients: {:.1} MiB", mib(base));
    println!("| connections opened | refused by the server (server_full) | server RSS | per connection opened |");
    println!("|---:|---:|---:|---:|");
    let mut held: Vec<Ws> = Vec::new();
    let mut refused = 0usize;
    let mut opened_total = 0usize;
    for &target in checkpoints {
        let start = opened_total;
        if target <= start {
            continue;
        }
        let url = server.url.clone();
        let opened: Vec<Result<Ws, BoxError>> = futures_util::stream::iter(start..target)
            .map(|_| {
                let url = url.clone();
                async move {
                    let mut ws = connect(&url).await?;
                    let part = Frame::message(vec![b' '; 60_000], OpCode::Data(Data::Text), false);
                    ws.send(Message::Frame(part)).await?;
                    Ok(ws)
                }
            })
            .buffer_unordered(200)
            .collect()
            .await;
        for ws in opened {
            held.push(ws?);
        }
        opened_total = target;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // A refused connection has its error and close frame waiting.
        let before = held.len();
        // Unconstrained: tokio's cooperative budget would make all but ~128 of
        // these polls report "pending" within one task poll.
        tokio::task::unconstrained(async {
            held.retain_mut(|ws| {
                !matches!(
                    ws.next().now_or_never(),
                    Some(Some(Ok(Message::Text(_) | Message::Close(_)) | Err(_)) | None)
                )
            });
        })
        .await;
        refused += before - held.len();
        let rss = server.rss()?;
        println!(
            "| {} | {} | {:.1} MiB | {:.1} KB |",
            opened_total,
            refused,
            mib(rss),
            kb(rss.saturating_sub(base)) / opened_total as f64,
        );
    }
    Ok(())
}

/// One room's timing from one member.
struct Record {
    room: u64,
    join_sent: Instant,
    full_received: Instant,
}

struct Job {
    room: u64,
}

async fn pairing_rate(server: &Server, args: &Args) -> Result<(), BoxError> {
    let pool = args.pool.max(2);
    let (free_tx, mut free_rx) = mpsc::channel::<usize>(pool);
    let (rec_tx, mut rec_rx) = mpsc::unbounded_channel::<Record>();
    let failures = Arc::new(AtomicU64::new(0));
    let run = Arc::new(AtomicU64::new(0));
    let mut jobs = Vec::with_capacity(pool);
    // Connect the pool.
    let url = server.url.clone();
    let sockets: Vec<Result<Ws, BoxError>> = futures_util::stream::iter(0..pool)
        .map(|_| connect(&url))
        .buffer_unordered(200)
        .collect()
        .await;
    for (id, ws) in sockets.into_iter().enumerate() {
        let mut ws = ws?;
        let (job_tx, mut job_rx) = mpsc::channel::<Job>(1);
        jobs.push(job_tx);
        let free_tx = free_tx.clone();
        let rec_tx = rec_tx.clone();
        let failures = Arc::clone(&failures);
        let run = Arc::clone(&run);
        free_tx.send(id).await?;
        tokio::spawn(async move {
            while let Some(job) = job_rx.recv().await {
                let name = format!("pair-{}-{}", run.load(Ordering::Relaxed), job.room);
                let join_sent = Instant::now();
                if ws.send(join_msg(name)).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if until_room_full(&mut ws).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let full_received = Instant::now();
                if ws
                    .send(Message::text(ClientMessage::Leave.to_json()))
                    .await
                    .is_err()
                {
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let _ = rec_tx.send(Record {
                    room: job.room,
                    join_sent,
                    full_received,
                });
                let _ = free_tx.send(id).await;
            }
        });
    }
    drop(rec_tx);
    println!(
        "\n## Pairing rate ({} pooled clients, {:.1} s per rate, open loop)",
        pool, args.seconds
    );
    println!(
        "| offered rooms/s | paired rooms/s | p50 | p99 | max | server CPU | generator CPU | pool waits | machine stall max |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut next_room = 0u64;
    for (i, &rate) in args.rates.iter().enumerate() {
        run.store(i as u64, Ordering::Relaxed);
        let total = ((rate as f64) * args.seconds).round().max(1.0) as u64;
        let first_room = next_room;
        let cpu0 = server.cpu_seconds()?;
        let gen0 = cpu_seconds("self")?;
        let probe = StallProbe::start();
        let start = Instant::now();
        let mut dispatched = 0u64;
        let mut pool_waits = 0u64;
        while dispatched < total {
            let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
            while dispatched < due {
                let a = pick(&mut free_rx, &mut pool_waits).await;
                let b = pick(&mut free_rx, &mut pool_waits).await;
                let (Some(a), Some(b)) = (a, b) else {
                    return Err("client pool closed".into());
                };
                let room = next_room;
                next_room += 1;
                for id in [a, b] {
                    if let Some(job) = jobs.get(id) {
                        job.send(Job { room }).await?;
                    }
                }
                dispatched += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Collect both members' records of every room of this run.
        let mut rooms: HashMap<u64, (Instant, Instant, u8)> = HashMap::new();
        let mut complete = Vec::with_capacity(total as usize);
        let mut last_full = start;
        let deadline = Instant::now() + Duration::from_secs(30);
        while (complete.len() as u64) < total {
            let rec = match tokio::time::timeout_at(deadline, rec_rx.recv()).await {
                Ok(Some(rec)) => rec,
                _ => break,
            };
            if rec.room < first_room {
                continue;
            }
            let entry = rooms
                .entry(rec.room)
                .or_insert((rec.join_sent, rec.full_received, 0));
            entry.0 = entry.0.min(rec.join_sent);
            entry.1 = entry.1.max(rec.full_received);
            entry.2 += 1;
            if entry.2 == 2 {
                complete.push(entry.1 - entry.0);
                last_full = last_full.max(entry.1);
            }
        }
        let cpu = server.cpu_seconds()? - cpu0;
        let gen = cpu_seconds("self")? - gen0;
        let stall = probe.finish();
        let elapsed = (last_full - start).as_secs_f64();
        complete.sort();
        let paired = complete.len();
        let pct = |p: f64| duration_percentile(&complete, p);
        let p99 = pct(0.99);
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} % | {:.0} % | {} | {:.1} ms |",
            rate,
            paired as f64 / elapsed.max(1e-9),
            ms(pct(0.50)),
            ms(p99),
            ms(complete.last().copied().unwrap_or_default()),
            100.0 * cpu / elapsed.max(1e-9),
            100.0 * gen / elapsed.max(1e-9),
            pool_waits,
            stall,
        );
        let lost = total - paired as u64;
        if lost > 0 || failures.load(Ordering::Relaxed) > 0 {
            println!(
                "  ({} rooms not paired, {} client failures)",
                lost,
                failures.load(Ordering::Relaxed)
            );
            break;
        }
        if ms(p99) > args.stop_p99_ms {
            println!("  (p99 above {} ms: stopping)", args.stop_p99_ms);
            break;
        }
    }
    Ok(())
}

/// Read until a matchbox event named `name` (`{"NewPeer":"..."}` etc.).
async fn matchbox_event(ws: &mut Ws, name: &str) -> Result<(), BoxError> {
    let key = format!("{{\"{name}\"");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.starts_with(&key) => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("server closed the connection".into()),
        }
    }
}

/// Most rooms being set up at once before the generator gives up on a rate.
const MAX_IN_FLIGHT: u64 = 4000;

/// Pair one new room on two fresh connections; returns connect-start to paired.
async fn fresh_room(kind: Kind, url: &str, name: &str) -> Result<Duration, BoxError> {
    let start = Instant::now();
    match kind {
        Kind::Rtcplay => {
            let member = || async {
                let mut ws = connect(url).await?;
                ws.send(join_msg(name.to_owned())).await?;
                until_room_full(&mut ws).await?;
                Ok::<Ws, BoxError>(ws)
            };
            let (a, b) = tokio::try_join!(member(), member())?;
            let elapsed = start.elapsed();
            drop((a, b));
            Ok(elapsed)
        }
        Kind::Matchbox => {
            let url = format!("{url}/{name}?next=2");
            let (mut a, mut b) = tokio::try_join!(connect(&url), connect(&url))?;
            // The member registered first is told about the other.
            tokio::select! {
                r = matchbox_event(&mut a, "NewPeer") => r?,
                r = matchbox_event(&mut b, "NewPeer") => r?,
            }
            Ok(start.elapsed())
        }
    }
}

async fn fresh_pairing(server: &Server, args: &Args) -> Result<(), BoxError> {
    println!(
        "\n## Pairing with fresh connections, {} ({:.1} s per rate, open loop)",
        server.kind.name(),
        args.seconds
    );
    println!(
        "| offered rooms/s | paired rooms/s | p50 | p99 | max | server CPU | generator CPU | failed | machine stall max |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Result<Duration, String>)>();
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut next_room = 0u64;
    for (i, &rate) in args.fresh_rates.iter().enumerate() {
        let total = ((rate as f64) * args.seconds).round().max(1.0) as u64;
        let first_room = next_room;
        let cpu0 = server.cpu_seconds()?;
        let gen0 = cpu_seconds("self")?;
        let probe = StallProbe::start();
        let start = Instant::now();
        let mut dispatched = 0u64;
        let mut overloaded = false;
        while dispatched < total && !overloaded {
            let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
            while dispatched < due {
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    overloaded = true;
                    break;
                }
                let room = next_room;
                next_room += 1;
                dispatched += 1;
                in_flight.fetch_add(1, Ordering::Relaxed);
                let (tx, in_flight) = (tx.clone(), Arc::clone(&in_flight));
                let (kind, url) = (server.kind, server.url.clone());
                let name = format!("fresh-{i}-{room}");
                tokio::spawn(async move {
                    let result = fresh_room(kind, &url, &name)
                        .await
                        .map_err(|e| e.to_string());
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    let _ = tx.send((room, result));
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut latencies = Vec::with_capacity(dispatched as usize);
        let mut failed = 0u64;
        let mut first_error = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut received = 0u64;
        while received < dispatched {
            let (room, result) = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => item,
                _ => break,
            };
            if room < first_room {
                continue;
            }
            received += 1;
            match result {
                Ok(latency) => latencies.push(latency),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = server.cpu_seconds()? - cpu0;
        let gen = cpu_seconds("self")? - gen0;
        let stall = probe.finish();
        failed += dispatched - received;
        latencies.sort();
        let n = latencies.len();
        let pct = |p: f64| duration_percentile(&latencies, p);
        let p99 = pct(0.99);
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} % | {:.0} % | {} | {:.1} ms |",
            rate,
            n as f64 / args.seconds.max(1e-9),
            ms(pct(0.50)),
            ms(p99),
            ms(latencies.last().copied().unwrap_or_default()),
            100.0 * cpu / elapsed.max(1e-9),
            100.0 * gen / elapsed.max(1e-9),
            failed,
            stall,
        );
        if overloaded {
            println!("  ({MAX_IN_FLIGHT} rooms in flight: generator stopped this rate)");
            break;
        }
        if failed > 0 {
            println!("  (first failure: {})", first_error.unwrap_or_default());
            break;
        }
        if ms(p99) > args.stop_p99_ms {
            println!("  (p99 above {} ms: stopping)", args.stop_p99_ms);
            break;
        }
        // Let the previous rate's sockets close before the next one.
        while in_flight.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Measures how late a plain OS thread wakes from a 1 ms sleep while a rate runs:
/// the machine's scheduling noise (other jobs on the shared cores), independent of
/// the server and of the generator's runtime.
struct StallProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Duration>>,
}

impl StallProbe {
    fn start() -> StallProbe {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut late = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let t = std::time::Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                late.push(t.elapsed().saturating_sub(Duration::from_millis(1)));
            }
            late
        });
        StallProbe { stop, thread }
    }

    /// The largest wake-up delay seen, in ms.
    fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let late = self.thread.join().unwrap_or_default();
        late.iter().max().map_or(0.0, |d| ms(*d))
    }
}

/// Take a free client from the pool, counting the times the pool was empty.
async fn pick(free: &mut mpsc::Receiver<usize>, waits: &mut u64) -> Option<usize> {
    match free.try_recv() {
        Ok(id) => Some(id),
        Err(_) => {
            *waits += 1;
            free.recv().await
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn kb(bytes: u64) -> f64 {
    bytes as f64 / 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
