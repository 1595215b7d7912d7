//! The one monotonic clock shared by the relay and the plugins.
//!
//! Plugins see chunk arrival times and `host.now-us` in microseconds since
//! this process started; both must come from the same origin.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Microseconds since the process started.
pub fn now_us() -> u64 {
    micros(Instant::now())
}

/// `at` in microseconds since the process started.
pub fn micros(at: Instant) -> u64 {
    at.saturating_duration_since(origin()).as_micros() as u64
}

/// Starts the clock; call once at start-up so that zero is start-up.
pub fn start() {
    let _ = origin();
}

/// `at` plus `micros` microseconds, saturating far in the future.
pub fn add_micros(at: Instant, micros: u64) -> Instant {
    at.checked_add(Duration::from_micros(micros))
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}
