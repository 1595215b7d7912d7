//! `misbehave`: a deliberately broken plugin for faultgate's own tests.
//! `behaviour`: "trap" panics (a wasm trap), "loop" never returns, "alloc"
//! allocates until memory runs out, "none" passes data. `on`: whether it
//! misbehaves at "open" or at "data".

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, host, step,
};

struct Misbehave {
    behaviour: String,
    on_open: bool,
}

impl Misbehave {
    fn act(&self) {
        match self.behaviour.as_str() {
            "trap" => panic!("misbehave: trapping on purpose"),
            "loop" => {
                // Calling the host keeps the loop from being optimised away.
                let mut sum = 0u64;
                loop {
                    sum = sum.wrapping_add(host::now_us());
                    if sum == 1 {
                        break;
                    }
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    if hoard.len() == usize::MAX {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
}

impl Fault for Misbehave {
    fn describe() -> Description {
        Description::new(
            "misbehave",
            "Traps, loops or allocates without end, on purpose (tests only)",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .attribute(attribute::text(
            "behaviour",
            "none",
            "trap | loop | alloc | none",
        ))
        .attribute(attribute::text("on", "data", "open | data"))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            behaviour: attrs.choice("behaviour", "none", &["trap", "loop", "alloc", "none"])?,
            on_open: attrs.choice("on", "data", &["open", "data"])? == "open",
        })
    }
}

impl Filter for Misbehave {
    fn on_open(&mut self) -> Vec<Step> {
        if self.on_open {
            self.act();
        }
        Vec::new()
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        if !self.on_open {
            self.act();
        }
        vec![step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Misbehave);
