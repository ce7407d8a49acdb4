//! How the browser's callbacks reach the room: each one turns its event into an
//! [`Input`] and hands it to [`Shared::deliver`], which feeds the room one input at
//! a time. Callbacks hold a `Weak` reference, so a dropped socket stops listening
//! and nothing keeps it alive.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use wasm_bindgen::closure::Closure;
use wasm_bindgen::convert::FromWasmAbi;

use super::room::WebRoom;
use crate::signaling::SignalData;
use crate::transport::{Channel, PeerId};

/// Something the browser reported.
#[derive(Debug)]
pub(super) enum Input {
    /// The timer set for the earliest core wakeup fired.
    Timer,
    /// The signaling WebSocket opened.
    SignalingOpen,
    /// A text frame from the signaling server.
    SignalingText(String),
    /// A binary frame from the signaling server (not part of the protocol).
    SignalingOther,
    /// The signaling WebSocket closed or failed.
    SignalingClosed,
    /// A connection attempt could not even start (the room's own follow-up).
    StartFailed {
        remote: PeerId,
        attempt: u32,
        error: crate::transport::TransportError,
    },
    /// An event of one connection attempt.
    Peer {
        remote: PeerId,
        attempt: u32,
        input: PeerInput,
    },
}

/// An event of one connection attempt.
#[derive(Debug)]
pub(super) enum PeerInput {
    /// Our offer or answer is set locally: send it.
    LocalDescription(SignalData),
    /// A local ICE candidate (`EndOfCandidates` when gathering is done): send it.
    LocalCandidate(SignalData),
    /// The remote's offer or answer is set: queued candidates can go in.
    RemoteDescriptionSet,
    /// `iceConnectionState` changed.
    IceState(web_sys::RtcIceConnectionState),
    /// `connectionState` changed.
    PcState(web_sys::RtcPeerConnectionState),
    /// A data channel opened.
    Open(Channel),
    /// A message on a data channel (`None`: a text message, which is never valid).
    Message(Channel, Option<Vec<u8>>),
    /// A data channel's buffer drained below its low-water mark.
    BufferLow(Channel),
    /// A data channel closed.
    Closed,
    /// The selected candidate pair's types (ours, the remote's), from `getStats()`.
    CandidateTypes(super::candidate_stats::CandidatePair),
    /// A WebRTC call failed.
    Failed(String),
}

/// The socket's state, shared with the browser's callbacks.
pub(super) struct Shared {
    pub(super) room: RefCell<WebRoom>,
    inputs: RefCell<VecDeque<Input>>,
}

impl Shared {
    pub(super) fn new(room: WebRoom) -> Rc<Shared> {
        Rc::new(Shared {
            room: RefCell::new(room),
            inputs: RefCell::new(VecDeque::new()),
        })
    }

    /// Queue `input` and feed the room everything queued.
    pub(super) fn deliver(self: &Rc<Self>, input: Input) {
        self.inputs.borrow_mut().push_back(input);
        self.run();
    }

    /// Feed the room every queued input, then re-arm its timer. When the room is
    /// busy (a call from inside it), the outer call drains the queue.
    pub(super) fn run(self: &Rc<Self>) {
        let Ok(mut room) = self.room.try_borrow_mut() else {
            return;
        };
        let weak = Rc::downgrade(self);
        loop {
            let next = room
                .take_follow_up()
                .or_else(|| self.inputs.borrow_mut().pop_front());
            match next {
                Some(input) => room.handle(&weak, input),
                None => break,
            }
        }
        room.arm_timer();
    }
}

/// A callback for a browser event: `make` turns the event into an input (or
/// nothing), delivered to the socket while it exists.
pub(super) fn callback<E: FromWasmAbi + 'static>(
    shared: &Weak<Shared>,
    make: impl Fn(E) -> Option<Input> + 'static,
) -> Closure<dyn FnMut(E)> {
    let shared = shared.clone();
    Closure::new(move |event: E| {
        if let (Some(shared), Some(input)) = (shared.upgrade(), make(event)) {
            shared.deliver(input);
        }
    })
}

/// Run a browser promise chain; its outcome becomes an input.
pub(super) fn spawn(
    shared: &Weak<Shared>,
    work: impl std::future::Future<Output = Option<Input>> + 'static,
) {
    let shared = shared.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Some(input) = work.await {
            if let Some(shared) = shared.upgrade() {
                shared.deliver(input);
            }
        }
    });
}
