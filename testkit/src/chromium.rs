//! A real headless Chromium running the JavaScript client of docs/signaling.md.
//!
//! Needs Debian's `chromium` package (`.ci/test` installs it when missing), or the
//! path of another Chromium in `RTCPLAY_CHROMIUM`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where Debian's `chromium` package puts the browser; `RTCPLAY_CHROMIUM` overrides.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Test hooks for [`BrowserPage::open`]'s `after`: once connected to a peer, the
/// page says "hi" on the reliable channel; it echoes every game message on the
/// channel it came on.
pub const ECHO_HOOKS: &str = r#"
onPeerConnected = (id, p) => {
  console.log(`peer ${id} connected`);
  sendData(p.channels.reliable, new TextEncoder().encode("hi"));
};
onGameMessage = (id, channel, bytes) => sendData(channel, bytes);
"#;

/// The JavaScript client exactly as docs/signaling.md prints it (its only `js` block).
pub fn docs_client() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/signaling.md");
    let doc = std::fs::read_to_string(path).expect("docs/signaling.md");
    let start = doc
        .find("```js\n")
        .expect("a js block in docs/signaling.md")
        + "```js\n".len();
    let len = doc[start..].find("```").expect("the js block ends");
    doc[start..start + len].to_string()
}

/// A headless Chromium showing a page that runs the docs' client (with test hooks
/// before and after it). Killed, and its profile removed, on drop.
pub struct BrowserPage {
    child: Child,
    dir: PathBuf,
}

impl BrowserPage {
    /// Open the page: it joins `room` (of `players`) on the signaling server at
    /// `signal_url`. `before` runs before the docs' client (to wrap browser APIs),
    /// `after` after it (to replace its `onPeerConnected` / `onGameMessage`).
    pub fn open(signal_url: &str, room: &str, players: u8, before: &str, after: &str) -> Self {
        let dir = page_dir();
        let page = format!(
            "<!doctype html>\n<meta charset=\"utf-8\">\n<title>rtcplay test</title>\n\
             <script>\n{before}\n</script>\n<script>\n{}\n</script>\n<script>\n{after}\n</script>\n",
            docs_client()
        );
        std::fs::write(dir.join("page.html"), page).expect("write page");
        let url = format!(
            "file://{}?signal={signal_url}&room={room}&players={players}",
            dir.join("page.html").display()
        );
        Self::launch(dir, &url, false)
    }

    /// Open a page running the web backend (the `rtcplay_web_probe` bundle, see
    /// [`web_probe_dir`]): it joins `room` (of `players`) on the signaling server at
    /// `signal_url` and obeys the native peers in the room.
    pub fn open_probe(signal_url: &str, room: &str, players: u8) -> Self {
        Self::open_probe_calling(&format!(
            "probe.start({signal_url:?}, {room:?}, {players}, false);"
        ))
    }

    /// [`open_probe`](Self::open_probe) with `relay_only`: the page connects only
    /// through the TURN servers the signaling server hands out.
    pub fn open_probe_relay_only(signal_url: &str, room: &str, players: u8) -> Self {
        Self::open_probe_calling(&format!(
            "probe.start({signal_url:?}, {room:?}, {players}, true);"
        ))
    }

    /// Open a page that loads the `rtcplay_web_probe` bundle as `probe` and runs
    /// `script` (JavaScript, e.g. `console.log(probe.bench_session(2, 1000))`).
    pub fn open_probe_calling(script: &str) -> Self {
        let bundle = web_probe_dir();
        let dir = page_dir();
        for file in ["rtcplay_web_probe.js", "rtcplay_web_probe_bg.wasm"] {
            std::fs::copy(bundle.join(file), dir.join(file)).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}. Build the web bundles first: ./.ci/build-web (the test command does)",
                    bundle.join(file).display()
                )
            });
        }
        let page = format!(
            "<!doctype html>\n<meta charset=\"utf-8\">\n<title>rtcplay probe</title>\n\
             <script type=\"module\">\n\
             import init, * as probe from \"./rtcplay_web_probe.js\";\n\
             await init();\n\
             {script}\n\
             </script>\n"
        );
        std::fs::write(dir.join("page.html"), page).expect("write page");
        let url = format!("file://{}", dir.join("page.html").display());
        Self::launch(dir, &url, false)
    }

    /// Open `url` (e.g. a web game served over HTTP).
    pub fn open_url(url: &str) -> Self {
        Self::launch(page_dir(), url, false)
    }

    /// Open `url` with WebGL2 available (Chromium's software renderer,
    /// SwiftShader): for pages that draw.
    pub fn open_url_with_webgl(url: &str) -> Self {
        Self::launch(page_dir(), url, true)
    }

    fn launch(dir: PathBuf, url: &str, webgl: bool) -> Self {
        let chromium =
            std::env::var("RTCPLAY_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.into());
        assert!(
            Path::new(&chromium).exists(),
            "{chromium} not found: install Debian's chromium (`.ci/test` does) or set RTCPLAY_CHROMIUM"
        );
        let log = std::fs::File::create(dir.join("console.log")).expect("log file");
        let child = Command::new(&chromium)
            .arg(if webgl {
                // No GPU here: WebGL2 through SwiftShader.
                "--enable-unsafe-swiftshader"
            } else {
                "--disable-gpu"
            })
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Host candidates on 127.0.0.1, and not hidden behind mDNS names.
                "--allow-loopback-in-peer-connection",
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                // A file:// page may load its own module script and wasm.
                "--allow-file-access-from-files",
                // The page's console goes to stderr, kept for failure messages.
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=960,720",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chromium");
        BrowserPage { child, dir }
    }

    /// The page's console lines that contain `needle` (without Chromium's prefix).
    pub fn console_lines(&self, needle: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains("CONSOLE") && line.contains(needle))
            .map(|line| {
                let text = line.split_once("] \"").map_or(line, |(_, text)| text);
                text.split("\", source:").next().unwrap_or(text).to_string()
            })
            .collect()
    }

    /// What the page logged to its console (and Chromium's own warnings), for failure
    /// messages.
    pub fn console(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("CONSOLE") || (l.contains("ERROR") && !l.contains("dbus")))
            .collect();
        format!("--- browser console ---\n{}", lines.join("\n"))
    }
}

impl Drop for BrowserPage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the probe bundle is: `RTCPLAY_WEB_PROBE`, or `target/web/probe` in the
/// workspace (where `./.ci/build-web` puts it).
pub fn web_probe_dir() -> PathBuf {
    std::env::var_os("RTCPLAY_WEB_PROBE").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/web/probe")),
        PathBuf::from,
    )
}

/// Where the demo's web build is: `RTCPLAY_DEMO_WEB`, or `target/web/demo` in the
/// workspace (where `./demo_game/build-web` puts it). Panics with how to build it
/// when it is missing.
pub fn demo_web_dir() -> PathBuf {
    let dir = std::env::var_os("RTCPLAY_DEMO_WEB").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/web/demo")),
        PathBuf::from,
    );
    assert!(
        dir.join("index.html").is_file(),
        "no web build of the demo in {}: build it with ./demo_game/build-web (the test command does)",
        dir.display()
    );
    dir
}

/// A fresh directory for one page (its files, profile and console log).
fn page_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rtcplay-browser-{}-{}",
        std::process::id(),
        page_number()
    ));
    std::fs::create_dir_all(dir.join("profile")).expect("page dir");
    dir
}

/// Numbers the pages opened by one test process.
fn page_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
