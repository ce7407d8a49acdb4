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
    /// Disconnect timeout in milliseconds.
    #[arg(long, default_value_t = 3000)]
    disconnect_ms: u64,
}

fn main() {
    let args = Args::parse();
    let mut config = SocketConfig::new(args.url, args.room, args.players);
    if args.loopback {
        config.bind_ip = std::net::Ipv4Addr::LOCALHOST.into();
    }
    config.disconnect_timeout = Duration::from_millis(args.disconnect_ms);
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
                SocketEvent::Joined { me } => println!("joined {}", me.0),
                SocketEvent::PeerConnected(peer) => println!("connected {}", peer.0),
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
