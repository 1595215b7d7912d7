//! `blackhole`: the connection is accepted and its data read up to the
//! buffers, but nothing is ever passed on: to the peer it looks like a server
//! that hangs. Data is held, not discarded, so removing the fault resumes the
//! stream with nothing lost. (To swallow data instead, use `timeout` with
//! `timeout: 0`.)

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, step};

struct Blackhole;

impl Fault for Blackhole {
    fn describe() -> Description {
        Description::new(
            "blackhole",
            "Holds all data: the peer never gets an answer, until the fault is removed",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
    }

    fn new(_conn: &ConnInfo, _attrs: &Attrs) -> Result<Self, String> {
        Ok(Self)
    }
}

impl Filter for Blackhole {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![Step::Hold, step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Blackhole);
