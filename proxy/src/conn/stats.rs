//! What one proxy has done, counted for `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::plugin_host::{Direction, PluginError};

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
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
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
    /// Connections (or requests) refused because a fault's instance had to
    /// be made afresh and `--max-plugin-instances` were in use.
    pub instance_limit_refusals: Counter,
    /// HTTP requests received (`http` mode).
    pub http_requests: Counter,
    /// Times a fault acted: a TCP fault applied to a connection direction,
    /// or an HTTP fault delayed, answered, reset or held a request.
    pub faults_injected: Counter,
    /// Connections closed as soon as they were accepted because the
    /// process was at its open-file limit (when accepting, or when dialing
    /// the upstream).
    pub refused_open_files: Counter,
    /// Bytes written toward the upstream (client to server), after faults.
    pub bytes_upstream: Counter,
    /// Bytes written toward the client (server to client), after faults.
    pub bytes_downstream: Counter,
}

impl Stats {
    /// Bytes a pump wrote to its peer in `direction`.
    pub fn count_written(&self, direction: Direction, bytes: usize) {
        match direction {
            Direction::Upstream => self.bytes_upstream.add(bytes as u64),
            Direction::Downstream => self.bytes_downstream.add(bytes as u64),
        }
    }

    /// A connection (or request) failed because of a plugin: counted, and
    /// counted apart when no instance could be made for it.
    pub fn count_failure(&self, error: &PluginError) {
        self.plugin_failures.inc();
        if matches!(error, PluginError::InstanceLimit { .. }) {
            self.instance_limit_refusals.inc();
        }
    }
}
