//! What a fault is holding now, for `/metrics`: connection directions its
//! `hold` step stopped (TCP and Postgres faults) and HTTP requests it
//! leaves unanswered (an HTTP fault's `drop`). Counted by guards, so a
//! hold that ends any way at all (the fault removed, the client gone, the
//! connection cut) is no longer counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fault's counts of what it holds. Shared by the fault and the copies
/// made of it for a replaced plugin (same fault, same id), so a hold begun
/// before the replacement is still counted under the fault's name.
#[derive(Debug, Default)]
pub struct Holding {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// What is being held.
#[derive(Debug, Clone, Copy)]
pub enum Held {
    /// One direction of a connection (a fault acts on one direction).
    Connection,
    /// One HTTP request.
    Request,
}

impl Holding {
    /// Connection directions held now.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// HTTP requests held now.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn counter(&self, what: Held) -> &AtomicU64 {
        match what {
            Held::Connection => &self.connections,
            Held::Request => &self.requests,
        }
    }

    /// Counts one hold until the guard is dropped.
    pub fn hold(self: &Arc<Self>, what: Held) -> HoldGuard {
        self.counter(what).fetch_add(1, Ordering::Relaxed);
        HoldGuard {
            holding: self.clone(),
            what,
        }
    }
}

/// One hold, counted while it lives.
#[derive(Debug)]
pub struct HoldGuard {
    holding: Arc<Holding>,
    what: Held,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.holding
            .counter(self.what)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
