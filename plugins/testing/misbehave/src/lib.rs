//! `misbehave`: a deliberately broken plugin for faultgate's own tests.
//! `behaviour`: "trap" panics (a wasm trap), "loop" never returns, "alloc"
//! allocates until memory runs out, "none" passes data. `on`: whether it
//! misbehaves when the fault is checked or made ("create"), at a
//! connection's "open", or at "data". `trigger`: at "data", only on a chunk
//! that holds these bytes (by default every chunk).

mod act;

use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, step};

struct Misbehave {
    behaviour: String,
    on: String,
    trigger: Vec<u8>,
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
            act::act(&fault.behaviour);
        }
        Ok(fault)
    }
}

impl Filter for Misbehave {
    fn on_open(&mut self) -> Vec<Step> {
        if self.on == "open" {
            act::act(&self.behaviour);
        }
        Vec::new()
    }

    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
        let bytes = chunk.bytes.as_deref().unwrap_or_default();
        if self.on == "data" && act::triggered(bytes, &self.trigger) {
            act::act(&self.behaviour);
        }
        vec![step::forward_all(chunk.len)]
    }
}

faultgate_guest::export_fault!(Misbehave);
