//! The cluster's driver: one task per node that holds the NATS connection,
//! publishes what the state queued for other nodes, applies what they send,
//! says every `heartbeat` that this node is alive, finds room names' homes in
//! the claims bucket, and judges which nodes are dead.
//!
//! Everything it decides is in the state's sans-IO parts ([`ClusterTable`],
//! `cluster_ops.rs`); this file only moves bytes and asks the bucket.
//!
//! [`ClusterTable`]: crate::signaling::cluster::table::ClusterTable

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::cluster_ops::Found;
use super::Shared;
use crate::signaling::cluster::wire::{self, NodeId};
use crate::signaling::cluster::ClusterConfig;
use crate::signaling::SignalingError;

/// How long a request to the broker (a claim, a lookup) may take.
const BROKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Messages the NATS client buffers (also while reconnecting).
const CLIENT_CAPACITY: usize = 65_536;
/// Attempts at a name's claim when it keeps changing under us.
const CLAIM_ATTEMPTS: usize = 4;

/// Connect to the broker (in the background: a node starts, and serves rooms
/// of its own clients, while NATS is unreachable) and start the driver.
pub(super) async fn start(
    shared: Arc<Shared>,
    config: ClusterConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SignalingError> {
    let me = shared.lock().cluster.as_ref().map_or(0, |c| c.me());
    let (events_tx, events) = mpsc::unbounded_channel();
    let options = async_nats::ConnectOptions::new()
        .name(format!("rtcplay-signal {me:016x}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * attempts.clamp(1, 10) as u64)
        })
        .request_timeout(Some(BROKER_REQUEST_TIMEOUT))
        .client_capacity(CLIENT_CAPACITY)
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event);
            }
        });
    let client = options
        .connect(config.nats_url.as_str())
        .await
        .map_err(|e| SignalingError::Cluster(format!("NATS at {}: {e}", config.nats_url)))?;
    let node_subject = format!("{}.node.{}", config.prefix, wire::encode_alive(me));
    let alive_subject = format!("{}.alive", config.prefix);
    let subscribe = |subject: String| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject)
                .await
                .map_err(|e| SignalingError::Cluster(format!("NATS subscribe: {e}")))
        }
    };
    let inbox = subscribe(node_subject).await?;
    let heartbeats = subscribe(alive_subject.clone()).await?;
    tracing::info!(
        "signaling cluster: node {me:016x} joins through {} (prefix `{}`)",
        config.nats_url,
        config.prefix
    );
    let driver = Driver {
        bucket: Arc::new(Bucket {
            js: jetstream::new(client.clone()),
            name: format!("{}_rooms", config.prefix),
            store: std::sync::Mutex::new(None),
        }),
        shared,
        client,
        me,
        prefix: config.prefix.clone(),
        alive_subject,
    };
    tokio::spawn(driver.run(config, inbox, heartbeats, events, shutdown));
    Ok(())
}

/// The claims bucket, opened (or created) when first needed and again after
/// the broker lost it (a restarted NATS server without storage).
struct Bucket {
    js: jetstream::Context,
    name: String,
    store: std::sync::Mutex<Option<kv::Store>>,
}

impl Bucket {
    async fn store(&self) -> Result<kv::Store, String> {
        if let Some(store) = self.lock().clone() {
            return Ok(store);
        }
        let store = match self.js.get_key_value(self.name.clone()).await {
            Ok(store) => store,
            Err(_) => {
                // The stream of a key-value bucket, declared as the client's
                // `create_key_value` would (that call first asks for account
                // details NATS 2.9 answers in a shape the client cannot read).
                let stream = jetstream::stream::Config {
                    name: format!("KV_{}", self.name),
                    description: Some("rtcplay-signal: which node holds each room name".into()),
                    subjects: vec![format!("$KV.{}.>", self.name)],
                    max_messages_per_subject: 1,
                    storage: jetstream::stream::StorageType::Memory,
                    discard: jetstream::stream::DiscardPolicy::New,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    ..Default::default()
                };
                let created = self.js.get_or_create_stream(stream).await;
                // Another node may have created it at the same moment (then
                // ours fails as overlapping): open what is there.
                match self.js.get_key_value(self.name.clone()).await {
                    Ok(store) => store,
                    Err(e) => {
                        let why = created.err().map_or(e.to_string(), |c| c.to_string());
                        return Err(format!(
                            "claims bucket `{}`: {why} (is JetStream on: nats-server -js?)",
                            self.name
                        ));
                    }
                }
            }
        };
        *self.lock() = Some(store.clone());
        Ok(store)
    }

