//! `pg_misbehave`: a deliberately broken Postgres plugin for faultgate's own
//! tests. It passes every message, but misbehaves (`behaviour`: "trap",
//! "loop" or "alloc") on a message that holds `trigger`.

#[path = "../../misbehave/src/act.rs"]
mod act;

use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct PgMisbehave {
    behaviour: String,
    trigger: Vec<u8>,
}

impl PgFault for PgMisbehave {
    fn describe() -> Description {
        Description::new(
            "pg_misbehave",
            "Traps, loops or allocates without end on a message holding a trigger (tests only)",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .attribute(attribute::text("behaviour", "trap", "trap | loop | alloc"))
        .attribute(attribute::text(
            "trigger",
            "",
            "misbehave on a message holding these bytes",
        ))
        .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            behaviour: attrs.choice("behaviour", "trap", &["trap", "loop", "alloc"])?,
            trigger: attrs.text("trigger", "")?.into_bytes(),
        })
    }
}

impl PgSession for PgMisbehave {
    fn on_message(&mut self, message: Message) -> Vec<PgAction> {
        if act::triggered(message.bytes.as_deref().unwrap_or_default(), &self.trigger) {
            act::act(&self.behaviour);
        }
        vec![PgAction::forward_all(&message)]
    }
}

faultgate_guest::export_postgres_fault!(PgMisbehave);
