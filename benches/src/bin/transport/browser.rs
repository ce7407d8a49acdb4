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
    // The previous run's members must be gone before members are counted.
    let deadline = Instant::now() + PATIENCE;
    while server.stats().peers > 0 {
        if Instant::now() > deadline {
            return Err("the previous run's members never left".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (mut socket, page) = if native_offers {
        let page = BrowserPage::open(url, room, 2, "", ECHO_HOOKS);
        let deadline = Instant::now() + PATIENCE;
        while server.stats().peers == 0 {
            if Instant::now() > deadline {
                return Err(format!("the page never joined\n{}", page.console()).into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (Socket::new(config(url, room, 2))?, page)
    } else {
        let mut socket = Socket::new(config(url, room, 2))?;
        loop {
            match socket.wait_event(PATIENCE) {
                Some(SocketEvent::Joined { .. }) => break,
                Some(SocketEvent::Error(e)) => return Err(e.into()),
                Some(_) => {}
                None => return Err("never joined".into()),
            }
        }
        (socket, BrowserPage::open(url, room, 2, "", ECHO_HOOKS))
    };
    let peer = loop {
        match socket.wait_event(PATIENCE) {
            Some(SocketEvent::PeerConnected(peer)) => break peer,
            Some(SocketEvent::Error(e)) => return Err(e.into()),
            Some(_) => {}
            None => return Err(format!("no PeerConnected\n{}", page.console()).into()),
        }
    };
    let stats = socket.stats(peer).ok_or("no stats")?;
    Ok(stats.setup)
}
