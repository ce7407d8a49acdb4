//! A minimal rtcplay peer: joins a room, prints its events, echoes every message
//! back to its sender on the same channel. Handy for trying a signaling server and
//! used by the transport tests as a separate process to kill.

use std::time::Duration;

use clap::Parser;
use rtcplay::transport::native::Socket;
use rtcplay::transport::{Channel, SocketConfig, SocketEvent};

/// Join an rtcplay room and echo every message.
#[derive(Debug, Parser)]
struct Args {
    /// Signaling server WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:3536")]
    url: String,
    /// Room name.
    #[arg(long, default_value = "echo")]
    room: String,
    /// Room size including this peer.
    #[arg(long, default_value_t = 2)]
    players: u8,
    /// Bind to 127.0.0.1 only (for tests on one machine).
    #[arg(long)]
    loopback: bool,
    /// How long a stalled link may take to come back, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    disconnect_ms: u64,
    /// Take this player's seat back in its running match (the token a killed
    /// `rtcplay-peer` printed as `rejoin-token <token>`).
    #[arg(long)]
    rejoin_token: Option<String>,
}

fn main() {
    let args = Args::parse();
    let mut config = SocketConfig::new(args.url, args.room, args.players);
    if args.loopback {
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    }
    config.disconnect_timeout = Duration::from_millis(args.disconnect_ms);
    config.rejoin_token = args.rejoin_token;
    let mut socket = match Socket::new(config) {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    loop {
        while let Some(event) = socket.wait_event(Duration::ZERO) {
            match &event {
                SocketEvent::Joined { me } => {
                    println!("joined {}", me.0);
                    if let Some(token) = socket.rejoin_token() {
                        println!("rejoin-token {token}");
                    }
                }
                SocketEvent::PeerConnected(peer) => println!("connected {}", peer.0),
                SocketEvent::PeerReconnecting(peer) => println!("reconnecting {}", peer.0),
                SocketEvent::PeerReconnected(peer) => println!("reconnected {}", peer.0),
                SocketEvent::PeerDisconnected { peer, reason } => {
                    println!("disconnected {} {reason:?}", peer.0)
                }
                SocketEvent::AllConnected => println!("all-connected"),
                SocketEvent::Error(error) => println!("error {error}"),
                _ => {}
            }
        }
        if let Some(message) = socket.wait_message(Duration::from_millis(5)) {
            let echoed = match message.channel {
                Channel::Unreliable => socket.send_unreliable(message.from, &message.data),
                Channel::Reliable => socket.send_reliable(message.from, &message.data),
            };
            if let Err(error) = echoed {
                println!("error {error}");
            }
        }
    }
}
