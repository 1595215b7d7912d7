//! Saying that a limit was hit, without a flood of log lines: a limit hit
//! by a flood of connections would otherwise write one line per connection.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one limit is logged at most.
const EVERY: Duration = Duration::from_secs(10);

/// One limit's warnings: the first hit is logged, then at most one line
/// every ten seconds, saying how many hits there were since the last line.
pub struct LimitWarning {
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    unsaid: u64,
}

impl LimitWarning {
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(State {
                last: None,
                unsaid: 0,
            }),
        }
    }

    /// Counts a hit; `Some(hits)` when a line is due now, with the hits it
    /// stands for (this one included).
    pub fn hit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap();
        state.unsaid += 1;
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < EVERY)
        {
            return None;
        }
        state.last = Some(now);
        Some(std::mem::take(&mut state.unsaid))
    }
}

impl Default for LimitWarning {
    fn default() -> Self {
        Self::new()
    }
}
