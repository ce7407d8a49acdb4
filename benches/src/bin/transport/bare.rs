//! The baseline: two bare webrtc-rs 0.21 connections in one process, no rtcplay code.
//!
//! Same channel setup as rtcplay's unreliable channel (negotiated, unordered, no
//! retransmits), default setting engine, trickle ICE relayed through in-process
//! channels. The RTT loop awaits the data channel directly on the tokio runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent,
};

struct Trickle(mpsc::UnboundedSender<RTCIceCandidateInit>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Trickle {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.0.send(init);
        }
    }
}

/// One side of the bare pair.
pub struct BareSide {
    /// Keeps the connection alive.
    pub pc: Arc<dyn PeerConnection>,
    /// The unreliable channel.
    pub dc: Arc<dyn DataChannel>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn side(
    send_buffer_limit: usize,
) -> Result<(BareSide, mpsc::UnboundedReceiver<RTCIceCandidateInit>), Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_handler(Arc::new(Trickle(tx)))
        .with_data_channel_send_buffer_limit(send_buffer_limit)
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let dc = pc
        .create_data_channel(
            "unreliable",
            Some(RTCDataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                negotiated: Some(0),
                ..Default::default()
            }),
        )
        .await?;
    Ok((BareSide { pc, dc }, rx))
}

/// Connect two bare peers and wait until a message crossed in each direction.
/// `send_buffer_limit` 0 means webrtc's default (unbounded).
pub async fn connect_pair(send_buffer_limit: usize) -> Result<(BareSide, BareSide), Error> {
    let (a, mut a_candidates) = side(send_buffer_limit).await?;
    let (b, mut b_candidates) = side(send_buffer_limit).await?;
    let offer = a.pc.create_offer(None).await?;
    a.pc.set_local_description(offer.clone()).await?;
    b.pc.set_remote_description(offer).await?;
    let answer = b.pc.create_answer(None).await?;
    b.pc.set_local_description(answer.clone()).await?;
    a.pc.set_remote_description(answer).await?;
    let (a_pc, b_pc) = (a.pc.clone(), b.pc.clone());
    let relay_ab = tokio::spawn(async move {
        while let Some(c) = a_candidates.recv().await {
            let _ = b_pc.add_ice_candidate(c).await;
        }
    });
    let relay_ba = tokio::spawn(async move {
        while let Some(c) = b_candidates.recv().await {
            let _ = a_pc.add_ice_candidate(c).await;
        }
    });
    // Both sides keep saying hello until they hear each other (the first message
    // after open can be lost).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut a_heard, mut b_heard) = (false, false);
    while !(a_heard && b_heard) {
        if Instant::now() > deadline {
            return Err("bare pair did not connect within 10 s".into());
        }
        let _ = a.dc.send(BytesMut::from(&b"hi"[..])).await;
        let _ = b.dc.send(BytesMut::from(&b"hi"[..])).await;
        let wait = Duration::from_millis(20);
        if let Ok(Some(DataChannelEvent::OnMessage(_))) =
            tokio::time::timeout(wait, a.dc.poll()).await
        {
            a_heard = true;
        }
        if let Ok(Some(DataChannelEvent::OnMessage(_))) =
            tokio::time::timeout(wait, b.dc.poll()).await
        {
            b_heard = true;
        }
    }
    relay_ab.abort();
    relay_ba.abort();
    Ok((a, b))
}

/// Next message on a channel, skipping other events.
pub async fn next_message(dc: &dyn DataChannel) -> Option<BytesMut> {
    loop {
        match dc.poll().await? {
            DataChannelEvent::OnMessage(message) => return Some(message.data),
            _ => continue,
        }
    }
}
