//! A webrtc-rs [`Runtime`] that caps the driver's sleep while a connection is set up.
//!
//! webrtc-rs 0.21.1's driver loop flushes writes *before* handling events, so packets
//! queued while handling an event (DTLS ClientHello, SCTP INIT, ...) wait for the next
//! unrelated timer — 200 ms by default. While `boost` is on, every sleep the driver
//! asks for returns after at most 1 ms, which brings a loopback setup from ~700 ms to
//! under 10 ms. Once the connection is up the boost is switched off and the driver
//! sleeps exactly as long as it asked to, so nothing runs at a high rate afterwards.
//! See `docs/webrtc-setup-latency.md` for the analysis.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Longest sleep the driver gets while boosted.
const BOOSTED_SLEEP: Duration = Duration::from_millis(1);

/// Tokio runtime for webrtc-rs with a switchable sleep cap (one per connection).
#[derive(Debug)]
pub(crate) struct BoostRuntime {
    inner: TokioRuntime,
    boost: Arc<AtomicBool>,
}

impl BoostRuntime {
    /// A runtime whose boost starts as `boosted`; the flag is shared with the caller.
    pub(crate) fn new(boosted: bool) -> (Arc<Self>, Arc<AtomicBool>) {
        let boost = Arc::new(AtomicBool::new(boosted));
        let runtime = Arc::new(Self {
            inner: TokioRuntime,
            boost: boost.clone(),
        });
        (runtime, boost)
    }
}

impl Runtime for BoostRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        if self.boost.load(Ordering::Relaxed) {
            self.inner.sleep(duration.min(BOOSTED_SLEEP))
        } else {
            self.inner.sleep(duration)
        }
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "rtcplay-boost-tokio"
    }
}
