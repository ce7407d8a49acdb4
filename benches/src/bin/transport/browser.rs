//! Setup time between a native socket and a real headless Chromium running the
//! JavaScript client of docs/signaling.md, in both offer directions.

use std::time::{Duration, Instant};

use rtcplay::signaling::SignalingServer;
use rtcplay::transport::native::Socket;
use rtcplay::transport::{SetupTimings, SocketEvent};
use rtcplay_benches::percentiles::percentile;
use rtcplay_testkit::chromium::{BrowserPage, ECHO_HOOKS};

use super::{config, Error};

const PATIENCE: Duration = Duration::from_secs(30);

/// `runs` setups per direction (after one warm-up each), each with a fresh Chromium.
pub fn browser_setup(server: &SignalingServer, url: &str, runs: usize) -> Result<(), Error> {
    for native_offers in [false, true] {
        let who = if native_offers {
            "native offers, Chromium answers"
        } else {
            "Chromium offers, native answers"
        };
        println!("## setup with a browser: {who}, {runs} runs (+1 warm-up)");
        let mut stages: [Vec<f64>; 4] = Default::default();
        for run in 0..=runs {
            let room = format!("bench-browser-{native_offers}-{run}");
            let setup = one_setup(server, url, &room, native_offers)?;
            if run == 0 {
                continue;
            }
            let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
            let ice = ms(setup.ice_connected);
            let dtls = ms(setup.dtls_connected);
            stages[0].push(ice);
            stages[1].push(dtls - ice);
            stages[2].push(ms(setup.channels_open));
            stages[3].push(ms(setup.hello_acked));
        }
        let names = [
            "per link: ICE connected",
            "per link: ICE connected → DTLS connected",
            "per link: SCTP + both channels open",
            "per link: hello/ack round trip done",
        ];
        for (name, v) in names.iter().zip(stages) {
            println!(
                "{name:<44} p50={:>7.1} ms  p90={:>7.1} ms  max={:>7.1} ms",
                percentile(&v, 0.5),
                percentile(&v, 0.9),
                percentile(&v, 1.0)
            );
        }
    }
    Ok(())
}

/// One 2-player room: a page and a native socket; the one that joins second has the
/// higher id and sends the offer. Returns the native side's setup stages (measured
/// from the start of its connection attempt, i.e. from room full).
fn one_setup(
    server: &SignalingServer,
    url: &str,
    room: &str,
    native_offers: bool,
) -> Result<SetupTimings, Error> {
    let open = || BrowserPage::open(url, room, 2, "", ECHO_HOOKS);
    let (mut socket, page) = native_and_page(server, url, room, native_offers, open)?;
    native_setup(&mut socket, &page)
}

/// Wait until the server has no members (the previous run's have left).
pub(super) fn wait_empty(server: &SignalingServer) -> Result<(), Error> {
    let deadline = Instant::now() + PATIENCE;
    while server.stats().peers > 0 {
        if Instant::now() > deadline {
            return Err("the previous run's members never left".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A native socket and a page (`open`) in the 2-player `room` of an empty server;
/// with `native_offers` the native socket joins second (the higher id offers).
pub(super) fn native_and_page(
    server: &SignalingServer,
    url: &str,
    room: &str,
    native_offers: bool,
    open: impl FnOnce() -> BrowserPage,
) -> Result<(Socket, BrowserPage), Error> {
    wait_empty(server)?;
    if native_offers {
        let page = open();
        let deadline = Instant::now() + PATIENCE;
        while server.stats().peers == 0 {
            if Instant::now() > deadline {
                return Err(format!("the page never joined\n{}", page.console()).into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        return Ok((Socket::new(config(url, room, 2))?, page));
    }
    let mut socket = Socket::new(config(url, room, 2))?;
    loop {
        match socket.wait_event(PATIENCE) {
            Some(SocketEvent::Joined { .. }) => break,
            Some(SocketEvent::Error(e)) => return Err(e.into()),
            Some(_) => {}
            None => return Err("never joined".into()),
        }
    }
    Ok((socket, open()))
}

/// Wait for the page to connect; the native side's setup stages.
pub(super) fn native_setup(socket: &mut Socket, page: &BrowserPage) -> Result<SetupTimings, Error> {
    loop {
        match socket.wait_event(PATIENCE) {
            Some(SocketEvent::PeerConnected(peer)) => {
                return Ok(socket.stats(peer).ok_or("no stats")?.setup);
            }
            Some(SocketEvent::Error(e)) => return Err(format!("{e}\n{}", page.console()).into()),
            Some(_) => {}
            None => return Err(format!("no PeerConnected\n{}", page.console()).into()),
        }
    }
}
