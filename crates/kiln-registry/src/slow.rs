//! A deadline for a request's head: a connection that has not finished
//! sending a request's headers within [`HEAD_TIMEOUT`] of starting it (or
//! of connecting) is closed — the slowloris defence. axum's `serve` gives
//! hyper no timer, so hyper's own header timeout never runs; this wraps
//! each accepted connection instead.
//!
//! The clock runs from the connection's accept, and again from the first
//! byte after each response, until the bytes read contain the end of a
//! head (`\r\n\r\n`); bodies, and idle keep-alive connections, are not
//! timed (a pipelined request's body after a response would be; clients
//! do not pipeline uploads).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a client may take to send a request's headers.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts like the listener it wraps (TCP, TLS), handing out
/// [`HeadTimeout`] connections.
pub(crate) struct Listener<L> {
    pub(crate) inner: L,
}

impl<L> axum::serve::Listener for Listener<L>
where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    type Io = HeadTimeout<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (HeadTimeout::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

enum State {
    /// Reading a head: the deadline, and how much of `\r\n\r\n` the last
    /// bytes matched.
    Head(Pin<Box<Sleep>>, usize),
    /// The head is in; untimed until the response is written.
    Body,
    /// A response went out; the next byte starts a head.
    Idle,
}

pub(crate) struct HeadTimeout<Io> {
    io: Io,
    state: State,
}

impl<Io> HeadTimeout<Io> {
    fn new(io: Io) -> HeadTimeout<Io> {
        HeadTimeout {
            io,
            state: State::Head(Box::pin(tokio::time::sleep(HEAD_TIMEOUT)), 0),
        }
    }
}

const END: &[u8] = b"\r\n\r\n";

/// How much of `END` is matched after `bytes`, starting from `matched`;
/// `END.len()` when the head ended.
fn scan(mut matched: usize, bytes: &[u8]) -> usize {
    for &b in bytes {
        matched = if b == END[matched] {
            matched + 1
        } else if b == END[0] {
            1
        } else {
            0
        };
        if matched == END.len() {
            return matched;
        }
    }
    matched
}

impl<Io: AsyncRead + Unpin> AsyncRead for HeadTimeout<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let State::Head(deadline, _) = &mut this.state {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request headers too slow",
                )));
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if matches!(result, Poll::Ready(Ok(()))) && !new.is_empty() {
            if matches!(this.state, State::Idle) {
                let deadline = Box::pin(tokio::time::sleep_until(Instant::now() + HEAD_TIMEOUT));
                this.state = State::Head(deadline, 0);
            }
            if let State::Head(_, matched) = &mut this.state {
                *matched = scan(*matched, new);
                if *matched == END.len() {
                    this.state = State::Body;
                }
            }
        }
        result
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for HeadTimeout<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if matches!(self.state, State::Body) {
            self.state = State::Idle;
        }
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if matches!(self.state, State::Body) {
            self.state = State::Idle;
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn finds_the_end_of_a_head_across_reads() {
        assert_eq!(scan(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 4);
        assert_eq!(scan(0, b"GET / HTTP/1.1\r\nHost: x\r"), 1);
        assert_eq!(scan(1, b"\n\r"), 3);
        assert_eq!(scan(3, b"\n"), 4);
        assert_eq!(scan(2, b"x"), 0);
        assert_eq!(scan(2, b"\r\r\n\r\n"), 4);
    }
}
