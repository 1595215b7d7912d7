//! What a plugin asked of its connection through the host functions
//! `delay-connect` and `half-close`, rather than through the steps it
//! answers: shared by the connection (which carries them out where it
//! dials and pumps) and the instances serving it (which are lent it for
//! the length of a call, like the connection's random stream).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::bindings::Direction;

/// One connection's requests, all false or zero until a plugin asks.
#[derive(Debug, Default)]
pub struct ConnRequests {
    /// The longest delay of the upstream's dial asked for, in µs.
    connect_delay_us: AtomicU64,
    /// Whether each direction (upstream, downstream) is to end now.
    half_close: [AtomicBool; 2],
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Upstream => 0,
        Direction::Downstream => 1,
    }
}

impl ConnRequests {
    /// `delay-connect`: the longest delay asked for wins.
    pub fn delay_connect(&self, micros: u64) {
        self.connect_delay_us.fetch_max(micros, Ordering::Relaxed);
    }

    /// How long after the accept the upstream may be dialed.
    pub fn connect_delay(&self) -> Duration {
        Duration::from_micros(self.connect_delay_us.load(Ordering::Relaxed))
    }

    /// `half-close` from a call serving `direction`.
    pub fn half_close(&self, direction: Direction) {
        self.half_close[index(direction)].store(true, Ordering::Relaxed);
    }

    /// Whether `direction` was asked to end since this was last asked.
    /// Asked by a pump at every chunk: a load first, so that the line both
    /// pumps read is written only when a plugin did ask.
    pub fn take_half_close(&self, direction: Direction) -> bool {
        let flag = &self.half_close[index(direction)];
        flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::Relaxed)
    }
}
