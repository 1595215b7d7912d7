//! Zero-copy relaying for directions no fault touches: splice(2) moves
//! bytes from one socket into a pipe and from the pipe into the other
//! socket, inside the kernel, so they never cross into faultgate's memory.
//!
//! The pump uses this only while a direction of a plain TCP connection has
//! no fault instance; the moment a fault applies, what is in the pipe is
//! written out first and the pump goes back to reading chunks.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// How much one splice moves at most (the pipe is asked to be this big).
const CHUNK: usize = 1 << 20;

/// A pipe between two sockets, and how many bytes sit in it.
pub struct Pipe {
    read_end: OwnedFd,
    write_end: OwnedFd,
    pending: usize,
}

impl Pipe {
    pub fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // Safety: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Safety: pipe2 succeeded, so both are open descriptors we own.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A bigger pipe moves more per call; the default (64 KiB) works too.
        // Safety: F_SETPIPE_SZ on a pipe we own.
        unsafe {
            libc::fcntl(
                write_end.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                CHUNK as libc::c_int,
            )
        };
        Ok(Self {
            read_end,
            write_end,
            pending: 0,
        })
    }

    /// Whether bytes are waiting to go out.
    pub fn pending(&self) -> bool {
        self.pending > 0
    }

    /// Waits for `from` to have data and moves what it has into the pipe.
    /// Returns how many bytes; 0 at the end of stream. Cancel safe.
    pub async fn fill(&mut self, from: &TcpStream) -> io::Result<usize> {
        debug_assert_eq!(self.pending, 0, "fill only an empty pipe");
        loop {
            from.readable().await?;
            let moved = from.try_io(Interest::READABLE, || {
                splice(from.as_raw_fd(), self.write_end.as_raw_fd(), CHUNK)
            });
            match moved {
                Ok(n) => {
                    self.pending = n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves what is in the pipe into `to`, waiting as it must. Cancel
    /// safe: what has not gone yet stays in the pipe for the next call.
    pub async fn drain(&mut self, to: &TcpStream) -> io::Result<()> {
        while self.pending > 0 {
            to.writable().await?;
            let moved = to.try_io(Interest::WRITABLE, || {
                splice(self.read_end.as_raw_fd(), to.as_raw_fd(), self.pending)
            });
            match moved {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pending -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // Safety: both are open descriptors for the duration of the call; null
    // offsets mean "the current position", as sockets and pipes require.
    let moved = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if moved < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}
