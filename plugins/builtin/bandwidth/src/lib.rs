//! `bandwidth`: limits a direction to `rate` KB/s (1 KB = 1000 bytes, as in
//! Toxiproxy). Large chunks go out in 100 ms slices so the rate is smooth.
//! A rate of 0 means no limit, as in Toxiproxy.

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, step};

const SLICE_US: u64 = 100_000;

/// The highest rate, 100 GB/s: far above any loopback, and far from
/// overflowing the arithmetic of slices.
const MAX_RATE_KB: u64 = 100_000_000;

struct Bandwidth {
    /// Bytes per second; 0 = unlimited.
    bytes_per_sec: u64,
    /// When the link is next free, on the host clock (µs).
    free_at_us: u64,
}

impl Fault for Bandwidth {
    fn describe() -> Description {
        Description::new("bandwidth", "Limits the rate data passes at")
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "rate",
                0,
                "rate in KB/s (1 KB = 1000 bytes); 0 = unlimited",
            ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            bytes_per_sec: attrs.up_to("rate", 0, MAX_RATE_KB, "KB/s")? * 1000,
            free_at_us: 0,
        })
    }
}

impl Filter for Bandwidth {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        if self.bytes_per_sec == 0 {
            return vec![step::forward_all(chunk.len)];
        }
        // Sleeps are cumulative from arrival: start when the link is free.
        let start = self.free_at_us.max(chunk.arrived_us);
        let mut steps = Vec::new();
        if start > chunk.arrived_us {
            steps.push(step::sleep_us(start - chunk.arrived_us));
        }
        // At most a chunk, at least a byte: never a slice of 0 bytes.
        let slice = (self.bytes_per_sec * SLICE_US / 1_000_000)
            .clamp(1, u64::from(chunk.len.max(1))) as u32;
        let mut offset = 0;
        let mut spent_us = 0;
        while offset < chunk.len {
            let end = chunk.len.min(offset.saturating_add(slice));
            let cost_us = u64::from(end - offset) * 1_000_000 / self.bytes_per_sec;
            steps.push(step::forward(offset, end));
            steps.push(step::sleep_us(cost_us));
            spent_us += cost_us;
            offset = end;
        }
        self.free_at_us = start + spent_us;
        steps
    }
}

faultgate_guest::export_fault!(Bandwidth);
