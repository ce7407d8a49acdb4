//! Static files served on the signaling port ([`ServerConfig::web_files`]): a web
//! game's page, script and wasm next to its signaling, so one address is all a
//! player needs.
//!
//! The files are read into memory when the server starts; a request can only
//! name one of them (no file system access, no path tricks). Only `GET` and
//! `HEAD`; every response closes its connection. A request that asks for a
//! WebSocket upgrade is left to the signaling protocol.
//!
//! [`ServerConfig::web_files`]: super::ServerConfig::web_files

use std::collections::HashMap;
use std::io;
use std::path::Path;

/// Largest request head read before deciding (browsers send 0.5–2 KB).
pub(crate) const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Most bytes [`WebFiles::from_dir`] loads in total.
pub const MAX_WEB_FILES_BYTES: u64 = 256 * 1024 * 1024;

/// Files to serve over HTTP, by URL path (`/index.html` is also served as `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebFiles {
    files: HashMap<String, (&'static str, Vec<u8>)>,
}

/// The `Content-Type` of a file name.
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        // `WebAssembly.instantiateStreaming` insists on this one.
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl WebFiles {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `bytes` at `path` (which starts with `/`).
    pub fn insert(&mut self, path: &str, bytes: Vec<u8>) {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let kind = content_type(&path);
        self.files.insert(path, (kind, bytes));
    }

    /// Every file under `dir` (subdirectories included), at its path relative to
    /// `dir`. Fails on an unreadable directory, a name that is not UTF-8, or more
    /// than [`MAX_WEB_FILES_BYTES`] in total.
    pub fn from_dir(dir: &Path) -> io::Result<WebFiles> {
        let mut files = WebFiles::new();
        let mut total = 0;
        let mut pending = vec![(dir.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().into_string().map_err(|name| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{name:?} is not UTF-8"))
                })?;
                let path = format!("{prefix}/{name}");
                if entry.file_type()?.is_dir() {
                    pending.push((entry.path(), path));
                    continue;
                }
                total += entry.metadata()?.len();
                if total > MAX_WEB_FILES_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("more than {MAX_WEB_FILES_BYTES} bytes of web files"),
                    ));
                }
                files.insert(&path, std::fs::read(entry.path())?);
            }
        }
        Ok(files)
    }

    /// Whether there is nothing to serve.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The URL paths served.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The answer to a request head: `None` when it asks for a WebSocket upgrade
    /// (or is not complete yet and may still), else the whole HTTP response.
    pub(crate) fn respond(&self, head: &[u8], complete: bool) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let upgrade = lines.any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("upgrade")
                    && value.trim().eq_ignore_ascii_case("websocket")
            })
        });
        if upgrade || !complete && head.len() < MAX_REQUEST_HEAD {
            return None;
        }
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next().unwrap_or_default(), parts.next());
        let path = target
            .unwrap_or_default()
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let path = if path == "/" { "/index.html" } else { path };
        Some(match (method, self.files.get(path)) {
            ("GET" | "HEAD", Some((kind, bytes))) => {
                let body = if method == "GET" { &bytes[..] } else { &[] };
                response("200 OK", kind, bytes.len(), body)
            }
            ("GET" | "HEAD", None) => {
                let body = b"not found\n";
                response(
                    "404 Not Found",
                    "text/plain; charset=utf-8",
                    body.len(),
                    body,
                )
            }
            _ => {
                let body = b"only GET and HEAD\n";
                response(
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    body.len(),
                    body,
                )
            }
        })
    }
}

fn response(status: &str, kind: &str, length: usize, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> WebFiles {
        let mut files = WebFiles::new();
        files.insert("/index.html", b"<p>hi</p>".to_vec());
        files.insert("game_bg.wasm", vec![0, 97, 115, 109]);
        files
    }

    fn text(response: Vec<u8>) -> String {
        String::from_utf8_lossy(&response).into_owned()
    }

    #[test]
    fn serves_the_index_at_the_root_and_files_by_path() {
        let index = text(
            files()
                .respond(b"GET /?room=a HTTP/1.1\r\nHost: x\r\n\r\n", true)
                .expect("an answer"),
        );
        assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
        assert!(index.contains("Content-Type: text/html"), "{index}");
        assert!(index.ends_with("\r\n\r\n<p>hi</p>"), "{index}");
        let wasm = files()
            .respond(b"GET /game_bg.wasm HTTP/1.1\r\n\r\n", true)
            .expect("an answer");
        assert!(
            text(wasm.clone()).contains("Content-Type: application/wasm\r\nContent-Length: 4\r\n")
        );
        assert!(wasm.ends_with(&[0, 97, 115, 109]));
    }

    #[test]
    fn head_has_no_body_and_other_methods_are_refused() {
        let head = text(
            files()
                .respond(b"HEAD / HTTP/1.1\r\n\r\n", true)
                .expect("an answer"),
        );
        assert!(head.contains("Content-Length: 9\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        let post = text(
            files()
                .respond(b"POST / HTTP/1.1\r\n\r\n", true)
                .expect("an answer"),
        );
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    }

    #[test]
    fn only_listed_paths_exist() {
        for path in [
            "/../Cargo.toml",
            "/etc/passwd",
            "//index.html",
            "/index.html/",
            "x",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\n\r\n");
            let answer = text(
                files()
                    .respond(request.as_bytes(), true)
                    .expect("an answer"),
            );
            assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        }
    }

    #[test]
    fn websocket_upgrades_and_unfinished_heads_are_left_alone() {
        let upgrade = b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nupgrade:  WebSocket \r\n\r\n";
        assert_eq!(files().respond(upgrade, true), None);
        assert_eq!(files().respond(b"GET / HTTP/1.1\r\nHost: x", false), None);
        // A head that never ends is answered once it reaches the limit.
        let endless = vec![b'a'; MAX_REQUEST_HEAD];
        assert!(files().respond(&endless, false).is_some());
    }

    #[test]
    fn garbage_gets_an_answer_not_a_panic() {
        for head in [&b""[..], b"\r\n\r\n", b"\xff\xfe GET", b"GET"] {
            assert!(files().respond(head, true).is_some());
        }
    }
}
