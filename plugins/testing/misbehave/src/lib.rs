//! `misbehave`: a deliberately broken plugin for faultgate's own tests.
//! `behaviour`: "trap" panics (a wasm trap), "loop" never returns, "alloc"
//! allocates until memory runs out, "none" passes data. `on`: whether it
//! misbehaves when the fault is checked or made ("create"), at a
//! connection's "open", or at "data". `trigger`: at "data", only on a chunk
//! that holds these bytes (by default every chunk).

use faultgate_guest::{
    Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, host, step,
};

struct Misbehave {
    behaviour: String,
    on: String,
    trigger: Vec<u8>,
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
        .attribute(attribute::text("on", "data", "create | open | data"))
        .attribute(attribute::text(
            "trigger",
            "",
            "at data: only on a chunk holding these bytes",
        ))
        .wants_bytes()
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let fault = Self {
            behaviour: attrs.choice("behaviour", "none", &["trap", "loop", "alloc", "none"])?,
            on: attrs.choice("on", "data", &["create", "open", "data"])?,
            trigger: attrs.text("trigger", "")?.into_bytes(),
        };
        // Connection 0 is the stand-in the fault is checked and made with.
        if fault.on == "create" && conn.id == 0 {
            fault.act();
        }
        Ok(fault)
    }
}

impl Filter for Misbehave {
    fn on_open(&mut self) -> Vec<Step> {
        if self.on == "open" {
            self.act();
        }
        Vec::new()
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        let bytes = chunk.bytes.as_deref().unwrap_or_default();
        let triggered =
            self.trigger.is_empty() || bytes.windows(self.trigger.len()).any(|w| w == self.trigger);
        if self.on == "data" && triggered {
            self.act();
        }
        vec![step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Misbehave);
