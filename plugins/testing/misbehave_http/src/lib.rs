//! `http_misbehave`: a deliberately broken HTTP plugin for faultgate's own
//! tests. It passes every request, but misbehaves (`behaviour`: "trap",
//! "loop" or "alloc") on a request whose path holds `trigger`.

#[path = "../../misbehave/src/act.rs"]
mod act;

use faultgate_guest::http::{Action, HttpExchange, HttpFault, RequestHead};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct HttpMisbehave {
    behaviour: String,
    trigger: String,
}

impl HttpFault for HttpMisbehave {
    fn describe() -> Description {
        Description::new(
            "http_misbehave",
            "Traps, loops or allocates without end on a request whose path holds a trigger (tests only)",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .attribute(attribute::text("behaviour", "trap", "trap | loop | alloc"))
        .attribute(attribute::text(
            "trigger",
            "",
            "misbehave on a request whose path holds this",
        ))
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            behaviour: attrs.choice("behaviour", "trap", &["trap", "loop", "alloc"])?,
            trigger: attrs.text("trigger", "")?,
        })
    }
}

impl HttpExchange for HttpMisbehave {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        if act::triggered(request.path.as_bytes(), self.trigger.as_bytes()) {
            act::act(&self.behaviour);
        }
        Vec::new()
    }
}

faultgate_guest::export_http_fault!(HttpMisbehave);
