//! `slow_open`: a slow accept, as the client sees it (Toxiproxy's
//! `slow_open` and its `delay`). Attached `upstream` on
//! a `tcp` or `postgres` proxy, the proxy dials the upstream only `delay`
//! milliseconds after it accepted the client, so the server sees the
//! connection late and the client's first bytes wait meanwhile. Attached
//! `downstream`, or on an `http` proxy (which dials per request), it holds
//! the first bytes of its direction back until `delay` has passed since
//! the connection opened.
//!
//! The dial is delayed through the host's `delay-connect`; the `sleep` of
//! `on-open` holds the direction's data for the same time, which is what
//! delays the first bytes where there is no dial to delay.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, host, step,
};

struct SlowOpen {
    delay_us: u64,
}

impl Fault for SlowOpen {
    fn describe() -> Description {
        Description::new(
            "slow_open",
            "Dials the upstream only after a delay: a slow accept, as the client sees it",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "delay",
            0,
            "milliseconds from the client's connect to the upstream's dial (and its first bytes)",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            delay_us: attrs.millis("delay", 0)?,
        })
    }
}

impl Filter for SlowOpen {
    fn on_open(&mut self) -> Vec<Step> {
        if self.delay_us == 0 {
            return Vec::new();
        }
        host::delay_connect(self.delay_us);
        vec![step::sleep_us(self.delay_us)]
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(SlowOpen);
