//! `packet_loss`: drops whole chunks at random, the way a flaky link loses
//! packets, with Toxiproxy's attributes: each chunk is lost with
//! probability `loss_rate`, and right after a lost chunk with `loss_rate +
//! correlation` (at most 1), so losses come in bursts (a two-state,
//! Gilbert-Elliott-like model). The draws come from the connection's random
//! stream, so `faultgate serve --seed` replays the same losses.
//!
//! Unlike IP, TCP does not resend what is lost here: a peer sees a gap in
//! the stream. That is the point for testing framing and timeouts; for the
//! delays a lossy link causes, `latency` with `jitter` is closer.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, host, step,
};

struct PacketLoss {
    loss_rate: f64,
    correlation: f64,
    /// Whether the chunk before was lost: the burst state.
    lost_last: bool,
}

/// A probability attribute: a number from 0 to 1, named when it is not.
fn probability(attrs: &Attrs, name: &str, default: f64) -> Result<f64, String> {
    let value = attrs.float(name, default)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!(
            "{name}: expected a probability from 0 to 1, got {value}"
        ));
    }
    Ok(value)
}

/// A uniform draw in [0, 1) from the connection's random stream.
fn draw() -> f64 {
    (host::random() >> 11) as f64 / (1u64 << 53) as f64
}

impl Fault for PacketLoss {
    fn describe() -> Description {
        Description::new(
            "packet_loss",
            "Drops whole chunks at random, in bursts when correlation is set",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::float(
            "loss_rate",
            0.1,
            "probability (0 to 1) that a chunk is dropped",
        ))
        .attribute(attribute::float(
            "correlation",
            0.0,
            "added to loss_rate for the chunk right after a dropped one (0 to 1): bursts",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            loss_rate: probability(attrs, "loss_rate", 0.1)?,
            correlation: probability(attrs, "correlation", 0.0)?,
            lost_last: false,
        })
    }
}

impl Filter for PacketLoss {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        let chance = if self.lost_last {
            (self.loss_rate + self.correlation).min(1.0)
        } else {
            self.loss_rate
        };
        // Always draw, so that one chunk's fate does not shift the stream
        // the next ones are drawn from.
        self.lost_last = draw() < chance;
        if self.lost_last {
            vec![Step::Drop]
        } else {
            vec![step::forward_all(chunk.len)]
        }
    }
}

faultgate_guest::export_fault!(PacketLoss);