    /// Forget the opened bucket (an operation failed: it may be gone).
    fn reset(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<kv::Store>> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The bucket key of a room name's claim (names may hold any printable
/// character; keys may not).
fn claim_key(name: &str) -> String {
    let mut key = String::with_capacity(2 + name.len() * 2);
    key.push_str("n.");
    for byte in name.bytes() {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

struct Driver {
    bucket: Arc<Bucket>,
    shared: Arc<Shared>,
    client: async_nats::Client,
    me: NodeId,
    prefix: String,
    alive_subject: String,
}

impl Driver {
    async fn run(
        self,
        config: ClusterConfig,
        mut inbox: async_nats::Subscriber,
        mut heartbeats: async_nats::Subscriber,
        mut events: mpsc::UnboundedReceiver<async_nats::Event>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (found_tx, mut found) = mpsc::unbounded_channel::<(String, Found)>();
        let mut tick = tokio::time::interval(config.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_connected = false;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                () = self.shared.broker_wake.notified() => {}
                Some(message) = inbox.next() => self.on_inbox(&message.payload),
                Some(message) = heartbeats.next() => {
                    if let Some(node) = wire::decode_alive(&message.payload) {
                        let mut state = self.shared.lock();
                        if let Some(cluster) = &mut state.cluster {
                            cluster.heard(node, Instant::now());
                        }
                    }
                }
                Some((name, outcome)) = found.recv() => {
                    self.shared.lock().on_found(&name, outcome, &self.shared);
                }
                Some(event) = events.recv() => {
                    self.on_event(event, &mut was_connected);
                }
                _ = tick.tick() => self.on_tick().await,
            }
            self.flush(&found_tx).await;
        }
        let _ = self.client.flush().await;
    }

    /// A batch from another node.
    fn on_inbox(&self, payload: &[u8]) {
        let mut state = self.shared.lock();
        let Some(cluster) = &mut state.cluster else {
            return;
        };
        let counters = cluster.counters_mut();
        counters.messages_in += 1;
        counters.bytes_in += payload.len() as u64;
        match wire::decode_batch(payload) {
            Some(batch) => {
                cluster.heard(batch.from, Instant::now());
                state.on_node_batch(batch.from, batch.messages, &self.shared);
            }
            None => {
                counters.garbage += 1;
                tracing::debug!("signaling cluster: dropped an undecodable broker message");
            }
        }
    }

    fn on_event(&self, event: async_nats::Event, was_connected: &mut bool) {
        let mut state = self.shared.lock();
        let Some(cluster) = &mut state.cluster else {
            return;
        };
        match event {
            async_nats::Event::Connected => {
                cluster.broker_up(Instant::now());
                if *was_connected {
                    tracing::info!("signaling cluster: broker connection is back");
                    // The broker may have lost the claims (restarted without
                    // storage) or given some away: check every claim.
                    let claims = cluster.claims();
                    drop(state);
                    self.bucket.reset();
                    tokio::spawn(verify_claims(
                        Arc::clone(&self.bucket),
                        Arc::clone(&self.shared),
                        self.me,
                        claims,
                    ));
                } else {
                    tracing::info!("signaling cluster: connected to the broker");
                }
                *was_connected = true;
            }
            async_nats::Event::Disconnected => {
                cluster.broker_down();
                tracing::warn!(
                    "signaling cluster: broker connection lost; serving only rooms whose \
                     members are all on this node until it is back"
                );
            }
            other => tracing::warn!("signaling cluster: broker: {other}"),
        }
    }

    /// Every heartbeat: say we are alive, measure the broker, judge the other
    /// nodes, give up names without rooms.
    async fn on_tick(&self) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        if connected {
            let _ = self
                .client
                .publish(
                    self.alive_subject.clone(),
                    Bytes::from(wire::encode_alive(self.me)),
                )
                .await;
            let started = Instant::now();
            let flushed = tokio::time::timeout(BROKER_REQUEST_TIMEOUT, self.client.flush()).await;
            if let Ok(Ok(())) = flushed {
                let rtt = started.elapsed().as_micros() as u64;
                if let Some(cluster) = &mut self.shared.lock().cluster {
                    cluster.counters_mut().broker_rtt_us = rtt;
                }
            }
        }
        let now = Instant::now();
        let mut state = self.shared.lock();
        let state = &mut *state;
        let Some(cluster) = &mut state.cluster else {
            return;
        };
        let rooms = &state.rooms;
        cluster.idle_names(now, |name| rooms.has_rooms_named(name));
        let dead = cluster.take_dead(now);
        if !dead.is_empty() {
            state.on_nodes_dead(&dead, &self.shared);
        }
    }

    /// Publish what the state queued; start the lookups and releases it asked for.
    /// While the broker is unreachable nothing is taken: messages wait in the
    /// state's bounded queue (a full NATS client buffer would stall this task).
    async fn flush(&self, found_tx: &mpsc::UnboundedSender<(String, Found)>) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        if !connected {
            return;
        }
        let (batches, to_resolve, releases) = {
            let mut state = self.shared.lock();
            let Some(cluster) = &mut state.cluster else {
                return;
            };
            if !cluster.has_outbound() {
                return;
            }
            (
                cluster.take_outbound(),
                cluster.take_to_resolve(),
                cluster.take_releases(),
            )
        };
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for (node, messages) in batches {
            let count = messages.len() as u64;
            let payload = wire::encode_batch(self.me, messages);
            let subject = format!("{}.node.{}", self.prefix, wire::encode_alive(node));
            let len = payload.len() as u64;
            match self.client.publish(subject, Bytes::from(payload)).await {
                Ok(()) => {
                    sent += 1;
                    bytes += len;
                }
                Err(_) => dropped += count,
            }
        }
        if let Some(cluster) = &mut self.shared.lock().cluster {
            let counters = cluster.counters_mut();
            counters.messages_out += sent;
            counters.bytes_out += bytes;
            counters.dropped_out += dropped;
        }
        for name in to_resolve {
            let bucket = Arc::clone(&self.bucket);
            let shared = Arc::clone(&self.shared);
            let found_tx = found_tx.clone();
            let me = self.me;
            tokio::spawn(async move {
                let outcome = find_home(&bucket, &shared, me, &name).await;
                if matches!(outcome, Found::Unavailable(_)) {
                    bucket.reset();
                }
                let _ = found_tx.send((name, outcome));
            });
        }
        for (name, revision) in releases {
            let bucket = Arc::clone(&self.bucket);
            tokio::spawn(async move {
                if let Ok(store) = bucket.store().await {
                    // Only our own claim: someone may have taken it over.
                    let _ = store
                        .delete_expect_revision(claim_key(&name), Some(revision))
                        .await;
                }
            });
        }
    }
}

/// Where `name`'s rooms live: claim it if nobody holds it (or a dead node
/// does), else the holder.
async fn find_home(bucket: &Bucket, shared: &Shared, me: NodeId, name: &str) -> Found {
    let store = match bucket.store().await {
        Ok(store) => store,
        Err(why) => return Found::Unavailable(why),
    };
    let key = claim_key(name);
    let mine = Bytes::from(wire::encode_alive(me));
    for _ in 0..CLAIM_ATTEMPTS {
        match store.create(&key, mine.clone()).await {
            Ok(revision) => {
                return Found::Here {
                    revision,
                    takeover: false,
                }
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Found::Unavailable(format!("claim: {e}")),
        }
        let entry = match store.entry(key.clone()).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => entry,
            Ok(_) => continue, // released meanwhile: claim it
            Err(e) => return Found::Unavailable(format!("lookup: {e}")),
        };
        let holder = wire::decode_alive(&entry.value);
        if holder == Some(me) {
            return Found::Here {
                revision: entry.revision,
                takeover: false,
            };
        }
        let alive = holder.is_some_and(|node| {
            shared
                .lock()
                .cluster
                .as_ref()
                .is_some_and(|c| c.alive(node, Instant::now()))
        });
        if let (true, Some(node)) = (alive, holder) {
            return Found::Node(node);
        }
        // A dead node's claim (or garbage): take it over, if nobody else did.
        if let Ok(revision) = store.update(&key, mine.clone(), entry.revision).await {
            if let Some(node) = holder {
                tracing::info!(
                    "signaling cluster: took room `{name}` over from dead node {node:016x}"
                );
            }
            return Found::Here {
                revision,
                takeover: true,
            };
        }
    }
    Found::Unavailable("the room's claim kept changing".into())
}

/// After the broker came back: renew every claim this node holds, and give up
/// those another node holds now (they were taken over while we were cut off).
async fn verify_claims(
    bucket: Arc<Bucket>,
    shared: Arc<Shared>,
    me: NodeId,
    claims: Vec<(String, u64)>,
) {
    let store = match bucket.store().await {
        Ok(store) => store,
        Err(why) => {
            tracing::warn!("signaling cluster: cannot check claims: {why}");
            return;
        }
    };
    let mine = Bytes::from(wire::encode_alive(me));
    for (name, _) in claims {
        let key = claim_key(&name);
        let renewed = match store.entry(key.clone()).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                if wire::decode_alive(&entry.value) == Some(me) {
                    Some(entry.revision)
                } else {
                    None
                }
            }
            Ok(_) => store.create(&key, mine.clone()).await.ok(),
            Err(e) => {
                tracing::warn!("signaling cluster: cannot check the claim of `{name}`: {e}");
                continue;
            }
        };
        let mut state = shared.lock();
        match renewed {
            Some(revision) => {
                if let Some(cluster) = &mut state.cluster {
                    cluster.renewed(&name, revision);
                }
            }
            None => {
                tracing::warn!(
                    "signaling cluster: room `{name}` is held by another node now; its \
                     matches here keep their members, its rooms still filling are closed \
                     (room_lost)"
                );
                state.on_claim_lost(&name, &shared);
            }
        }
    }
}
