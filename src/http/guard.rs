//! Time limits on an established connection: over HTTP/1.1 a client must finish sending a
//! request head within the header-read timeout once it starts one (slow-loris clients are cut
//! off), and a connection with nothing in flight is closed after the idle timeout. (The body has
//! its own deadline in the router.)
//!
//! hyper's own `header_read_timeout` starts while the connection merely waits for the next
//! request, which makes an idle keep-alive connection and a slow client the same thing, and it
//! covers HTTP/1 only. So the limits live in a wrapper around the connection's I/O that knows
//! whether a request is in flight (the service says so through [`Activity`]).
//!
//! HTTP/2 multiplexes frames the wrapper cannot tell apart (PINGs, SETTINGS acks, window
//! updates, headers), so there only the idle limit applies, counted from the end of the last
//! request rather than from the last byte.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the service tells the I/O wrapper: requests in flight, and which limit closed it.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    closed_by: AtomicU8,
    /// The reader parked while a request was in flight: woken when the last one ends, so the
    /// idle clock starts even if hyper does not read again on its own.
    parked: Mutex<Option<Waker>>,
}

/// Why a guarded connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request head took longer than the header-read timeout.
    HeaderTimeout,
    /// Nothing happened for the idle timeout.
    IdleTimeout,
}

impl Expiry {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Expiry::HeaderTimeout => "header_timeout",
            Expiry::IdleTimeout => "idle_timeout",
        }
    }
}

impl Activity {
    /// Marks a request in flight until the returned guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// The limit that closed the connection, if one did.
    pub(crate) fn expired(&self) -> Option<Expiry> {
        match self.closed_by.load(Ordering::Acquire) {
            1 => Some(Expiry::HeaderTimeout),
            2 => Some(Expiry::IdleTimeout),
            _ => None,
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// A request in flight (see [`Activity::request`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self
                .0
                .parked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(waker) = parked {
                waker.wake();
            }
        }
    }
}

/// The two limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Duration,
    pub(crate) idle: Duration,
}

/// `io` with [`Timeouts`] enforced on reads: when one expires, the read fails with
/// `TimedOut` and the server drops the connection.
pub(crate) struct Guarded<IO> {
    io: IO,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    /// HTTP/2: no header timeout, and bytes on the wire do not count as activity.
    multiplexed: bool,
    /// What the idle limit counts from.
    last_activity: Instant,
    /// When the first byte of a request head arrived while nothing was in flight (HTTP/1.1).
    head_started: Option<Instant>,
    /// A request was in flight at the last poll: when it ends, the idle clock starts afresh.
    was_busy: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<IO> Guarded<IO> {
    pub(crate) fn new(
        io: IO,
        activity: Arc<Activity>,
        timeouts: Timeouts,
        multiplexed: bool,
    ) -> Self {
        Guarded {
            io,
            activity,
            timeouts,
            multiplexed,
            last_activity: Instant::now(),
            head_started: None,
            was_busy: false,
            timer: None,
        }
    }

    /// Notes whether a request is in flight; the end of the last one restarts the idle clock
    /// (an answer that took long is not idleness) and ends any head being timed.
    fn observe(&mut self) -> bool {
        let busy = self.activity.busy();
        if busy {
            self.head_started = None;
        } else if self.was_busy {
            self.last_activity = Instant::now();
            self.head_started = None;
        }
        self.was_busy = busy;
        busy
    }

    /// Over HTTP/1.1, bytes written are activity.
    fn wrote(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) && !self.multiplexed {
            self.last_activity = Instant::now();
        }
        written
    }

    /// Whether the deadline has passed; otherwise arms the timer to wake the reader then.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Expiry> {
        let (deadline, expiry) = match self.head_started {
            Some(start) => (start + self.timeouts.header_read, Expiry::HeaderTimeout),
            None => (self.last_activity + self.timeouts.idle, Expiry::IdleTimeout),
        };
        if Instant::now() >= deadline {
            return Some(expiry);
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready().then_some(expiry)
    }
}

use std::future::Future;

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let busy = this.observe();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !this.multiplexed {
                    let now = Instant::now();
                    this.last_activity = now;
                    if !busy && buf.filled().len() > before && this.head_started.is_none() {
                        this.head_started = Some(now);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if busy => {
                // The answer is being worked on: no limit runs, and the idle clock starts
                // afresh when the last request ends.
                *this
                    .activity
                    .parked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                // The request may have ended between the check and the parking.
                if !this.activity.busy() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            Poll::Pending => match this.expired(cx) {
                Some(expiry) => {
                    let code = match expiry {
                        Expiry::HeaderTimeout => 1,
                        Expiry::IdleTimeout => 2,
                    };
                    this.activity.closed_by.store(code, Ordering::Release);
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, expiry.label())))
                }
                None => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.observe();
        let written = Pin::new(&mut this.io).poll_write(cx, data);
        this.wrote(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.observe();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
