//! The web backend (rtcplay's own `web::Socket`, the `testkit/web_probe` page in a
//! real headless Chromium) against native sockets and against itself: setup time
//! in every direction, round trips, and the size of the web bundles.

use std::time::{Duration, Instant};

use rtcplay::signaling::SignalingServer;
use rtcplay::transport::native::Socket;
use rtcplay::transport::{Channel, SetupTimings, SocketEvent};
use rtcplay_benches::percentiles::percentile;
use rtcplay_testkit::chromium::{demo_web_dir, web_probe_dir, BrowserPage};

use super::browser::{native_and_page, native_setup, wait_empty};
use super::{config, Error};

const PATIENCE: Duration = Duration::from_secs(30);

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn print_row(name: &str, values: &[f64]) {
    println!(
        "{name:<48} p50={:>7.1} ms  p90={:>7.1} ms  max={:>7.1} ms",
        percentile(values, 0.5),
        percentile(values, 0.9),
        percentile(values, 1.0)
    );
}

fn wait_members(
    server: &SignalingServer,
    count: usize,
    pages: &[&BrowserPage],
) -> Result<(), Error> {
    let deadline = Instant::now() + PATIENCE;
    while server.stats().peers < count {
        if Instant::now() > deadline {
            let consoles: String = pages.iter().map(|p| p.console()).collect();
            return Err(format!("the pages never joined\n{consoles}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The page's own setup line for its link to `peer` (room full → hello acked, by
/// the page's clock): `acked` in ms.
fn page_acked(page: &BrowserPage) -> Result<f64, Error> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(line) = page.console_lines("probe setup with ").pop() {
            let acked = line
                .split("acked ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|number| number.parse::<f64>().ok())
                .ok_or_else(|| format!("unreadable setup line {line:?}"))?;
            return Ok(acked);
        }
        if Instant::now() > deadline {
            return Err(format!("no setup line\n{}", page.console()).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One web page and one native socket; the one that joins second offers.
fn web_and_native(
    server: &SignalingServer,
    url: &str,
    room: &str,
    native_offers: bool,
) -> Result<(SetupTimings, f64), Error> {
    let open = || BrowserPage::open_probe(url, room, 2);
    let (mut socket, page) = native_and_page(server, url, room, native_offers, open)?;
    let native = native_setup(&mut socket, &page)?;
    Ok((native, page_acked(&page)?))
}

/// Setup times (room full → hello acked): web↔native both ways, web↔web.
pub fn web_setup(server: &SignalingServer, url: &str, runs: usize) -> Result<(), Error> {
    for native_offers in [false, true] {
        let who = if native_offers {
            "native offers, web backend answers"
        } else {
            "web backend offers, native answers"
        };
        println!(
            "## setup, rtcplay web backend in Chromium ↔ native: {who}, {runs} runs (+1 warm-up)"
        );
        let mut stages: [Vec<f64>; 5] = Default::default();
        for run in 0..=runs {
            let room = format!("bench-web-{native_offers}-{run}");
            let (setup, page) = web_and_native(server, url, &room, native_offers)?;
            if run == 0 {
                continue;
            }
            stages[0].push(ms(setup.ice_connected));
            stages[1].push(ms(setup.dtls_connected));
            stages[2].push(ms(setup.channels_open));
            stages[3].push(ms(setup.hello_acked));
            stages[4].push(page);
        }
        let names = [
            "native side: ICE connected",
            "native side: DTLS connected",
            "native side: SCTP + both channels open",
            "native side: hello/ack round trip done",
            "web side: hello/ack round trip done",
        ];
        for (name, values) in names.iter().zip(&stages) {
            print_row(name, values);
        }
    }
    println!("## setup, web backend ↔ web backend (two Chromium tabs), {runs} runs (+1 warm-up)");
    let mut acked = Vec::new();
    for run in 0..=runs {
        wait_empty(server)?;
        let room = format!("bench-web-web-{run}");
        let first = BrowserPage::open_probe(url, &room, 2);
        wait_members(server, 1, &[&first])?;
        let second = BrowserPage::open_probe(url, &room, 2);
        let times = [page_acked(&first)?, page_acked(&second)?];
        if run > 0 {
            acked.extend(times);
        }
    }
    print_row("each tab: hello/ack round trip done", &acked);
    Ok(())
}

/// Round trips between a native socket and the web page: the transport's pings
/// (answered inside the page's message callback) and 32-byte game messages echoed
/// by the page's game loop (a 5 ms timer, as a game's frame would).
pub fn web_rtt(server: &SignalingServer, url: &str, samples: usize) -> Result<(), Error> {
    wait_empty(server)?;
    let room = "bench-web-rtt";
    let page = BrowserPage::open_probe(url, room, 2);
    wait_members(server, 1, &[&page])?;
    let mut cfg = config(url, room, 2);
    cfg.ping_interval = Duration::from_millis(10);
    let mut socket = Socket::new(cfg)?;
    let peer = loop {
        match socket.wait_event(PATIENCE) {
            Some(SocketEvent::PeerConnected(peer)) => break peer,
            Some(SocketEvent::Error(e)) => return Err(e.into()),
            Some(_) => {}
            None => return Err(format!("no PeerConnected\n{}", page.console()).into()),
        }
    };
    // Pings: one sample per interval.
    let mut pings = Vec::new();
    let mut last = None;
    let deadline = Instant::now() + PATIENCE;
    while pings.len() < samples && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let sample = socket.stats(peer).and_then(|s| s.last_rtt);
        if sample.is_some() && sample != last {
            pings.push(ms(sample));
            last = sample;
        }
    }
    println!(
        "## round trip, native ↔ web backend in Chromium, {} samples each",
        pings.len()
    );
    print_row("transport ping (13 B, answered in the callback)", &pings);
    // 32-byte messages through the page's game loop.
    let mut message = *b"echo:0123456789abcdefghijklmnopq";
    let mut echoes = Vec::new();
    for i in 0..samples {
        message[5] = b'0' + (i % 10) as u8;
        let sent = Instant::now();
        socket.send_unreliable(peer, &message)?;
        let deadline = sent + Duration::from_millis(500);
        while Instant::now() < deadline {
            match socket.wait_message(deadline.saturating_duration_since(Instant::now())) {
                Some(m) if m.channel == Channel::Unreliable && m.data == message => {
                    echoes.push(sent.elapsed().as_secs_f64() * 1e3);
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    print_row("32 B game message echoed by the page's 5 ms loop", &echoes);
    println!("(lost or late: {} of {samples})", samples - echoes.len());
    Ok(())
}

/// Sizes of the web bundles: raw and gzip -9.
pub fn bundle_size() -> Result<(), Error> {
    println!("## web bundle sizes (wasm-bindgen --target web output, profile `web`)");
    for dir in [demo_web_dir(), web_probe_dir()] {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let raw = entry.metadata()?.len();
            let gzip = std::process::Command::new("gzip")
                .args(["-9", "-c"])
                .arg(&path)
                .output()?;
            println!(
                "{:<48} raw {:>10} B  gzip {:>10} B",
                path.strip_prefix(dir.parent().unwrap_or(&dir))
                    .unwrap_or(&path)
                    .display(),
                raw,
                gzip.stdout.len()
            );
        }
    }
    Ok(())
}

/// The session's CPU per tick (a full mesh over a perfect in-memory link, every
/// peer once per tick): the same workload (`rtcplay_web_probe::session_cpu`) in
/// the page as wasm32 and here natively.
pub fn session_cpu(ticks: u32) -> Result<(), Error> {
    println!("## session CPU per tick, wasm32 in Chromium vs native, {ticks} ticks, best of 3");
    for players in [2usize, 4, 8] {
        let epoch = Instant::now();
        let native = (0..3)
            .map(|_| {
                rtcplay_web_probe::session_cpu::micros_per_tick(players, ticks, || {
                    epoch.elapsed().as_secs_f64() * 1e3
                })
            })
            .fold(f64::INFINITY, f64::min);
        let page = BrowserPage::open_probe_calling(&format!(
            "const runs = [0, 1, 2].map(() => probe.bench_session({players}, {ticks}));\n\
             console.log(`probe bench ${{Math.min(...runs)}}`);"
        ));
        let deadline = Instant::now() + Duration::from_secs(120);
        let wasm = loop {
            if let Some(line) = page.console_lines("probe bench ").pop() {
                break line
                    .split("probe bench ")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|n| n.parse::<f64>().ok())
                    .ok_or_else(|| format!("unreadable {line:?}"))?;
            }
            if Instant::now() > deadline {
                return Err(format!("no bench result\n{}", page.console()).into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        println!(
            "{players} players: native {native:>8.2} µs/tick   wasm32 {wasm:>8.2} µs/tick   ratio {:.2}",
            wasm / native
        );
    }
    Ok(())
}
