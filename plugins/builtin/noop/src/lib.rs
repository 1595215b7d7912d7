//! `noop`: passes every chunk unchanged. Measures what a plugin call costs
//! (the benchmarks use it), and shows the smallest complete plugin.

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, step};

struct Noop;

impl Fault for Noop {
    fn describe() -> Description {
        Description::new("noop", "Passes all data unchanged")
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

impl Filter for Noop {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Noop);
