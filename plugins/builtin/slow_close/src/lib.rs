//! `slow_close`: when the sender finishes, holds the end of stream back for
//! `delay` milliseconds before passing it on. Data is untouched.

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, MAX_MILLIS, Step, attribute, step,
};

struct SlowClose {
    delay_ms: u64,
}

impl Fault for SlowClose {
    fn describe() -> Description {
        Description::new("slow_close", "Delays the close of the connection")
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "delay",
                0,
                "delay of the close in milliseconds",
            ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            delay_ms: attrs.up_to("delay", 0, MAX_MILLIS, "milliseconds")?,
        })
    }
}

impl Filter for SlowClose {
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        vec![step::forward_all(chunk.len)]
    }

    fn on_close(&mut self) -> Vec<Step> {
        vec![step::sleep_ms(self.delay_ms)]
    }
}

faultgate_guest::export_fault!(SlowClose);
