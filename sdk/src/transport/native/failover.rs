//! Several signaling URLs (the nodes of a signaling cluster): the first join
//! goes to the first node that answers, and a signaling connection lost
//! mid-match is replaced through another node without touching the match
//! (a `join` with the rejoin token and `resume`).

use std::time::Duration;

use crate::signaling::{ClientConfig, ErrorCode, SignalingClient, SignalingError, Welcome};
use crate::transport::SocketConfig;

/// Pause before trying the same URLs again while resuming.
const RESUME_PAUSE: Duration = Duration::from_millis(500);

/// The signaling URLs in the order they are tried.
pub(crate) fn signaling_urls(config: &SocketConfig) -> Vec<String> {
    std::iter::once(config.signaling_url.clone())
        .chain(config.fallback_signaling_urls.iter().cloned())
        .collect()
}

/// The client options of the socket's join.
fn client_config(config: &SocketConfig) -> ClientConfig {
    ClientConfig {
        room_secret: config.room_secret.clone(),
        spectator: config.spectator,
        spectator_secret: config.spectator_secret.clone(),
        no_spectators: config.no_spectators,
        rejoin_token: config.rejoin_token.clone(),
        start_with: config.start_with,
        ..ClientConfig::default()
    }
}

/// Whether another node may do better: it could not be reached, or said it
/// cannot take the join now.
fn try_next(error: &SignalingError) -> bool {
    match error {
        SignalingError::Refused { code, .. } => *code == ErrorCode::Unavailable,
        SignalingError::BadUrl(_) | SignalingError::Protocol(_) => false,
        _ => true,
    }
}

/// Join through the first URL that takes us; the client, its welcome and
/// which URL it was (an index into [`signaling_urls`]).
pub(crate) async fn join_first(
    config: &SocketConfig,
) -> Result<(SignalingClient, Welcome, usize), SignalingError> {
    let urls = signaling_urls(config);
    let mut last_error = SignalingError::Closed;
    for (index, url) in urls.iter().enumerate() {
        let joined = SignalingClient::join_with_config(
            url,
            &config.room,
            config.players,
            config.token.clone(),
            client_config(config),
        )
        .await;
        match joined {
            Ok((client, welcome)) => return Ok((client, welcome, index)),
            Err(error) if try_next(&error) && index + 1 < urls.len() => {
                tracing::debug!(%url, %error, "signaling node unavailable; trying the next");
                last_error = error;
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error)
}

/// Take our seat back with `token` through the URLs after `lost` (then the
/// rest, round and round) for up to `within`, keeping our connections. `None`
/// when no node takes us back: the match's room is gone (`rejoin_refused`) or
/// time ran out.
pub(crate) async fn resume(
    config: &SocketConfig,
    token: String,
    lost: usize,
    within: Duration,
) -> Option<(SignalingClient, usize)> {
    let urls = signaling_urls(config);
    let deadline = tokio::time::Instant::now() + within;
    let mut client_config = client_config(config);
    client_config.rejoin_token = Some(token);
    client_config.resume = true;
    client_config.spectator = false;
    let mut index = lost;
    while tokio::time::Instant::now() < deadline {
        for _ in 0..urls.len() {
            index = (index + 1) % urls.len();
            let url = &urls[index];
            let attempt = SignalingClient::join_with_config(
                url,
                &config.room,
                config.players,
                config.token.clone(),
                client_config.clone(),
            );
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, attempt).await {
                Ok(Ok((client, _))) => {
                    tracing::info!(%url, "signaling resumed through another node");
                    return Some((client, index));
                }
                Ok(Err(SignalingError::Refused {
                    code: ErrorCode::RejoinRefused,
                    message,
                })) => {
                    tracing::warn!(%url, "cannot resume signaling: {message}");
                    return None;
                }
                // `seat_taken`: the room's node still sees our old connection
                // (it finds it dead within its node timeout); unreachable or
                // unavailable nodes: the next one.
                Ok(Err(error)) => tracing::debug!(%url, %error, "resume attempt failed"),
                Err(_) => return None,
            }
        }
        tokio::time::sleep(RESUME_PAUSE).await;
    }
    None
}
