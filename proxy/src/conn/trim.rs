//! Giving memory back after a burst of connections.
//!
//! The allocator keeps the memory freed by closed connections for the next
//! ones, so after a burst of thousands of connections the process stays at
//! its peak size for good. A thread wakes every few seconds and, when many
//! connections have closed since it last looked, asks the allocator to give
//! back what it holds free (`malloc_trim`; on glibc only, where that
//! exists).

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Connections closed since the allocator was last trimmed.
static CLOSED: AtomicU64 = AtomicU64::new(0);

/// How many closed connections are worth a trim.
const WORTH_TRIMMING: u64 = 256;

/// How often the thread looks.
const EVERY: Duration = Duration::from_secs(5);

/// Counts a closed connection, and starts the thread on the first.
pub(super) fn connection_closed() {
    static START: Once = Once::new();
    START.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("faultgate-trim".into())
            .spawn(trim_after_bursts);
    });
    CLOSED.fetch_add(1, Ordering::Relaxed);
}

fn trim_after_bursts() {
    loop {
        std::thread::sleep(EVERY);
        if CLOSED.load(Ordering::Relaxed) >= WORTH_TRIMMING {
            CLOSED.store(0, Ordering::Relaxed);
            give_back();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back() {
    // Safety: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back() {}
