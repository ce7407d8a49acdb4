//! Helpers shared by the signaling test binaries: a real server on 127.0.0.1:0,
//! joins through the SDK's client, and a raw WebSocket client that can send anything.

#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtcplay::signaling::protocol::ClientMessage;
use rtcplay::signaling::{
    ClientConfig, ErrorCode, PeerId, ServerConfig, ServerMessage, SignalData, SignalingClient,
    SignalingError, SignalingServer,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous deadline for anything the test awaits (a shared 2-core machine).
pub const DEADLINE: Duration = Duration::from_secs(10);

pub async fn server(config: ServerConfig) -> SignalingServer {
    SignalingServer::bind("127.0.0.1:0", config)
        .await
        .expect("bind signaling server")
}

pub async fn join(server: &SignalingServer, room: &str, players: u8) -> (SignalingClient, PeerId) {
    let (client, welcome) = SignalingClient::join(&server.url(), room, players, None)
        .await
        .expect("join");
    (client, welcome.peer_id)
}

pub async fn next(client: &mut SignalingClient) -> ServerMessage {
    tokio::time::timeout(DEADLINE, client.next_event())
        .await
        .expect("event within the deadline")
        .expect("connection open")
}

/// Read events until `room_full`, returning its peer list.
pub async fn until_full(client: &mut SignalingClient) -> Vec<PeerId> {
    loop {
        match next(client).await {
            ServerMessage::RoomFull { peers } => return peers,
            ServerMessage::PeerJoined { .. } => {}
            other => panic!("unexpected event before room_full: {other:?}"),
        }
    }
}

pub fn offer(text: &str) -> SignalData {
    SignalData::Offer { sdp: text.into() }
}

/// A raw WebSocket client that can send anything.
pub struct Raw {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Raw {
    pub async fn connect(server: &SignalingServer) -> Raw {
        let (ws, _) = tokio_tungstenite::connect_async(server.url())
            .await
            .expect("websocket connect");
        Raw { ws }
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_text(msg.to_json()).await;
    }

    pub async fn join(&mut self, room: &str, players: u8, token: Option<&str>) -> ServerMessage {
        let mut join = ClientMessage::join(room, players);
        if let ClientMessage::Join { token: t, .. } = &mut join {
            *t = token.map(str::to_owned);
        }
        self.send(&join).await;
        self.recv().await.expect("answer to join")
    }

    /// Next server message; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("frame within the deadline");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(ServerMessage::from_json(&text).expect("valid server message"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            Some(ServerMessage::Error { code: got, .. }) => assert_eq!(got, code),
            other => panic!("expected error {code}, got {other:?}"),
        }
    }

    pub async fn expect_closed(&mut self) {
        if let Some(msg) = self.recv().await {
            panic!("expected the server to close, got {msg:?}");
        }
    }

    pub async fn ping(&mut self) {
        self.send(&ClientMessage::Ping).await;
        assert_eq!(self.recv().await, Some(ServerMessage::Pong));
    }
}

/// Join through the SDK client with a room secret (or none); the join's result.
pub async fn join_secret(
    server: &SignalingServer,
    room: &str,
    players: u8,
    secret: Option<&str>,
) -> Result<(SignalingClient, PeerId), SignalingError> {
    let config = ClientConfig {
        room_secret: secret.map(str::to_owned),
        ..ClientConfig::default()
    };
    SignalingClient::join_with_config(&server.url(), room, players, None, config)
        .await
        .map(|(client, welcome)| (client, welcome.peer_id))
}

/// The join was refused with `code`.
pub fn refused_with(result: Result<(SignalingClient, PeerId), SignalingError>, code: ErrorCode) {
    match result {
        Err(SignalingError::Refused { code: got, .. }) => assert_eq!(got, code),
        Err(other) => panic!("expected {code}, got {other}"),
        Ok(_) => panic!("expected {code}, the join was accepted"),
    }
}
