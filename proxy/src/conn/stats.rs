//! What one proxy has done, counted for `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A number that goes up (and, for gauges, down), as Prometheus counts.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The counters of one proxy, shared by its connections.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_total: Counter,
    pub connections_open: Counter,
    /// Connections (or requests) failed because a plugin serving them
    /// trapped, timed out, ran out of memory or answered nonsense.
    pub plugin_failures: Counter,
    /// Plugin instances made: one per fault attached (or rebound to a
    /// replaced plugin), and one each time a failed one is made afresh.
    /// Stays 0 while a proxy has no fault: such a proxy never calls a
    /// plugin.
    pub plugin_instances: Counter,
    /// HTTP requests received (`http` mode).
    pub http_requests: Counter,
    /// Times a fault acted: a TCP fault applied to a connection direction,
    /// or an HTTP fault delayed, answered, reset or held a request.
    pub faults_injected: Counter,
}
