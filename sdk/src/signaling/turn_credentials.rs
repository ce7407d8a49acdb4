//! Time-limited TURN credentials, issued by the signaling server to each peer.
//!
//! This is the "TURN REST API" scheme coturn implements with `use-auth-secret`:
//! the server and coturn share a secret; a credential is the user name
//! `"<expiry unix time>:<client>"` and the password `base64(HMAC-SHA1(secret, user))`.
//! coturn checks the HMAC and refuses a user name whose expiry has passed, so a
//! client never holds the secret and a leaked credential stops working by itself.
//!
//! The server makes `<client>` a fresh random id per connection, so no two
//! clients (of any room, or of two servers sharing the secret) hold the same
//! credential, and caches it for the connection (see the server's `join`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::protocol::IceServer;

/// A TURN server that accepts time-limited credentials signed with a shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// TURN URLs, e.g. `turn:turn.example.org:3478?transport=udp`.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn `static-auth-secret`).
    pub secret: String,
    /// How long an issued credential stays valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TurnConfig {
    /// The ICE server entry for the client `client` (an id unique to one client),
    /// valid for [`ttl`](Self::ttl) from `now`. Returns the entry and its expiry.
    pub fn credentials(&self, client: &str, now: SystemTime) -> (IceServer, SystemTime) {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let expiry = since_epoch.saturating_add(self.ttl).as_secs();
        let username = format!("{expiry}:{client}");
        let server = IceServer {
            urls: self.urls.clone(),
            credential: Some(turn_password(&self.secret, &username)),
            username: Some(username),
        };
        (server, UNIX_EPOCH + Duration::from_secs(expiry))
    }
}

/// `base64(HMAC-SHA1(secret, username))`, the password coturn expects.
pub fn turn_password(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_matches_a_known_hmac_sha1() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let expected = base64::engine::general_purpose::STANDARD.encode([
            0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
            0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79,
        ]);
        assert_eq!(
            turn_password("Jefe", "what do ya want for nothing?"),
            expected
        );
    }

    #[test]
    fn credentials_expire_after_the_ttl_and_name_the_client() {
        let turn = TurnConfig {
            urls: vec!["turn:10.0.0.1:3478".into()],
            secret: "s3cret".into(),
            ttl: Duration::from_secs(600),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (server, expiry) = turn.credentials("c0ffee", now);
        assert_eq!(server.username.as_deref(), Some("1000600:c0ffee"));
        assert_eq!(expiry, UNIX_EPOCH + Duration::from_secs(1_000_600));
        assert_eq!(
            server.credential.as_deref(),
            Some(turn_password("s3cret", "1000600:c0ffee").as_str())
        );
        assert_eq!(server.urls, turn.urls);
        assert!(!format!("{turn:?}").contains("s3cret"));
    }
}
