//! Transport benchmarks: round trip (rtcplay vs bare webrtc-rs vs raw UDP), connection
//! setup time with its stage breakdown, and unreliable throughput.
//!
//! ```text
//! cargo run --release -p rtcplay_benches --bin transport-bench -- all
//! ```
//! Everything runs on 127.0.0.1 in one process with a real signaling server.

mod bare;
mod browser;
mod web_backend;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rtcplay::signaling::{ServerConfig, SignalingServer};
use rtcplay::transport::native::Socket;
use rtcplay::transport::{Channel, PeerId, SocketConfig, SocketEvent, Target};
use rtcplay_benches::percentiles::percentile;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// 32-byte ping-pong round trip: rtcplay API, bare webrtc-rs, raw tokio UDP.
    Rtt {
        /// Round trips per variant and round.
        #[arg(long, default_value_t = 100)]
        pings: usize,
        /// Rounds; the variants alternate every round, so load from other processes
        /// hits all three alike.
        #[arg(long, default_value_t = 100)]
        rounds: usize,
    },
    /// Connection setup time for 2- and 4-peer rooms.
    Setup {
        /// Setups per room size.
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// Setup time with a real headless Chromium (the JavaScript client of
    /// docs/signaling.md), in both offer directions.
    BrowserSetup {
        /// Setups per direction.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// rtcplay's web backend in headless Chromium (the testkit/web_probe page,
    /// built by ./.ci/build-web): setup with native peers both ways and between
    /// two tabs, round trips, bundle sizes.
    Web {
        /// Setups per direction.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Round-trip samples.
        #[arg(long, default_value_t = 500)]
        samples: usize,
    },
    /// One-way unreliable throughput with 1200-byte messages.
    Throughput {
        /// Seconds to send.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// All of the above with their defaults.
    All,
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let server_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = server_rt.block_on(SignalingServer::bind(
        "127.0.0.1:0".parse::<SocketAddr>()?,
        ServerConfig::default(),
    ))?;
    let url = format!("ws://{}", server.local_addr());
    let _server_thread = {
        // Drive the server's runtime on its own thread for the whole run.
        std::thread::spawn(move || {
            server_rt.block_on(std::future::pending::<()>());
        })
    };
    match args.command {
        Command::Rtt { pings, rounds } => rtt(&url, pings, rounds)?,
        Command::Setup { runs } => setup(&url, runs)?,
        Command::BrowserSetup { runs } => browser::browser_setup(&server, &url, runs)?,
        Command::Web { runs, samples } => {
            web_backend::bundle_size()?;
            web_backend::web_setup(&server, &url, runs)?;
            web_backend::web_rtt(&server, &url, samples)?;
            web_backend::session_cpu(5_000)?;
        }
        Command::Throughput { seconds } => throughput(&url, seconds)?,
        Command::All => {
            rtt(&url, 100, 100)?;
            setup(&url, 30)?;
            throughput(&url, 3)?;
        }
    }
    drop(server);
    Ok(())
}

fn config(url: &str, room: &str, players: u8) -> SocketConfig {
    let mut config = SocketConfig::new(url, room, players);
    config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    config
}

/// Open `n` sockets in one room and wait until every one reports AllConnected.
fn open_room(url: &str, room: &str, n: u8) -> Result<Vec<Socket>, Error> {
    let mut sockets = (0..n)
        .map(|_| Socket::new(config(url, room, n)))
        .collect::<Result<Vec<_>, _>>()?;
    for socket in &mut sockets {
        wait_all_connected(socket)?;
    }
    Ok(sockets)
}

fn wait_all_connected(socket: &mut Socket) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.wait_event(left) {
            Some(SocketEvent::AllConnected) => return Ok(()),
            Some(SocketEvent::Error(error)) => return Err(error.into()),
            Some(_) => {}
            None => return Err("room did not connect within 20 s".into()),
        }
    }
}

fn summary(name: &str, mut samples_us: Vec<f64>, lost: usize) {
    samples_us.sort_by(f64::total_cmp);
    println!(
        "{name:<22} n={:<6} p50={:>7.1} µs  p99={:>7.1} µs  lost={lost}",
        samples_us.len(),
        percentile(&samples_us, 0.5),
        percentile(&samples_us, 0.99),
    );
}

// ---------------------------------------------------------------------------------
// Round trip

