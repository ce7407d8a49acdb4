//! Load generator for a cluster of rtcplay signaling nodes (`rtcplay-signal
//! --cluster`), side by side with a lone server in the same run.
//!
//! Starts a real `nats-server` (JetStream on, monitoring on) and
//! `rtcplay-signal` processes on 127.0.0.1, and drives them with real
//! WebSocket clients:
//!
//! 1. **Pairing**: a pool of connected clients (spread evenly over the nodes)
//!    is paired into 2-player rooms at fixed offered rates (open loop). In a
//!    2-node cluster every room has one client on each node, so every room
//!    crosses the broker. Latency is per client, `join` sent → `room_full`
//!    received; both then `leave`. Room names are either **unique** (every
//!    room claims a new name in the bucket) or **shared** (next-N matchmaking
//!    on one name: every join goes to that name's home node).
//! 2. **Idle clients**: clients join 2-player rooms spanning the nodes and
//!    stay; each node's RSS growth per client it holds.
//!
//! Per rate it reports the server CPU per room (all nodes), the broker's CPU
//! per room and the broker's messages and bytes per room (nats-server's own
//! `/varz` counters, JetStream included).
//!
//! ```text
//! cargo build --release -p rtcplay_tools --bin rtcplay-signal
//! cargo run --release -p rtcplay_benches --bin cluster_load
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use rtcplay::signaling::protocol::ClientMessage;
use rtcplay_benches::percentiles::duration_percentile;
use rtcplay_benches::signal_clients::{
    connect, cpu_seconds, server_binary, until_room_full, BoxError, Ws,
};
use rtcplay_testkit::cluster::{wait_for_cluster, Nats, SignalNode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Cluster load generator (see the module docs).
#[derive(Debug, Parser)]
struct Args {
    /// Path of the `rtcplay-signal` binary (default: next to this executable).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Offered room rates (rooms/s), comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [250u32, 500, 1000, 2000, 3000])]
    rates: Vec<u32>,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Connected clients in the pairing pool.
    #[arg(long, default_value_t = 2000)]
    pool: usize,
    /// Idle clients for the memory test.
    #[arg(long, default_value_t = 4000)]
    idle: usize,
    /// Stop raising the rate once p99 exceeds this many milliseconds.
    #[arg(long, default_value_t = 100.0)]
    stop_p99_ms: f64,
    /// Skip the idle-memory test.
    #[arg(long)]
    skip_idle: bool,
    /// Setups to measure: 0 = a lone server, N = a cluster of N nodes.
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1, 2])]
    nodes: Vec<usize>,
}

/// A lone server, or a cluster of `nodes` behind one NATS server.
struct Setup {
    // The nodes stop before the broker (fields drop in this order).
    nodes: Vec<SignalNode>,
    nats: Option<Nats>,
}

/// Node settings: the pool's clients join thousands of rooms each.
const NODE_ARGS: &[&str] = &[
    "--joins-per-minute",
    "100000000",
    "--max-connections",
    "1000000",
    "--max-rooms",
    "1000000",
    "--idle-timeout",
    "3600",
];

impl Setup {
    fn start(bin: &str, nodes: usize) -> Setup {
        if nodes == 0 {
            return Setup {
                nats: None,
                nodes: vec![SignalNode::start_lone(bin, NODE_ARGS)],
            };
        }
        let nats = Nats::start();
        let nodes: Vec<SignalNode> = (0..nodes)
            .map(|_| SignalNode::start(bin, &nats.url(), NODE_ARGS))
            .collect();
        wait_for_cluster(&nodes.iter().collect::<Vec<_>>());
        Setup {
            nats: Some(nats),
            nodes,
        }
    }

    fn label(&self) -> String {
        match self.nats {
            None => "lone server".into(),
            Some(_) => format!("cluster of {}", self.nodes.len()),
        }
    }

    /// CPU seconds of the nodes together, and of the broker.
    fn cpu(&self) -> (f64, f64) {
        let nodes = self
            .nodes
            .iter()
            .filter_map(SignalNode::pid)
            .map(|pid| cpu_seconds(&pid.to_string()).unwrap_or(0.0))
            .sum();
        let broker = self
            .nats
            .as_ref()
            .and_then(Nats::pid)
            .map_or(0.0, |pid| cpu_seconds(&pid.to_string()).unwrap_or(0.0));
        (nodes, broker)
    }

    /// The broker's messages and bytes in and out so far.
    fn broker_traffic(&self) -> [u64; 4] {
        let Some(varz) = self.nats.as_ref().and_then(Nats::varz) else {
            return [0; 4];
        };
        ["in_msgs", "in_bytes", "out_msgs", "out_bytes"].map(|k| varz[k].as_u64().unwrap_or(0))
    }
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let bin = server_binary(args.server.as_ref())?;
    let bin = bin.to_string_lossy().into_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "machine: {} cores; server: {bin}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for shared_name in [false, true] {
        println!(
            "\n## Pairing, {} room names ({} pooled clients, {:.0} s per rate, open loop)",
            if shared_name { "one shared" } else { "unique" },
            args.pool,
            args.seconds
        );
        println!(
            "| setup | offered rooms/s | paired rooms/s | p50 | p99 | node CPU µs/room | broker CPU µs/room | broker msgs/room | broker bytes/room |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &nodes in &args.nodes {
            let setup = Setup::start(&bin, nodes);
            runtime.block_on(pairing(&setup, &args, shared_name))?;
        }
    }
    if !args.skip_idle {
        println!(
            "\n## Idle clients ({} in 2-player rooms spanning the nodes)",
            args.idle
        );
        println!("| setup | node | clients on it | RSS before | RSS after | per client |");
        println!("|---|---:|---:|---:|---:|---:|");
        for nodes in [0, 2] {
            let setup = Setup::start(&bin, nodes);
            runtime.block_on(idle(&setup, args.idle))?;
        }
    }
    Ok(())
}

