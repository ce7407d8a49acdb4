//! Socket configuration: where to meet, which ICE servers to use, timeouts and queue sizes.

use std::time::Duration;

/// One STUN or TURN server, as in the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServerConfig {
    /// Server URLs, e.g. `stun:stun.example.org:3478` or `turn:turn.example.org:3478`.
    pub urls: Vec<String>,
    /// TURN username (unused for STUN).
    pub username: Option<String>,
    /// TURN credential (unused for STUN).
    pub credential: Option<String>,
}

impl IceServerConfig {
    /// A STUN server.
    pub fn stun(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            ..Self::default()
        }
    }

    /// A TURN server with its long-term credentials.
    pub fn turn(
        url: impl Into<String>,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        Self {
            urls: vec![url.into()],
            username: Some(username.into()),
            credential: Some(credential.into()),
        }
    }
}

/// Everything a socket needs to join a room and keep its connections healthy.
///
/// Build one with [`SocketConfig::new`] and adjust fields; every field has a sensible
/// default for a game on the public internet.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketConfig {
    /// WebSocket URL of the signaling server, e.g. `ws://127.0.0.1:3536`.
    pub signaling_url: String,
    /// Other nodes of the same signaling cluster (`rtcplay-signal --cluster`),
    /// tried in order when `signaling_url` cannot be reached or is
    /// `unavailable`. When the signaling connection is lost mid-match (its node
    /// went away), the socket takes its seat back through the next of these
    /// URLs (all of them, `signaling_url` too, for up to `disconnect_timeout`)
    /// without touching its WebRTC connections, and says
    /// [`SignalingResumed`](super::SocketEvent::SignalingResumed); only if that
    /// fails does it say `SignalingLost`. Empty (the default): one server, and
    /// a lost signaling connection is `SignalingLost` at once. Native sockets only.
    pub fallback_signaling_urls: Vec<String>,
    /// Room name. The server groups the next `players` joiners of this name into a match.
    pub room: String,
    /// Room size including this peer, 2..=8.
    pub players: u8,
    /// Optional token passed to the signaling server.
    pub token: Option<String>,
    /// Private-room secret: the server matches only joiners with the same secret.
    pub room_secret: Option<String>,
    /// ICE servers used in addition to the ones the signaling server announces.
    pub ice_servers: Vec<IceServerConfig>,
    /// Use only TURN relay candidates (the browser's `iceTransportPolicy: "relay"`):
    /// hides our addresses from the peers, and forces the relay path in tests.
    pub relay_only: bool,
    /// Local address to bind the UDP sockets to. `0.0.0.0` gathers every interface
    /// except loopback; use `127.0.0.1` for tests on one machine.
    pub bind_ip: std::net::IpAddr,
    /// With a TURN server among the ICE servers: a peer pair that has not connected
    /// this long after "room full" (or whose ICE failed sooner) is set up again over
    /// the TURN relay only. Per pair: the other pairs keep their direct paths.
    /// 800 ms by default: direct paths through NATs come up in 0.1–0.35 s (on a
    /// LAN in a few ms), so a pair still trying after 0.8 s is most likely behind a
    /// symmetric NAT or a firewall and is relayed within a second of room full. A
    /// direct path that needs longer (several round trips of 150 ms and more)
    /// would be relayed too: raise this for such players.
    pub relay_fallback_after: Duration,
    /// Time from "room full" until a peer must be connected (hello acknowledged on
    /// both channels). A peer that misses it is reported as an error and dropped.
    pub handshake_timeout: Duration,
    /// A connected link from which nothing (not even a keepalive) arrived for this
    /// long has stalled: the socket restarts it (a fresh connection negotiated
    /// through signaling) instead of giving the peer up, and the game hears
    /// [`SocketEvent::PeerReconnecting`](super::SocketEvent::PeerReconnecting).
    pub restart_after: Duration,
    /// How long a stalled link may take to come back. A peer whose link is not
    /// restored this long after it stalled is reported disconnected; so is one
    /// that left signaling while its link was down (its process is gone).
    pub disconnect_timeout: Duration,
    /// Interval of the RTT pings on the unreliable channel. They double as keepalives.
    pub ping_interval: Duration,
    /// Unreliable datagrams queued per peer before the oldest are dropped.
    pub unreliable_queue: usize,
    /// Reliable messages queued per peer; sends beyond it fail with
    /// [`TransportError::QueueFull`](super::TransportError::QueueFull).
    pub reliable_queue: usize,
    /// Received messages waiting for [`receive`](super::native::Socket::receive); beyond
    /// it new arrivals are dropped and counted.
    pub receive_queue: usize,
    /// Bytes webrtc may hold unsent per data channel before unreliable sends wait
    /// (and our small queue drops the oldest).
    pub send_buffer_limit: usize,
    /// Speed up connection setup (short ICE check interval, a capped driver sleep while
    /// a connection is being set up). Costs nothing after setup.
    pub fast_connect: bool,
    /// Join as a spectator: not one of the `players`; connects only to the room's
    /// host (its first player), which sends the match's confirmed inputs. Joins
    /// the running match of this room name and size.
    pub spectator: bool,
    /// As a spectator: the room's spectator secret. As the player who creates the
    /// room (its first player): the secret spectators must give to watch.
    pub spectator_secret: Option<String>,
    /// As the player who creates the room: admit no spectators at all.
    pub no_spectators: bool,
    /// Take this player's seat back in its running match: the token
    /// [`Socket::rejoin_token`](super::Socket::rejoin_token) gave before its
    /// connection (or process) was lost. Room name and size must be the same.
    pub rejoin_token: Option<String>,
    /// Drop-in room: the match starts when this many players (2..=`players`)
    /// are in, and the free seats are taken by players who join while it runs
    /// (`Seats`, `PlayerDroppedIn`). `None`: the room starts full.
    pub start_with: Option<u8>,
}

impl SocketConfig {
    /// A configuration with defaults for everything but where to meet.
    pub fn new(signaling_url: impl Into<String>, room: impl Into<String>, players: u8) -> Self {
        Self {
            signaling_url: signaling_url.into(),
            fallback_signaling_urls: Vec::new(),
            room: room.into(),
            players,
            token: None,
            room_secret: None,
            ice_servers: Vec::new(),
            relay_only: false,
            bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            relay_fallback_after: Duration::from_millis(800),
            handshake_timeout: Duration::from_secs(10),
            restart_after: Duration::from_secs(2),
            disconnect_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_millis(250),
            unreliable_queue: 32,
            reliable_queue: 1024,
            receive_queue: 4096,
            send_buffer_limit: 64 * 1024,
            fast_connect: true,
            spectator: false,
            spectator_secret: None,
            no_spectators: false,
            rejoin_token: None,
            start_with: None,
        }
    }
}
