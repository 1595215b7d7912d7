//! `latency_wave`: latency that changes over time, for "the database slowly
//! gets slower" tests. From the moment the toxic is attached, the delay of
//! a chunk arriving `t` into the fault's life goes from `from` to `to`
//! milliseconds over `period`:
//!
//! * `ramp`: straight from `from` to `to` over one period, then stays at `to`;
//! * `triangle`: from `from` to `to` and back each period, in straight lines;
//! * `sine`: the same, smoothly (a cosine starting at `from`).
//!
//! One clock for every connection of the toxic (the fault's shared state),
//! so a connection opened late sees the latency of its time. As with
//! `latency`, the delay counts from a chunk's arrival, and chunks keep
//! their order even while the latency falls.

use std::rc::Rc;

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Filter, MAX_MILLIS, SharedFault, Step, attribute, host,
    step,
};

const SHAPES: [&str; 3] = ["ramp", "triangle", "sine"];

#[derive(Clone, Copy)]
enum Shape {
    Ramp,
    Triangle,
    Sine,
}

struct LatencyWave {
    from_us: f64,
    to_us: f64,
    period_us: u64,
    shape: Shape,
    /// When the toxic was attached: the wave's time zero.
    start_us: u64,
}

impl LatencyWave {
    /// The delay, in microseconds, of a chunk that arrived at `at_us`.
    fn delay_at(&self, at_us: u64) -> u64 {
        let elapsed = at_us.saturating_sub(self.start_us);
        let phase = (elapsed % self.period_us) as f64 / self.period_us as f64;
        // How far from `from` towards `to`, 0 to 1.
        let share = match self.shape {
            Shape::Ramp if elapsed >= self.period_us => 1.0,
            Shape::Ramp => phase,
            Shape::Triangle => 1.0 - (2.0 * phase - 1.0).abs(),
            Shape::Sine => (1.0 - (std::f64::consts::TAU * phase).cos()) / 2.0,
        };
        (self.from_us + (self.to_us - self.from_us) * share).round() as u64
    }
}

impl SharedFault for LatencyWave {
    type Filter = WaveConnection;

    fn describe() -> Description {
        Description::new(
            "latency_wave",
            "Delays all data by a latency that ramps or waves between two values over time",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "from",
            0,
            "latency when the toxic is attached, in milliseconds",
        ))
        .attribute(attribute::integer(
            "to",
            1000,
            "latency at the end of the ramp (or the wave's other extreme), in milliseconds",
        ))
        .attribute(attribute::integer(
            "period",
            60000,
            "length of the ramp, or of one wave, in milliseconds (at least 1)",
        ))
        .attribute(attribute::text(
            "shape",
            "ramp",
            "ramp (from to `to`, then stays), triangle or sine (from to `to` and back each period)",
        ))
    }

    fn new(attrs: &Attrs) -> Result<Self, String> {
        let period_ms = attrs.up_to("period", 60000, MAX_MILLIS, "milliseconds")?;
        if period_ms == 0 {
            return Err("period: a period of 0 milliseconds; give at least 1".into());
        }
        let shape = match attrs.choice("shape", "ramp", &SHAPES)?.as_str() {
            "triangle" => Shape::Triangle,
            "sine" => Shape::Sine,
            _ => Shape::Ramp,
        };
        Ok(Self {
            from_us: attrs.millis("from", 0)? as f64,
            to_us: attrs.millis("to", 1000)? as f64,
            period_us: period_ms * 1000,
            shape,
            start_us: host::now_us(),
        })
    }

    fn open(fault: &Rc<Self>, _conn: &ConnInfo) -> Result<WaveConnection, String> {
        Ok(WaveConnection {
            fault: fault.clone(),
        })
    }
}

/// One connection direction under the wave.
struct WaveConnection {
    fault: Rc<LatencyWave>,
}

impl Filter for WaveConnection {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        match self.fault.delay_at(chunk.arrived_us) {
            0 => vec![step::forward_all(chunk.len)],
            delay => vec![step::sleep_us(delay), step::forward_all(chunk.len)],
        }
    }
}

faultgate_guest::export_shared_fault!(LatencyWave);
