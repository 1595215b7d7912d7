//! The process's open-file limit (`RLIMIT_NOFILE`), met on `accept`.
//!
//! When every file descriptor is in use, `accept` fails with EMFILE and the
//! connection stays in the listen queue: its client waits for ever, and the
//! listener is woken again at once. The classic way out is a spare
//! descriptor held for the purpose: close it, accept the connection into
//! its place, close that (the client is told at once), and take the spare
//! again. [`Reserve`] holds such spares: the control API keeps a few of its
//! own, to go on answering at the limit; a few more, shared by every
//! listener, are for refusing ([`refuse_one`]).

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};
use std::sync::{Mutex, OnceLock};

/// Whether an `accept` error means the process (EMFILE) or the system
/// (ENFILE) is out of file descriptors.
pub fn out_of_files(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Spare file descriptors (of `/dev/null`), given up one at a time when the
/// process is at its open-file limit and taken again when it can.
pub struct Reserve {
    spares: Mutex<Vec<File>>,
    wanted: usize,
}

impl Reserve {
    /// A reserve of `wanted` spares (fewer if the limit is already met).
    pub fn new(wanted: usize) -> Self {
        let reserve = Self {
            spares: Mutex::new(Vec::with_capacity(wanted)),
            wanted,
        };
        reserve.refill();
        reserve
    }

    /// Gives one spare up, making room for one descriptor; false when none
    /// is left.
    pub fn give_up_one(&self) -> bool {
        self.spares.lock().unwrap().pop().is_some()
    }

    /// Takes spares again, as far as the limit lets it.
    pub fn refill(&self) {
        let mut spares = self.spares.lock().unwrap();
        while spares.len() < self.wanted {
            match File::open("/dev/null") {
                Ok(spare) => spares.push(spare),
                Err(_) => break,
            }
        }
    }
}

/// Spares shared by every listener for refusing, and the descriptor of
/// `/dev/null` they are copies of.
struct Refusing {
    anchor: File,
    spares: Mutex<Vec<File>>,
}

/// How many spares the listeners share for refusing: one would do, but a
/// spare is lost when another thread opens a file in the instant between
/// giving it up and accepting.
const REFUSING_SPARES: usize = 4;

fn refusing() -> Option<&'static Refusing> {
    static REFUSING: OnceLock<Option<Refusing>> = OnceLock::new();
    REFUSING
        .get_or_init(|| {
            let anchor = File::open("/dev/null").ok()?;
            let spares = (0..REFUSING_SPARES)
                .filter_map(|_| anchor.try_clone().ok())
                .collect();
            Some(Refusing {
                anchor,
                spares: Mutex::new(spares),
            })
        })
        .as_ref()
}

/// Takes the spares for refusing now, so that they are held before the
/// limit is met (call before accepting).
pub fn hold_spares() {
    refusing();
}

/// At the open-file limit: accepts one waiting connection in a spare's
/// place, writes `answer` to it (what fits at once), closes it and turns
/// its descriptor into the spare again. False when there was none to
/// accept, or no spare left.
pub fn refuse_one(listener: &impl AsFd, answer: &[u8]) -> bool {
    let Some(refusing) = refusing() else {
        return false;
    };
    let mut spares = refusing.spares.lock().unwrap();
    if spares.len() < REFUSING_SPARES
        && let Ok(spare) = refusing.anchor.try_clone()
    {
        // A descriptor came free since a spare was lost: take it back.
        spares.push(spare);
    }
    // Held across the steps, so two listeners do not use one spare; each
    // step is a system call that does not block.
    if spares.pop().is_none() {
        return false;
    }
    let Ok((socket, _)) = socket2::SockRef::from(listener).accept() else {
        return false;
    };
    if !answer.is_empty() {
        let _ = socket.set_nonblocking(true);
        let _ = (&socket).write(answer);
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
    let fd = socket.into_raw_fd();
    // Safety: `fd` is ours. dup2 makes it a copy of /dev/null in one step,
    // closing the socket, so the slot is never free for another thread to
    // take between closing the socket and opening the spare.
    if unsafe { libc::dup2(refusing.anchor.as_raw_fd(), fd) } >= 0 {
        // Safety: `fd` is ours and now a copy of /dev/null.
        spares.push(unsafe { File::from_raw_fd(fd) });
    } else {
        // Safety: `fd` is ours and no longer used.
        unsafe { libc::close(fd) };
    }
    true
}
