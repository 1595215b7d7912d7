//! `latency`: delays every chunk by `latency` ± `jitter` milliseconds
//! (Toxiproxy's attributes). The delay counts from when the chunk arrived, so
//! chunks that queue up behind each other are not delayed twice.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, random_between, step,
};

struct Latency {
    latency_us: i64,
    jitter_us: i64,
}

impl Fault for Latency {
    fn describe() -> Description {
        Description::new("latency", "Delays all data by latency ± jitter")
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer("latency", 0, "delay in milliseconds"))
            .attribute(attribute::integer(
                "jitter",
                0,
                "random variation of the delay, ± milliseconds",
            ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            latency_us: attrs.millis("latency", 0)? as i64,
            jitter_us: attrs.millis("jitter", 0)? as i64,
        })
    }
}

impl Filter for Latency {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        let delay = self.latency_us + random_between(-self.jitter_us, self.jitter_us);
        if delay <= 0 {
            // Nothing to wait for: no timer at all.
            return vec![step::forward_all(chunk.len)];
        }
        vec![step::sleep_us(delay as u64), step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Latency);
