//! The page (wasm32 only): the probe's socket, its game loop, the CPU bench.

use std::cell::RefCell;
use std::rc::Rc;

use rtcplay::transport::{Channel, Socket, SocketConfig, SocketEvent};
use wasm_bindgen::prelude::*;

fn log(line: &str) {
    web_sys::console::log_1(&JsValue::from_str(line));
}

struct Probe {
    socket: Option<Socket>,
}

impl Probe {
    /// One frame of the page: handle what arrived.
    fn frame(&mut self) {
        let Some(socket) = &mut self.socket else {
            return;
        };
        for event in socket.events() {
            log(&format!("probe event: {event:?}"));
            if let SocketEvent::PeerConnected(peer) = event {
                if let Some(stats) = socket.stats(peer) {
                    let ms = |d: Option<std::time::Duration>| {
                        d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
                    };
                    let setup = stats.setup;
                    log(&format!(
                        "probe setup with {}: ice {:.3} dtls {:.3} open {:.3} acked {:.3} ms",
                        peer.0,
                        ms(setup.ice_connected),
                        ms(setup.dtls_connected),
                        ms(setup.channels_open),
                        ms(setup.hello_acked)
                    ));
                }
                let me = socket.id().map_or(0, |id| id.0);
                if let Err(error) = socket.send_reliable(peer, format!("hi from {me}").as_bytes()) {
                    log(&format!("probe error: {error}"));
                }
            }
        }
        let mut close = false;
        for message in socket.receive() {
            let text = String::from_utf8_lossy(&message.data).into_owned();
            if text.len() <= 200 {
                log(&format!(
                    "probe got {:?} from {}: {text}",
                    message.channel, message.from.0
                ));
            }
            let reply = if text.starts_with("echo:") {
                Some((message.channel, message.data.clone()))
            } else if text == "stats?" {
                let stats = socket.stats(message.from);
                Some((Channel::Reliable, format!("stats: {stats:?}").into_bytes()))
            } else {
                close |= text == "close";
                None
            };
            if let Some((channel, data)) = reply {
                let sent = match channel {
                    Channel::Unreliable => socket.send_unreliable(message.from, &data),
                    Channel::Reliable => socket.send_reliable(message.from, &data),
                };
                if let Err(error) = sent {
                    log(&format!("probe error: {error}"));
                }
            }
        }
        if close {
            self.socket = None;
            log("probe closed");
        }
    }
}

/// Join `room` (of `players`) on the signaling server at `signal_url` (with
/// `relay_only`: through the TURN servers it hands out, only) and serve the test
/// until the page closes.
#[wasm_bindgen]
pub fn start(signal_url: &str, room: &str, players: u8, relay_only: bool) {
    let mut config = SocketConfig::new(signal_url, room, players);
    config.relay_only = relay_only;
    let socket = match Socket::new(config) {
        Ok(socket) => socket,
        Err(error) => {
            log(&format!("probe error: {error}"));
            return;
        }
    };
    log("probe started");
    let probe = Rc::new(RefCell::new(Probe {
        socket: Some(socket),
    }));
    let frame = Closure::<dyn FnMut()>::new(move || probe.borrow_mut().frame());
    if let Some(window) = web_sys::window() {
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            frame.as_ref().unchecked_ref(),
            5,
        );
    }
    // The page lives as long as the test needs it.
    frame.forget();
}

/// The session's CPU cost per tick in this page (see [`crate::session_cpu`]):
/// microseconds per tick of a `players` mesh, over `ticks` ticks.
#[wasm_bindgen]
pub fn bench_session(players: usize, ticks: u32) -> f64 {
    let performance = web_sys::window().and_then(|window| window.performance());
    crate::session_cpu::micros_per_tick(players, ticks, || {
        performance.as_ref().map_or(0.0, |p| p.now())
    })
}
