//! What one control API connection is doing, as its watchdog and the
//! accept loop see it: whether a request is being answered (and its body
//! still coming), when a request head began arriving, and when a byte last
//! moved. The socket and the request body are wrapped to keep it true.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// No request head under way.
const NO_HEAD: u64 = u64::MAX;

/// Why a watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// A request head began arriving and is not complete in time.
    Head,
    /// Nothing sent or received for the idle timeout, outside a request
    /// being answered (or while its body stopped coming).
    Idle,
}

pub struct Activity {
    born: Instant,
    /// Milliseconds since `born` of the last byte read or written.
    last_io: AtomicU64,
    /// Milliseconds since `born` of the first byte of the request head
    /// under way, or `NO_HEAD`.
    head_since: AtomicU64,
    /// A request is being answered.
    busy: AtomicBool,
    /// The request being answered has body still to come.
    body_pending: AtomicBool,
    /// Cancelled to close the connection at once, to make way for a new one.
    pub evict: CancellationToken,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(NO_HEAD),
            busy: AtomicBool::new(false),
            body_pending: AtomicBool::new(false),
            evict: CancellationToken::new(),
        })
    }

    fn now(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if !self.busy.load(Ordering::Relaxed) {
            let _ = self.head_since.compare_exchange(
                NO_HEAD,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// A request's head is complete and its answer begins; the answer ends
    /// when the guard is dropped.
    pub fn answering(self: &Arc<Self>, body_pending: bool) -> Answering {
        self.body_pending.store(body_pending, Ordering::Relaxed);
        self.busy.store(true, Ordering::Relaxed);
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
        Answering(self.clone())
    }

    /// Whether a request is being answered.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// How long since a byte last moved.
    pub fn quiet_for(&self) -> Duration {
        Duration::from_millis(
            self.now()
                .saturating_sub(self.last_io.load(Ordering::Relaxed)),
        )
    }

    /// Whether the connection has outstayed a limit.
    pub fn overdue(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Overdue> {
        let now = self.now();
        let quiet = self.quiet_for();
        if self.busy() {
            // A handler at work is not idle; one waiting for a body that
            // stopped coming is.
            return (self.body_pending.load(Ordering::Relaxed) && quiet > idle_timeout)
                .then_some(Overdue::Idle);
        }
        let head_since = self.head_since.load(Ordering::Relaxed);
        if head_since != NO_HEAD
            && Duration::from_millis(now.saturating_sub(head_since)) > header_timeout
        {
            return Some(Overdue::Head);
        }
        (quiet > idle_timeout).then_some(Overdue::Idle)
    }
}

/// A request being answered; dropped when its answer is ready (or
/// abandoned).
pub struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.body_pending.store(false, Ordering::Relaxed);
        activity.busy.store(false, Ordering::Relaxed);
        // The idle time counts from the answer.
        activity.wrote();
    }
}

/// The connection's socket, noting every byte that moves.
pub struct WatchedStream {
    pub stream: TcpStream,
    pub activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.stream).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.stream).poll_write(cx, buf));
        if matches!(result, Ok(n) if n > 0) {
            self.activity.wrote();
        }
        Poll::Ready(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, bufs));
        if matches!(result, Ok(n) if n > 0) {
            self.activity.wrote();
        }
        Poll::Ready(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body, noting when it has all arrived (or was given up).
pub struct WatchedBody {
    pub body: Incoming,
    pub activity: Arc<Activity>,
}

impl WatchedBody {
    fn done(&self) {
        self.activity.body_pending.store(false, Ordering::Relaxed);
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) || self.body.is_end_stream() {
            self.done();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.done();
    }
}
