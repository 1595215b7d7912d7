//! `half_close`: ends one direction of a connection while the other goes
//! on. `delay` milliseconds after the fault met the connection (its start,
//! or the moment the fault was attached to a connection already open), the
//! receiver of the fault's stream gets the end of stream (FIN), as if its
//! peer had half-closed: attached `downstream`, the client reads EOF from
//! the server while what it writes still reaches the server; `upstream`,
//! the server reads EOF from the client while its answers still reach the
//! client. What the silenced side sends afterwards is dropped.
//!
//! The direction is ended by the host's `half-close`.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute, host, step,
};

struct HalfClose {
    delay_us: u64,
}

impl Fault for HalfClose {
    fn describe() -> Description {
        Description::new(
            "half_close",
            "Ends the fault's direction (its receiver gets EOF) while the other goes on",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "delay",
            0,
            "milliseconds before the half-close (0 = as the connection opens)",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            delay_us: attrs.up_to("delay", 0, MAX_MILLIS, "milliseconds")? * 1000,
        })
    }
}

impl Filter for HalfClose {
    fn on_open(&mut self) -> Vec<Step> {
        if self.delay_us == 0 {
            host::half_close();
            return Vec::new();
        }
        vec![Step::Wake(self.delay_us)]
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![step::forward_all(chunk.len)]
    }

    fn on_wake(&mut self) -> Vec<Step> {
        host::half_close();
        Vec::new()
    }
}

faultgate_guest::export_fault!(HalfClose);
