//! `limit_data`: passes the first `bytes` bytes of a direction, then closes
//! the connection.

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, step};

struct LimitData {
    remaining: u64,
}

impl Fault for LimitData {
    fn describe() -> Description {
        Description::new(
            "limit_data",
            "Closes the connection once a number of bytes has passed",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .streams(&[
            faultgate_guest::Direction::Upstream,
            faultgate_guest::Direction::Downstream,
        ])
        .attribute(attribute::integer(
            "bytes",
            0,
            "bytes to let through before closing",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            remaining: attrs.non_negative("bytes", 0, "bytes")?,
        })
    }
}

impl Filter for LimitData {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        let len = u64::from(chunk.len);
        if len < self.remaining {
            self.remaining -= len;
            return vec![step::forward_all(chunk.len)];
        }
        let pass = self.remaining as u32;
        self.remaining = 0;
        vec![step::forward(0, pass), Step::Close]
    }
}

faultgate_guest::export_fault!(LimitData);
