//! The browser front end (the wasm32 build): settings from the page's query
//! string, the game in the page's canvas (WebGL2) or headless, WebRTC through the
//! browser. Lines the desktop program prints go to the browser's console.
//!
//! Query parameters (all optional): `signal` (the signaling server's WebSocket
//! URL; default: the server that served the page), `room` (default
//! `rtcplay-demo`), `players` (2-4, default 2), `bot` (the AI plays this player),
//! `headless` (no drawing; implies `bot`), `frames=N` (play N frames, print the
//! checksum, stop), `netem=PRESET`, `input_delay=F`, `spectate`,
//! `netcode=state` (state sync instead of rollback, as `--netcode state`).

use std::net::Ipv4Addr;
use std::time::Duration;

use bevy::prelude::*;
use rtcplay::netem::Preset;
use web_sys::UrlSearchParams;

use crate::app::{self, print_line, DemoSettings, MeetOptions};
use crate::{headless, window};

/// The page's settings.
struct PageSettings {
    meet: MeetOptions,
    bot: bool,
    headless: bool,
    frames: Option<u32>,
    state_sync: bool,
}

/// The signaling URL of the server that served this page (`None` for a page
/// opened from a file).
fn own_server() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = match location.protocol().ok()?.as_str() {
        "http:" => "ws",
        "https:" => "wss",
        _ => return None,
    };
    Some(format!("{scheme}://{}", location.host().ok()?))
}

fn read_settings() -> Result<PageSettings, String> {
    let search = web_sys::window()
        .and_then(|window| window.location().search().ok())
        .unwrap_or_default();
    let params = UrlSearchParams::new_with_str(&search).map_err(|e| format!("{e:?}"))?;
    let flag = |name: &str| {
        params
            .get(name)
            .is_some_and(|value| !matches!(value.as_str(), "0" | "false" | "no"))
    };
    let number =
        |name: &str, range: std::ops::RangeInclusive<u32>| -> Result<Option<u32>, String> {
            let Some(text) = params.get(name) else {
                return Ok(None);
            };
            match text.parse::<u32>() {
                Ok(value) if range.contains(&value) => Ok(Some(value)),
                _ => Err(format!("{name}={text}: expected a number in {range:?}")),
            }
        };
    let url = match params.get("signal").or_else(own_server) {
        Some(url) if url.starts_with("ws://") || url.starts_with("wss://") => url,
        Some(url) => return Err(format!("signal={url}: expected a ws:// or wss:// URL")),
        None => return Err("no signaling server: add ?signal=ws://HOST:PORT to the URL".into()),
    };
    let players = number("players", 2..=4)?.unwrap_or(2);
    let netem = match params.get("netem") {
        Some(name) => Some(name.parse::<Preset>()?),
        None => None,
    };
    let headless = flag("headless");
    let state_sync = match params.get("netcode").as_deref() {
        None | Some("rollback") => false,
        Some("state") => true,
        Some(other) => return Err(format!("netcode={other}: expected rollback or state")),
    };
    if state_sync && flag("spectate") {
        return Err("netcode=state has no spectators".into());
    }
    Ok(PageSettings {
        meet: MeetOptions {
            url,
            room: params.get("room").unwrap_or_else(|| "rtcplay-demo".into()),
            players: u8::try_from(players).unwrap_or(2),
            input_delay: number("input_delay", 0..=8)?,
            disconnect_timeout: Duration::from_secs(12),
            ice_servers: Vec::new(),
            bind_ip: Ipv4Addr::UNSPECIFIED.into(),
            spectate: flag("spectate"),
            netem,
            start_with: None,
        },
        bot: flag("bot") || headless,
        headless,
        frames: number("frames", 1..=u32::MAX)?,
        state_sync,
    })
}

/// Start the game in this page.
pub fn main() {
    let page = match read_settings() {
        Ok(page) => page,
        Err(message) => {
            print_line(&format!("error: {message}"));
            return;
        }
    };
    print_line(&format!(
        "rtcplay demo: room `{}` of {} on {}",
        page.meet.room, page.meet.players, page.meet.url
    ));
    let settings = DemoSettings {
        players: page.meet.players,
        bot: page.bot,
        synctest: false,
        spectate: page.meet.spectate,
        windowed: !page.headless,
        frames: page.frames,
        verbose: true,
        label: String::new(),
        wait_timeout: Duration::from_secs(600),
        rejoin: false,
        replay: false,
        state_sync: page.state_sync,
    };
    let mut app = if page.headless {
        headless::headless_app()
    } else {
        window::windowed_app(window::WindowOptions {
            screenshot: None,
            signal_url: page.meet.url.clone(),
        })
    };
    let players = settings.players;
    let _ = app::configure(&mut app, settings);
    // Each tab conditions its link with its own seed.
    let seed = tab_seed();
    let mut request = page.meet.request(seed);
    if page.state_sync {
        request = crate::state_mode::request(request);
    }
    app::start_session(&mut app, Some(request), players);
    app.run();
}

/// A link-conditioner seed that differs between tabs: the page's clock.
fn tab_seed() -> u64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or(0, |performance| (performance.time_origin() * 1000.0) as u64)
}
