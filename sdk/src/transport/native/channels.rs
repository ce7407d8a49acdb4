//! The two data channels of a connection, and the tasks that drain and feed them.
//!
//! Each channel is drained by its own reader task for as long as it lives (webrtc-rs
//! stops reading a whole connection when one channel's event queue fills) and fed by
//! its own writer task from the game thread's queue.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use bytes::{BufMut, BytesMut};
use tokio::sync::{mpsc, Notify};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::error::{Error as RtcError, Result as RtcResult};
use webrtc::peer_connection::PeerConnection;

use super::handler::Internal;
use super::link::{Inbox, LinkPublisher, LinkShared};
use crate::transport::link_protocol::{Incoming, LinkAction};
use crate::transport::{Channel, PeerId};

/// SCTP stream id of the unreliable channel (negotiated out of band, same on both sides).
const UNRELIABLE_ID: u16 = 0;
/// SCTP stream id of the reliable channel.
const RELIABLE_ID: u16 = 1;

/// Both data channels of a connection.
pub(super) struct Channels {
    /// Unordered, no retransmissions.
    pub(super) unreliable: Arc<dyn DataChannel>,
    /// Ordered, reliable.
    pub(super) reliable: Arc<dyn DataChannel>,
}

impl Channels {
    /// Create both channels, pre-negotiated (same stream ids on both sides).
    pub(super) async fn create(pc: &dyn PeerConnection) -> RtcResult<Channels> {
        let unreliable = pc
            .create_data_channel(
                "unreliable",
                Some(RTCDataChannelInit {
                    ordered: false,
                    max_retransmits: Some(0),
                    negotiated: Some(UNRELIABLE_ID),
                    ..Default::default()
                }),
            )
            .await?;
        let reliable = pc
            .create_data_channel(
                "reliable",
                Some(RTCDataChannelInit {
                    ordered: true,
                    negotiated: Some(RELIABLE_ID),
                    ..Default::default()
                }),
            )
            .await?;
        Ok(Channels {
            unreliable,
            reliable,
        })
    }

    /// The channel of that kind.
    pub(super) fn get(&self, channel: Channel) -> &Arc<dyn DataChannel> {
        match channel {
            Channel::Unreliable => &self.unreliable,
            Channel::Reliable => &self.reliable,
        }
    }

    /// Wake the connection's driver so writes queued inside webrtc go out now.
    /// (`set_buffered_amount_low_threshold` ends in the driver's `wake_writes`.)
    pub(super) async fn nudge(&self) {
        let _ = self.unreliable.set_buffered_amount_low_threshold(0).await;
    }
}

/// Drains one data channel for as long as it lives: game payloads to the inbox,
/// control frames answered or forwarded to the peer task.
pub(super) async fn read_channel(
    dc: Arc<dyn DataChannel>,
    channel: Channel,
    remote: PeerId,
    inbox: Inbox,
    link: Arc<LinkShared>,
    publisher: LinkPublisher,
    internal: Weak<mpsc::UnboundedSender<Internal>>,
) {
    let forward = |event: Internal| {
        if let Some(tx) = internal.upgrade() {
            let _ = tx.send(event);
        }
    };
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnOpen => forward(Internal::Open(channel)),
            DataChannelEvent::OnClose => {
                forward(Internal::ChannelClosed);
                break;
            }
            DataChannelEvent::OnMessage(message) => {
                let mut actions = Vec::new();
                let incoming = match link.protocol.lock() {
                    Ok(mut protocol) => {
                        protocol.message(link.now(), channel, &message.data, &mut actions)
                    }
                    Err(_) => break,
                };
                // Answers first (hello_ack, pong: on this channel), and the link
                // handed to the game thread before the message that made it ready.
                for action in actions {
                    match action {
                        LinkAction::Send(on, frame) if on == channel => {
                            let _ = dc.try_send(BytesMut::from(&frame[..])).await;
                        }
                        LinkAction::PeerReady => publisher.publish(),
                        other => forward(Internal::Link(other)),
                    }
                }
                match incoming {
                    Incoming::Data(payload) => inbox.deliver(remote, channel, payload, &link),
                    Incoming::Malformed => {
                        link.malformed.fetch_add(1, Ordering::Relaxed);
                    }
                    Incoming::Control | Incoming::Ignored => {}
                }
            }
            _ => {}
        }
    }
}

/// Feeds one channel from the game's queue. Unreliable: `try_send`, and when webrtc's
/// send buffer is full, wait for room while the game-side queue keeps only the newest.
pub(super) async fn write_channel(
    dc: Arc<dyn DataChannel>,
    channel: Channel,
    queue: crossbeam_channel::Receiver<BytesMut>,
    wake: Arc<Notify>,
    link: Arc<LinkShared>,
) {
    loop {
        wake.notified().await;
        while let Ok(frame) = queue.try_recv() {
            let payload = frame.len().saturating_sub(1) as u64;
            let sent = match channel {
                Channel::Unreliable => dc.try_send(frame).await,
                Channel::Reliable => dc.send(frame).await,
            };
            match sent {
                Ok(()) => {
                    link.bytes_out.fetch_add(payload, Ordering::Relaxed);
                }
                Err(RtcError::ErrOutboundPacketTooLarge) => {
                    // The remote advertised a smaller limit than ours (docs/transport.md
                    // asks for at least 64 KiB): this message cannot go, the next may.
                    tracing::warn!(
                        size = payload + 1,
                        "message over the remote's size limit dropped"
                    );
                    link.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                }
                Err(RtcError::ErrSendBufferFull) => {
                    link.dropped_unreliable.fetch_add(1, Ordering::Relaxed);
                    if dc.writable().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// Frame a game payload for the wire (one allocation, the payload copied once).
pub(crate) fn frame_data(payload: &[u8]) -> BytesMut {
    let mut frame = BytesMut::with_capacity(payload.len() + 1);
    frame.put_u8(crate::transport::wire::DATA_TAG);
    frame.extend_from_slice(payload);
    frame
}
