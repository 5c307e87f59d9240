//! The accept loop: HTTP/1.1 and HTTP/2 over hyper-util's server, with what the open internet
//! needs and `axum::serve` lacks.
//!
//! - A request head must arrive whole within `server.header_read_timeout` (slowloris), counted
//!   from when the connection starts waiting for it, so idle keep-alive connections go too.
//! - A connection on which no byte moves for `server.idle_timeout` while no request is in
//!   progress is closed (a client that stops reading its answer).
//! - At most `server.max_connections` are open (lowered to fit the open-files limit). At the
//!   cap a newcomer takes the place of the longest-open connection with no request in progress
//!   (idle or still trickling its headers), so a flood of idle connections cannot shut out a
//!   client that asks for something; if every connection is busy, the newcomer is answered 503
//!   at once. The loop keeps accepting throughout.
//! - Shutdown is graceful: idle connections close, requests in progress finish.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::fast::Shortcut;
use crate::config::ServerConfig;

/// File descriptors kept back from connections for the database, SMTP, webhooks and files.
const FD_RESERVE: u64 = 256;

/// Raises the soft open-files limit to the hard one, so that thousands of connections do not
/// run the process out of descriptors. Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot raise the open-files limit");
                rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .ok()
                    .map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `server.max_connections`, lowered to leave [`FD_RESERVE`] descriptors under the limit.
pub fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(n) => {
            let fit = n.saturating_sub(FD_RESERVE).max(2) as usize;
            if fit < configured {
                tracing::warn!(
                    configured,
                    open_files_limit = n,
                    using = fit,
                    "server.max_connections is above what the open-files limit allows; raise `ulimit -n`"
                );
            }
            configured.min(fit)
        }
        None => configured,
    }
}

/// Serves `router` on `listener` until `shutdown`, then closes idle connections and waits for
/// requests in progress (the caller bounds that wait). `shortcut` answers the cached public
/// documents before the router (see [`super::fast`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shortcut: Option<Shortcut>,
    limits: &ServerConfig,
    shutdown: CancellationToken,
) {
    let cap = connection_cap(limits.max_connections, raise_open_files_limit());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128);
    let builder = Arc::new(builder);
    let registry = Arc::new(Registry::new(cap));
    let tracker = TaskTracker::new();
    let timeouts = (limits.header_read_timeout, limits.idle_timeout);
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSING_AT_ONCE));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or memory: wait a moment rather than spin. Errors of
                    // one connection (reset before accept) need no pause.
                    if !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match registry.admit() {
            Some(conn) => {
                let (builder, router, registry) =
                    (builder.clone(), router.clone(), registry.clone());
                let site = (router, shortcut.clone());
                let stop = shutdown.clone();
                tracker.spawn(async move {
                    serve_connection(&builder, stream, peer, site, &conn, timeouts, stop).await;
                    registry.remove(conn.id);
                });
            }
            // Past a few hundred refusals under way, the newest are simply closed.
            None => {
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tracker.spawn(async move {
                        refuse(stream).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// What the accept loop knows of one open connection.
struct Conn {
    id: u64,
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Cancelled to close it at once (it was chosen to make room).
    evict: CancellationToken,
}

struct Registry {
    cap: usize,
    next: AtomicU64,
    /// Open connections by id, so in the order they were accepted.
    open: Mutex<BTreeMap<u64, (Arc<AtomicUsize>, CancellationToken)>>,
}

impl Registry {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes a new connection, closing the oldest one without a request in progress if at the
    /// cap. `None` when every connection is busy.
    fn admit(&self) -> Option<Conn> {
        let mut open = self.open.lock().expect("registry lock");
        if open.len() >= self.cap {
            let victim = open
                .iter()
                .find(|(_, (busy, _))| busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some((_, evict)) = open.remove(&victim) {
                evict.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = CancellationToken::new();
        open.insert(id, (busy.clone(), evict.clone()));
        Some(Conn { id, busy, evict })
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("registry lock").remove(&id);
    }
}

/// Counts a request in progress until dropped.
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn new(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    (router, shortcut): (Router, Option<Shortcut>),
    conn: &Conn,
    (header_timeout, idle): (Duration, Duration),
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let moved = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        started,
        moved: moved.clone(),
    });
    let busy = conn.busy.clone();
    let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first = asked.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        first.store(true, Ordering::Release);
        // Either the cached answer, or the router and a count of the request in progress.
        let next = match shortcut.as_ref().and_then(|s| s.answer(&req)) {
            Some(resp) => Err(resp),
            None => {
                req.extensions_mut().insert(ConnectInfo(peer));
                Ok((BusyGuard::new(&busy), router.clone()))
            }
        };
        async move {
            match next {
                Err(resp) => Ok(resp),
                Ok((guard, router)) => {
                    let resp = router.oneshot(req).await;
                    drop(guard);
                    resp
                }
            }
        }
    });
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(served);
    // hyper's header timer starts once the protocol is known, which takes a first byte: until the
    // first request has arrived, the header timeout runs from the accept.
    let first_head = tokio::time::sleep_until(started + header_timeout);
    tokio::pin!(first_head);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = &mut first_head, if !asked.load(Ordering::Acquire) => {
                if !asked.load(Ordering::Acquire) {
                    tracing::debug!("closed a connection that sent no request in time");
                    return;
                }
            }
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = conn.evict.cancelled() => {
                tracing::debug!("closed an idle connection to make room");
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = stalled(started, &moved, &conn.busy, idle) => {
                tracing::debug!("closed a connection on which nothing moved");
                return;
            }
        }
    }
}

/// Resolves once no request has been in progress and no byte has moved for `idle`.
async fn stalled(started: Instant, moved: &AtomicU64, busy: &AtomicUsize, idle: Duration) {
    loop {
        let last = started + Duration::from_millis(moved.load(Ordering::Relaxed));
        let deadline = last + idle;
        if Instant::now() >= deadline && busy.load(Ordering::Acquire) == 0 {
            return;
        }
        tokio::time::sleep_until(deadline.max(Instant::now() + Duration::from_millis(50))).await;
    }
}

/// Connections being told 503 at once, at most.
const REFUSING_AT_ONCE: usize = 256;

/// Every connection is busy: read the request's head (a second at most), say so and close.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "The server is busy; please try again in a moment.\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\ncache-control: no-store\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, briefly, so closing does not reset the answer away.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// A connection's socket that notes when a byte last moved (milliseconds since it opened).
struct Watched {
    inner: TcpStream,
    started: Instant,
    moved: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.moved.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_rest_of_the_process() {
        assert_eq!(connection_cap(10_000, Some(1024)), 768);
        assert_eq!(connection_cap(500, Some(65_536)), 500);
        assert_eq!(connection_cap(500, None), 500);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        a.busy.fetch_add(1, Ordering::AcqRel);
        let c = r.admit().expect("b is idle, so c gets in");
        assert!(!a.evict.is_cancelled(), "a is busy");
        assert!(b.evict.is_cancelled(), "b was the oldest idle one");
        c.busy.fetch_add(1, Ordering::AcqRel);
        assert!(r.admit().is_none(), "everyone busy: refuse");
        a.busy.fetch_sub(1, Ordering::AcqRel);
        assert!(r.admit().is_some());
        assert!(a.evict.is_cancelled());
    }
}
