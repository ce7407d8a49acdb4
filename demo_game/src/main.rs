//! rtcplay-demo: a small 2D arena for 2-4 players over peer-to-peer WebRTC with
//! rollback netcode. See `docs/demo.md`. The same game runs on the desktop
//! (`desktop`) and in a browser tab (`web`, the wasm32 build).

#![forbid(unsafe_code)]

mod app;
mod bot;
mod game;
mod headless;
mod lobby;
mod state_mode;
mod window;

#[cfg(not(target_arch = "wasm32"))]
mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod desktop;
#[cfg(not(target_arch = "wasm32"))]
mod rejoin;
#[cfg(not(target_arch = "wasm32"))]
mod replays;
#[cfg(not(target_arch = "wasm32"))]
mod server;
#[cfg(not(target_arch = "wasm32"))]
mod state_dir;
#[cfg(target_arch = "wasm32")]
mod web;

/// Log filter directives that keep webrtc-rs's own warnings out of the console:
/// during every setup it warns about benign races (a connectivity check before the
/// remote credentials, no candidate pairs yet, DTLS without a server name). Real
/// failures still reach the player through the socket's errors; `RUST_LOG`
/// overrides all of this. A target directive matches by prefix, so `rtc` also
/// matches our `rtcplay*` crates: whoever uses this names their levels after it.
pub const QUIET_WEBRTC: &str = "rtc=error,webrtc=error";

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    desktop::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {
    web::main();
}
