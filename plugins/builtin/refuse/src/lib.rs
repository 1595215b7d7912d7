//! `refuse`: resets every new connection as soon as it opens, before any
//! data: a server that refuses service.

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step};

struct Refuse;

impl Fault for Refuse {
    fn describe() -> Description {
        Description::new(
            "refuse",
            "Resets connections (TCP RST) as soon as they open",
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

impl Filter for Refuse {
    fn on_open(&mut self) -> Vec<Step> {
        vec![Step::Reset]
    }

    fn on_data(&mut self, _chunk: Chunk) -> Vec<Step> {
        vec![Step::Reset]
    }
}

faultgate_guest::export_fault!(Refuse);
