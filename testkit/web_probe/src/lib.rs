//! A page program for rtcplay's browser tests (`BrowserPage::open_probe` in `rtcplay_testkit::chromium`): it
//! joins a room with the web backend's [`Socket`](rtcplay::transport::Socket) and
//! obeys the native peers in the room, so a test can check the backend from the
//! native side while the page's console tells what the browser saw.
//!
//! - it logs every event (`probe event: ...`), the setup times of each connected
//!   peer (`probe setup with <peer>: ice .. dtls .. open .. acked .. ms`) and every
//!   text message (`probe got <channel> from <peer>: <text>`);
//! - once connected to a peer it says `hi from <its id>` on the reliable channel;
//! - `echo:...` comes back on the channel it came on;
//! - `stats?` is answered (reliable) with `stats: ` and the link's `LinkStats`;
//! - `close` drops the socket (the peers see a goodbye).

//!
//! It also runs the session's CPU benchmark in the page (`bench_session`; the
//! workload is [`session_cpu`], which the native bench runs too).

pub mod session_cpu;

#[cfg(target_arch = "wasm32")]
mod page;