/// Pair the pool at each rate; print a row per rate.
async fn pairing(setup: &Setup, args: &Args, shared_name: bool) -> Result<(), BoxError> {
    let nodes = setup.nodes.len();
    // One free-list per node: a room takes one client from each of two nodes.
    let mut free_rx = Vec::new();
    let mut free_tx = Vec::new();
    for _ in 0..nodes {
        let (tx, rx) = mpsc::channel::<usize>(args.pool);
        free_tx.push(tx);
        free_rx.push(rx);
    }
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<Duration>();
    let mut jobs = Vec::new();
    for id in 0..args.pool {
        let node = id % nodes;
        let mut ws = connect(&setup.nodes[node].url).await?;
        let (job_tx, mut job_rx) = mpsc::channel::<String>(1);
        jobs.push(job_tx);
        let free = free_tx[node].clone();
        let lat_tx = lat_tx.clone();
        free.send(id).await?;
        tokio::spawn(async move {
            while let Some(name) = job_rx.recv().await {
                let sent = Instant::now();
                let join = Message::text(ClientMessage::join(name, 2).to_json());
                if let Err(error) = join_and_wait(&mut ws, join).await {
                    println!("  (client {id}: {error})");
                    return;
                }
                let _ = lat_tx.send(sent.elapsed());
                let leave = Message::text(ClientMessage::Leave.to_json());
                if ws.send(leave).await.is_err() {
                    return;
                }
                let _ = free.send(id).await;
            }
        });
    }
    drop(lat_tx);
    let mut room = 0u64;
    for &rate in &args.rates {
        let total = (f64::from(rate) * args.seconds).round() as u64;
        let (cpu0, broker0) = setup.cpu();
        let traffic0 = setup.broker_traffic();
        let start = Instant::now();
        let mut dispatched = 0;
        while dispatched < total {
            let due = ((start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
            while dispatched < due {
                let a = free_rx[0].recv().await.ok_or("pool closed")?;
                let b = free_rx[(1).min(nodes - 1)]
                    .recv()
                    .await
                    .ok_or("pool closed")?;
                let name = if shared_name {
                    "quick".to_owned()
                } else {
                    format!("room-{room}")
                };
                room += 1;
                jobs[a].send(name.clone()).await?;
                jobs[b].send(name).await?;
                dispatched += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut latencies = Vec::with_capacity(2 * total as usize);
        let deadline = Instant::now() + Duration::from_secs(30);
        while (latencies.len() as u64) < 2 * total {
            match tokio::time::timeout_at(deadline, lat_rx.recv()).await {
                Ok(Some(latency)) => latencies.push(latency),
                _ => break,
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        // Let the leaves settle before reading the counters.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (cpu1, broker1) = setup.cpu();
        let traffic1 = setup.broker_traffic();
        latencies.sort();
        let paired = latencies.len() as f64 / 2.0;
        let per_room = |x: f64| x / paired.max(1.0);
        let p99 = duration_percentile(&latencies, 0.99);
        println!(
            "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} | {:.0} | {:.1} | {:.0} |",
            setup.label(),
            rate,
            paired / elapsed,
            ms(duration_percentile(&latencies, 0.50)),
            ms(p99),
            per_room((cpu1 - cpu0) * 1e6),
            per_room((broker1 - broker0) * 1e6),
            per_room((traffic1[0] - traffic0[0]) as f64),
            per_room((traffic1[1] - traffic0[1]) as f64),
        );
        if (paired as u64) < total {
            println!("  ({} rooms not paired)", total - paired as u64);
            break;
        }
        if ms(p99) > args.stop_p99_ms {
            break;
        }
    }
    Ok(())
}

/// Idle clients in rooms spanning the nodes; each node's RSS per client.
async fn idle(setup: &Setup, clients: usize) -> Result<(), BoxError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<u64> = setup.nodes.iter().map(rss).collect();
    let nodes = setup.nodes.len();
    let joined: Vec<Result<Ws, BoxError>> = futures_util::stream::iter(0..clients)
        .map(|i| {
            let url = setup.nodes[i % nodes].url.clone();
            async move {
                let mut ws = connect(&url).await?;
                let join = ClientMessage::join(format!("idle-{}", i / 2), 2).to_json();
                ws.send(Message::text(join)).await?;
                until_room_full(&mut ws).await?;
                Ok(ws)
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let mut held = Vec::new();
    for ws in joined {
        held.push(ws?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, node) in setup.nodes.iter().enumerate() {
        let after = rss(node);
        let on_it = clients / nodes;
        println!(
            "| {} | {} | {} | {:.1} MiB | {:.1} MiB | {:.1} KB |",
            setup.label(),
            i,
            on_it,
            mib(before[i]),
            mib(after),
            after.saturating_sub(before[i]) as f64 / 1000.0 / on_it as f64
        );
    }
    drop(held);
    Ok(())
}

fn rss(node: &SignalNode) -> u64 {
    let Some(pid) = node.pid() else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn join_and_wait(ws: &mut Ws, join: Message) -> Result<(), BoxError> {
    ws.send(join).await?;
    until_room_full(ws).await
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