fn rtt(url: &str, pings: usize, rounds: usize) -> Result<(), Error> {
    println!("## 32-byte round trip, {rounds} rounds × {pings} pings per variant");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rtcplay_samples = Vec::new();
    let mut bare_samples = Vec::new();
    let mut udp_samples = Vec::new();
    let (mut rtcplay_lost, mut bare_lost, mut udp_lost) = (0, 0, 0);

    let mut sockets = open_room(url, "bench-rtt", 2)?;
    let mut echo = sockets.pop().ok_or("no echo socket")?;
    let mut pinger = sockets.pop().ok_or("no pinger socket")?;
    let echo_id = echo.id().ok_or("echo has no id")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo_stop = stop.clone();
    let echo_thread = std::thread::spawn(move || {
        while !echo_stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(message) = echo.wait_message(Duration::from_millis(50)) {
                if message.channel == Channel::Unreliable {
                    let _ = echo.send_unreliable(message.from, &message.data);
                }
            }
        }
    });
    let (bare_a, bare_b) = rt.block_on(bare::connect_pair(0))?;
    let bare_echo = rt.spawn(async move {
        while let Some(data) = bare::next_message(bare_b.dc.as_ref()).await {
            let _ = bare_b.dc.send(data).await;
        }
    });
    let udp = rt.block_on(udp_pair())?;

    for _ in 0..rounds {
        let (samples, lost) = rtcplay_rtt(&mut pinger, echo_id, pings);
        rtcplay_samples.extend(samples);
        rtcplay_lost += lost;
        let (samples, lost) = rt.block_on(bare_rtt(&bare_a, pings));
        bare_samples.extend(samples);
        bare_lost += lost;
        let (samples, lost) = rt.block_on(udp_rtt(&udp.0, udp.1, pings));
        udp_samples.extend(samples);
        udp_lost += lost;
    }
    let ratio = median(&rtcplay_samples) / median(&bare_samples);
    summary("rtcplay Socket API", rtcplay_samples, rtcplay_lost);
    summary("bare webrtc-rs 0.21", bare_samples, bare_lost);
    summary("raw tokio UDP", udp_samples, udp_lost);
    println!("rtcplay p50 / bare webrtc-rs p50 = {ratio:.2}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = echo_thread.join();
    bare_echo.abort();
    let _ = rt.block_on(bare_a.pc.close());
    drop(pinger);
    Ok(())
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

/// Ping-pong from a game thread: send, then wait for the echo (`wait_message` blocks
/// on the inbox, as an event-driven game loop would; spinning on `receive` would
/// starve the network threads on a 2-core machine).
fn rtcplay_rtt(socket: &mut Socket, to: PeerId, pings: usize) -> (Vec<f64>, usize) {
    let mut samples = Vec::with_capacity(pings);
    let mut lost = 0;
    let mut payload = [0u8; 32];
    for i in 0..pings {
        payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        if socket.send_unreliable(Target::Peer(to), &payload).is_err() {
            lost += 1;
            continue;
        }
        let deadline = start + Duration::from_millis(500);
        let mut back = false;
        while !back {
            let left = deadline.saturating_duration_since(Instant::now());
            match socket.wait_message(left) {
                Some(message) => back = message.data == payload,
                None => break,
            }
        }
        if back {
            samples.push(start.elapsed().as_secs_f64() * 1e6);
        } else {
            lost += 1;
        }
    }
    (samples, lost)
}

async fn bare_rtt(a: &bare::BareSide, pings: usize) -> (Vec<f64>, usize) {
    let mut samples = Vec::with_capacity(pings);
    let mut lost = 0;
    let mut payload = [0u8; 32];
    for i in 0..pings {
        payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        if a.dc
            .send(bytes::BytesMut::from(&payload[..]))
            .await
            .is_err()
        {
            lost += 1;
            continue;
        }
        let wait = async {
            while let Some(data) = bare::next_message(a.dc.as_ref()).await {
                if data[..] == payload[..] {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(Duration::from_millis(500), wait).await {
            Ok(true) => samples.push(start.elapsed().as_secs_f64() * 1e6),
            _ => lost += 1,
        }
    }
    (samples, lost)
}

async fn udp_pair() -> Result<(tokio::net::UdpSocket, SocketAddr), Error> {
    let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let echo_addr = echo.local_addr()?;
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let pinger = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    Ok((pinger, echo_addr))
}

async fn udp_rtt(
    socket: &tokio::net::UdpSocket,
    to: SocketAddr,
    pings: usize,
) -> (Vec<f64>, usize) {
    let mut samples = Vec::with_capacity(pings);
    let mut lost = 0;
    let mut payload = [0u8; 32];
    let mut buf = [0u8; 64];
    for i in 0..pings {
        payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let start = Instant::now();
        if socket.send_to(&payload, to).await.is_err() {
            lost += 1;
            continue;
        }
        let wait = async {
            while let Ok(n) = socket.recv(&mut buf).await {
                if buf[..n] == payload[..] {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(Duration::from_millis(500), wait).await {
            Ok(true) => samples.push(start.elapsed().as_secs_f64() * 1e6),
            _ => lost += 1,
        }
    }
    (samples, lost)
}

// ---------------------------------------------------------------------------------
// Setup

fn setup(url: &str, runs: usize) -> Result<(), Error> {
    for n in [2u8, 4, 8] {
        println!("## setup, {n} peers, {runs} runs (+2 warm-up)");
        let mut wall = Vec::new();
        let mut full_to_all = Vec::new();
        let mut stages: [Vec<f64>; 4] = Default::default();
        for run in 0..runs + 2 {
            let start = Instant::now();
            let mut sockets = open_room(url, &format!("bench-setup-{n}-{run}"), n)?;
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            if run < 2 {
                continue;
            }
            wall.push(elapsed);
            let mut slowest: f64 = 0.0;
            for socket in &mut sockets {
                for peer in socket.connected_peers() {
                    let Some(stats) = socket.stats(peer) else {
                        continue;
                    };
                    let s = stats.setup;
                    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
                    for (i, stage) in [
                        s.ice_connected,
                        s.dtls_connected,
                        s.channels_open,
                        s.hello_acked,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        stages[i].push(ms(stage));
                    }
                    slowest = slowest.max(ms(s.hello_acked));
                }
            }
            full_to_all.push(slowest);
            drop(sockets);
        }
        let show = |name: &str, mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            println!(
                "{name:<44} p50={:>7.1} ms  p90={:>7.1} ms",
                percentile(&v, 0.5),
                percentile(&v, 0.9)
            );
        };
        show("Socket::new → AllConnected (incl. join)", wall);
        show("room full → every link hello-acked", full_to_all);
        let names = [
            "  per link: ICE connected",
            "  per link: DTLS connected",
            "  per link: SCTP + both channels open",
            "  per link: hello/ack round trip done",
        ];
        for (name, v) in names.iter().zip(stages) {
            show(name, v);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Throughput

fn throughput(url: &str, seconds: u64) -> Result<(), Error> {
    let duration = Duration::from_secs(seconds);
    println!("## unreliable throughput, 1200-byte messages, {seconds} s per variant");
    for (name, batch, pause) in [
        ("rtcplay, flood (no pause)", 64, Duration::ZERO),
        ("rtcplay, 16 per 100 µs", 16, Duration::from_micros(100)),
    ] {
        let mut sockets = open_room(url, &format!("bench-throughput-{batch}"), 2)?;
        let mut receiver = sockets.pop().ok_or("no receiver")?;
        let mut sender = sockets.pop().ok_or("no sender")?;
        let to = receiver.id().ok_or("receiver has no id")?;
        let counter = std::thread::spawn(move || {
            let mut received = 0u64;
            let deadline = Instant::now() + duration + Duration::from_millis(300);
            while let Some(_message) =
                receiver.wait_message(deadline.saturating_duration_since(Instant::now()))
            {
                received += 1 + receiver.receive().len() as u64;
            }
            received
        });
        let payload = [7u8; 1200];
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            for _ in 0..batch {
                if sender.send_unreliable(to, &payload).is_ok() {
                    sent += 1;
                }
            }
            if pause.is_zero() {
                std::thread::yield_now();
            } else {
                std::thread::sleep(pause);
            }
        }
        let received = counter.join().map_err(|_| "counter thread panicked")?;
        let dropped = sender.stats(to).unwrap_or_default().dropped_unreliable;
        report(name, sent, received, dropped, duration);
    }
    // Baseline: bare webrtc-rs with the same 64 KiB send-buffer limit, flooding with
    // try_send from a task (a full buffer drops the datagram), yielding every 64.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sent = rt.block_on(async {
        let (a, b) = bare::connect_pair(64 * 1024).await?;
        let counter = tokio::spawn(async move {
            let mut received = 0u64;
            let deadline = tokio::time::Instant::now() + duration + Duration::from_millis(300);
            while let Ok(Some(_)) =
                tokio::time::timeout_at(deadline, bare::next_message(b.dc.as_ref())).await
            {
                received += 1;
            }
            received
        });
        let payload = [7u8; 1200];
        let start = Instant::now();
        let (mut sent, mut dropped) = (0u64, 0u64);
        while start.elapsed() < duration {
            for _ in 0..64 {
                sent += 1;
                if a.dc
                    .try_send(bytes::BytesMut::from(&payload[..]))
                    .await
                    .is_err()
                {
                    dropped += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        let received = counter.await.unwrap_or(0);
        let _ = a.pc.close().await;
        Ok::<_, Error>((sent, received, dropped))
    })?;
    let (sent, received, dropped) = (sent.0, sent.1, sent.2);
    report(
        "bare webrtc-rs, flood try_send",
        sent,
        received,
        dropped,
        duration,
    );
    Ok(())
}

fn report(name: &str, sent: u64, received: u64, dropped: u64, duration: Duration) {
    let secs = duration.as_secs_f64();
    println!(
        "{name:<38} offered {:>7.0} msg/s  delivered {:>6.0} msg/s = {:>5.1} MB/s  dropped oldest on send {:>5.1} %",
        sent as f64 / secs,
        received as f64 / secs,
        received as f64 * 1200.0 / secs / 1e6,
        100.0 * dropped as f64 / sent.max(1) as f64,
    );
}
