//! An in-memory network of peers joined by [`Netem`] links, for tests and
//! simulations on simulated time.
//!
//! ```
//! use rtcplay::netem::LinkConditions;
//! use rtcplay::transport::{MemoryNetwork, PeerId, Transport};
//! use std::time::Duration;
//!
//! let mut net = MemoryNetwork::new(&[PeerId(0), PeerId(1)], LinkConditions::lan(), 1);
//! net.endpoint(PeerId(0)).send_to(PeerId(1), b"hi");
//! net.set_now(Duration::from_millis(50));
//! let mut got = Vec::new();
//! net.endpoint(PeerId(1)).receive(&mut got);
//! assert_eq!(got, vec![(PeerId(0), b"hi".to_vec())]);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use super::{PeerId, Transport};
use crate::netem::{LinkConditions, Netem, NetemStats};

/// A full mesh of simulated links, one [`Netem`] per direction.
pub struct MemoryNetwork {
    now: Duration,
    links: BTreeMap<(PeerId, PeerId), Netem<Vec<u8>>>,
    /// Peers cut off from the network (their traffic is dropped both ways).
    silenced: Vec<PeerId>,
    bytes_sent: BTreeMap<PeerId, (u64, u64)>,
}

impl MemoryNetwork {
    /// A mesh between `peers`, every direction with `conditions`, seeded from `seed`.
    pub fn new(peers: &[PeerId], conditions: LinkConditions, seed: u64) -> Self {
        let mut links = BTreeMap::new();
        for (i, &from) in peers.iter().enumerate() {
            for (j, &to) in peers.iter().enumerate() {
                if from != to {
                    let link_seed = seed
                        .wrapping_mul(0x100_0000_01B3)
                        .wrapping_add((i * 64 + j) as u64);
                    links.insert((from, to), Netem::new(conditions, link_seed));
                }
            }
        }
        MemoryNetwork {
            now: Duration::ZERO,
            links,
            silenced: Vec::new(),
            bytes_sent: BTreeMap::new(),
        }
    }

    /// Set the simulated time.
    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
    }

    /// The simulated time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Change the conditions of the link `from → to`.
    pub fn set_conditions(&mut self, from: PeerId, to: PeerId, conditions: LinkConditions) {
        if let Some(link) = self.links.get_mut(&(from, to)) {
            link.set_conditions(conditions);
        }
    }

    /// Cut `peer` off: everything it sends or is sent is lost from now on.
    pub fn silence(&mut self, peer: PeerId) {
        if !self.silenced.contains(&peer) {
            self.silenced.push(peer);
        }
    }

    /// Connect a silenced `peer` again (as a restarted process would be): it
    /// sends and receives from now on.
    pub fn restore(&mut self, peer: PeerId) {
        self.silenced.retain(|p| *p != peer);
    }

    /// The transport as seen by `peer`.
    pub fn endpoint(&mut self, peer: PeerId) -> MemoryEndpoint<'_> {
        MemoryEndpoint {
            net: self,
            me: peer,
        }
    }

    /// Conditioner statistics of the link `from → to`.
    pub fn link_stats(&self, from: PeerId, to: PeerId) -> Option<NetemStats> {
        self.links.get(&(from, to)).map(Netem::stats)
    }

    /// (datagrams, payload bytes) that `peer` has sent so far.
    pub fn sent_by(&self, peer: PeerId) -> (u64, u64) {
        self.bytes_sent.get(&peer).copied().unwrap_or_default()
    }
}

/// One peer's view of a [`MemoryNetwork`].
pub struct MemoryEndpoint<'a> {
    net: &'a mut MemoryNetwork,
    me: PeerId,
}

impl Transport for MemoryEndpoint<'_> {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        let counter = self.net.bytes_sent.entry(self.me).or_default();
        counter.0 += 1;
        counter.1 += datagram.len() as u64;
        if self.net.silenced.contains(&self.me) || self.net.silenced.contains(&peer) {
            return;
        }
        if let Some(link) = self.net.links.get_mut(&(self.me, peer)) {
            link.send(self.net.now, datagram.to_vec());
        }
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        let now = self.net.now;
        let me = self.me;
        for ((from, to), link) in self.net.links.iter_mut() {
            if *to != me {
                continue;
            }
            while let Some(bytes) = link.poll(now) {
                out.push((*from, bytes));
            }
        }
    }
}

/// A [`MemoryNetwork`] shared between owners (e.g. two game `App`s in one test):
/// each owner holds a [`SharedEndpoint`] that implements [`Transport`].
#[derive(Clone)]
pub struct SharedMemoryNetwork(std::sync::Arc<std::sync::Mutex<MemoryNetwork>>);

impl SharedMemoryNetwork {
    /// Share `net`.
    pub fn new(net: MemoryNetwork) -> Self {
        SharedMemoryNetwork(std::sync::Arc::new(std::sync::Mutex::new(net)))
    }

    /// Run `f` on the network (e.g. to set the time or silence a peer).
    pub fn with<R>(&self, f: impl FnOnce(&mut MemoryNetwork) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// The transport of `peer`.
    pub fn endpoint(&self, peer: PeerId) -> SharedEndpoint {
        SharedEndpoint {
            net: self.clone(),
            me: peer,
        }
    }
}

/// One peer's handle on a [`SharedMemoryNetwork`].
#[derive(Clone)]
pub struct SharedEndpoint {
    net: SharedMemoryNetwork,
    me: PeerId,
}

impl Transport for SharedEndpoint {
    fn send_to(&mut self, peer: PeerId, datagram: &[u8]) {
        let me = self.me;
        self.net.with(|n| n.endpoint(me).send_to(peer, datagram));
    }

    fn receive(&mut self, out: &mut Vec<(PeerId, Vec<u8>)>) {
        let me = self.me;
        self.net.with(|n| n.endpoint(me).receive(out));
    }
}
