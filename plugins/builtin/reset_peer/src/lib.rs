//! `reset_peer`: when data first arrives, waits `timeout` milliseconds and
//! resets the connection (RST to both peers), as Toxiproxy does. The data is
//! not passed on.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute, step,
};

struct ResetPeer {
    timeout_ms: u64,
}

impl Fault for ResetPeer {
    fn describe() -> Description {
        Description::new(
            "reset_peer",
            "Resets the connection (TCP RST) on data, after a timeout",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "timeout",
            0,
            "milliseconds from the first data to the reset",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            timeout_ms: attrs.up_to("timeout", 0, MAX_MILLIS, "milliseconds")?,
        })
    }
}

impl Filter for ResetPeer {
    fn on_data(&mut self, _chunk: Chunk) -> Vec<Step> {
        vec![step::sleep_ms(self.timeout_ms), Step::Reset]
    }
}

faultgate_guest::export_fault!(ResetPeer);
