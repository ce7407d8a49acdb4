//! webrtc-rs callbacks and the internal events they become.
//!
//! Callbacks run on the connection's driver and block it until they return, so the
//! handler only forwards an event to the peer task. It holds a `Weak` reference:
//! a connection never keeps its own peer task's state alive.

use std::sync::Weak;

use tokio::sync::mpsc;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use crate::transport::link_protocol::LinkAction;
use crate::transport::Channel;

/// Internal events from the connection's handler and channel tasks to the peer task.
#[derive(Debug)]
pub(super) enum Internal {
    /// We gathered a candidate: trickle it to the remote.
    LocalCandidate(RTCIceCandidateInit),
    /// Gathering is done.
    GatheringComplete,
    /// ICE connection state changed.
    IceState(RTCIceConnectionState),
    /// Peer connection state changed (connected = ICE + DTLS up).
    PcState(RTCPeerConnectionState),
    /// A data channel opened.
    Open(Channel),
    /// What the link's protocol decided on a message a reader task handled (the
    /// reader sends answers itself; connected / disconnected / failed come here).
    Link(LinkAction),
    /// A data channel closed.
    ChannelClosed,
}

/// Receives webrtc's callbacks. Holds only a `Weak` reference, so a connection never
/// keeps its own peer task's state alive; callbacks just forward and return.
pub(super) struct Handler {
    pub(super) target: Weak<mpsc::UnboundedSender<Internal>>,
}

impl Handler {
    /// Hand `event` to the peer task, if it still runs.
    pub(super) fn forward(&self, event: Internal) {
        if let Some(tx) = self.target.upgrade() {
            let _ = tx.send(event);
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            self.forward(Internal::LocalCandidate(init));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.forward(Internal::GatheringComplete);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.forward(Internal::IceState(state));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.forward(Internal::PcState(state));
    }
}
