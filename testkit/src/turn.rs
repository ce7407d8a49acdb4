//! A real coturn TURN server on 127.0.0.1 (Debian's `coturn`; `.ci/test` installs
//! it), UDP only, killed on drop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::KillOnDrop;

/// How clients authenticate.
#[derive(Debug, Clone, Copy)]
pub enum TurnAuth<'a> {
    /// One long-term user (`--lt-cred-mech`).
    User {
        /// User name.
        name: &'a str,
        /// Its password.
        password: &'a str,
    },
    /// Time-limited credentials signed with a secret shared with the signaling
    /// server (`--use-auth-secret`).
    SharedSecret(&'a str),
}

/// A running coturn.
pub struct Coturn {
    _child: KillOnDrop,
    /// `turn:127.0.0.1:PORT`.
    pub url: String,
}

impl Coturn {
    /// Start one on a free port and wait until it listens.
    pub fn start(auth: TurnAuth<'_>) -> Coturn {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free port")
            .port();
        let auth_args = match auth {
            TurnAuth::User { name, password } => {
                vec![
                    "--lt-cred-mech".to_string(),
                    format!("--user={name}:{password}"),
                ]
            }
            TurnAuth::SharedSecret(secret) => vec![
                "--use-auth-secret".to_string(),
                format!("--static-auth-secret={secret}"),
            ],
        };
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--realm=rtcplay.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(auth_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run turnserver (install with `apt-get install coturn`)");
        let child = KillOnDrop(child);
        // Ready once it accepts TCP on the same port.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "turnserver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Coturn {
            _child: child,
            url: format!("turn:127.0.0.1:{port}"),
        }
    }
}
