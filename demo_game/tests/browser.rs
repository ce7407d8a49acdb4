//! Cross-play: the demo's web build (`./demo_game/build-web`) in headless
//! Chromium tabs and native demo processes in one match, over real WebRTC on
//! 127.0.0.1. `rtcplay-demo --host` serves the page on its signaling port; every
//! endpoint plays N frames and prints `frames N checksum <hex>` (the tabs to their
//! console): the checksums must be equal. Needs Debian's `chromium` (`.ci/test`
//! installs it).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Demo;
use rtcplay::signaling::{ServerConfig, WebFiles};
use rtcplay_testkit::chromium::{demo_web_dir, BrowserPage};
use rtcplay_testkit::server::LocalServer;

const FRAMES: u32 = 300;
/// Generous: a cold Chromium compiles the demo's wasm before the match starts.
const PATIENCE: Duration = Duration::from_secs(120);

/// The checksum line a tab logged, waiting for it.
fn tab_checksum(tab: &BrowserPage) -> String {
    tab_line(tab, &format!("frames {FRAMES} checksum "))
}

/// The first line a tab logged that contains `needle`, from `needle` on,
/// waiting for it.
fn tab_line(tab: &BrowserPage, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(line) = tab.console_lines(needle).pop() {
            let at = line.find(needle).unwrap();
            return line[at..].trim_end_matches('"').to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` line from the tab\n{}",
            tab.console()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A native demo hosting the match (its embedded server also serves the web
/// build); returns it and the page URL for `players`.
fn host(players: u8) -> (Demo, String) {
    host_with(players, &[])
}

/// [`host`], the native demo started with `extra` flags too.
fn host_with(players: u8, extra: &[&str]) -> (Demo, String) {
    let web = demo_web_dir();
    let players_arg = players.to_string();
    let frames = FRAMES.to_string();
    let mut args = vec![
        "--host",
        "127.0.0.1:0",
        "--web-dir",
        web.to_str().unwrap(),
        "--players",
        &players_arg,
        "--frames",
        &frames,
    ];
    args.extend_from_slice(extra);
    let mut demo = Demo::start(&args);
    let line = demo.wait_line("signaling server listening on ws://", PATIENCE);
    let addr = line.rsplit("ws://").next().unwrap().trim().to_string();
    let url = format!("http://{addr}/?headless&frames={FRAMES}&players={players}");
    (demo, url)
}

/// The native endpoint's checksum line (it exits after the match).
fn native_checksum(demo: Demo, tabs: &[&BrowserPage]) -> String {
    let (status, stdout, stderr) = demo.finish(PATIENCE);
    let consoles: String = tabs.iter().map(|tab| tab.console()).collect();
    assert!(
        status.success(),
        "native demo failed: {status}\n{stderr}\n{consoles}"
    );
    stdout
        .iter()
        .find(|line| line.starts_with(&format!("frames {FRAMES} checksum ")))
        .unwrap_or_else(|| panic!("no checksum line:\n{}\n{consoles}", stdout.join("\n")))
        .clone()
}

#[test]
fn a_browser_tab_and_a_native_demo_agree_on_the_final_state() {
    let (demo, url) = host(2);
    let tab = BrowserPage::open_url(&url);
    let native = native_checksum(demo, &[&tab]);
    assert_eq!(tab_checksum(&tab), native, "{}", tab.console());
}

#[test]
fn two_tabs_and_a_native_demo_agree_on_the_final_state() {
    let (demo, url) = host(3);
    let a = BrowserPage::open_url(&url);
    let b = BrowserPage::open_url(&url);
    let native = native_checksum(demo, &[&a, &b]);
    assert_eq!(tab_checksum(&a), native, "{}", a.console());
    assert_eq!(tab_checksum(&b), native, "{}", b.console());
}

/// The page as players see it: drawn with WebGL2 (software-rendered here), the
/// AI playing; same final state as the native demo.
#[test]
fn a_drawing_tab_and_a_native_demo_agree_on_the_final_state() {
    let (demo, url) = host(2);
    let url = url.replace("?headless&", "?bot&");
    let tab = BrowserPage::open_url_with_webgl(&url);
    let native = native_checksum(demo, &[&tab]);
    assert_eq!(tab_checksum(&tab), native, "{}", tab.console());
    let console = tab.console();
    assert!(!console.contains("panicked"), "{console}");
}

/// Browser to browser: two tabs, the page served by a plain signaling server.
#[test]
fn two_tabs_agree_on_the_final_state() {
    let files = WebFiles::from_dir(&demo_web_dir()).unwrap();
    let server = LocalServer::with_config(ServerConfig {
        web_files: Some(Arc::new(files)),
        ..ServerConfig::default()
    });
    let addr = server.url.trim_start_matches("ws://").to_string();
    let url = format!("http://{addr}/?headless&frames={FRAMES}&players=2&room=tabs");
    let a = BrowserPage::open_url(&url);
    let b = BrowserPage::open_url(&url);
    let (sum_a, sum_b) = (tab_checksum(&a), tab_checksum(&b));
    assert_eq!(sum_a, sum_b, "{}{}", a.console(), b.console());
}

/// `netcode=state` in the browser: a headless tab and a native demo, each
/// owning its avatar and shots, end with the same `final:` line (positions
/// and hits) once everyone stood still.
#[test]
fn a_browser_tab_and_a_native_demo_converge_in_state_sync_mode() {
    let (demo, url) = host_with(2, &["--netcode", "state"]);
    let tab = BrowserPage::open_url(&format!("{url}&netcode=state"));
    let (status, stdout, stderr) = demo.finish(PATIENCE);
    assert!(
        status.success(),
        "native demo failed: {status}\n{stderr}\n{}",
        tab.console()
    );
    let native = stdout
        .iter()
        .find(|l| l.starts_with("final: "))
        .unwrap_or_else(|| panic!("no final line:\n{}\n{}", stdout.join("\n"), tab.console()))
        .clone();
    assert_eq!(tab_line(&tab, "final: "), native, "{}", tab.console());
    assert!(tab.console().contains(": gl hf (bot)"), "{}", tab.console());
}
