//! `timeout`: lets no data through, and closes the connection after
//! `timeout` milliseconds. With 0 the connection stays open and data is
//! swallowed until the fault is removed (as in Toxiproxy).

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute, step,
};

struct Timeout {
    timeout_ms: u64,
}

impl Fault for Timeout {
    fn describe() -> Description {
        Description::new(
            "timeout",
            "Stops all data and closes the connection after a timeout",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "timeout",
            0,
            "milliseconds before the close; 0 = never close, swallow data",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            timeout_ms: attrs.up_to("timeout", 0, MAX_MILLIS, "milliseconds")?,
        })
    }
}

impl Filter for Timeout {
    fn on_open(&mut self) -> Vec<Step> {
        if self.timeout_ms == 0 {
            return Vec::new();
        }
        vec![step::sleep_ms(self.timeout_ms), Step::Close]
    }

    fn on_data(&mut self, _chunk: Chunk) -> Vec<Step> {
        vec![Step::Drop]
    }
}

faultgate_guest::export_fault!(Timeout);
