//! `limit_time`: the cable pulled after a while. Data passes untouched, and
//! `time` milliseconds after the fault met the connection (its start, or
//! the moment the fault was attached to a connection already open) the
//! connection ends: closed (FIN to both peers), or reset (RST) with
//! `reset`. A connection that ends sooner on its own is left alone.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute, step,
};

struct LimitTime {
    lifetime_us: u64,
    reset: bool,
}

impl LimitTime {
    fn end(&self) -> Step {
        if self.reset { Step::Reset } else { Step::Close }
    }
}

impl Fault for LimitTime {
    fn describe() -> Description {
        Description::new(
            "limit_time",
            "Ends each connection after a lifetime: closed (FIN), or reset (RST)",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "time",
            0,
            "lifetime of a connection, in milliseconds (0 = ended as it opens)",
        ))
        .attribute(attribute::boolean(
            "reset",
            false,
            "end with a reset (RST) instead of a close (FIN)",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            lifetime_us: attrs.up_to("time", 0, MAX_MILLIS, "milliseconds")? * 1000,
            reset: attrs.boolean("reset", false)?,
        })
    }
}

impl Filter for LimitTime {
    fn on_open(&mut self) -> Vec<Step> {
        if self.lifetime_us == 0 {
            return vec![self.end()];
        }
        // A wake, not a sleep: data goes on meanwhile.
        vec![Step::Wake(self.lifetime_us)]
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![step::forward_all(chunk.len)]
    }

    fn on_wake(&mut self) -> Vec<Step> {
        vec![self.end()]
    }
}

faultgate_guest::export_fault!(LimitTime);
