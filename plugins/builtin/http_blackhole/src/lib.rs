//! `http_blackhole`: matching requests are never answered, as from a server
//! that accepted the connection and hangs. Attached `upstream` the request
//! is held before it goes upstream; `downstream`, the server's answer is
//! held. Removing the fault lets held exchanges go on.

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, Trigger,
};
use faultgate_guest::{Attrs, ConnInfo, Description};

struct Blackhole {
    trigger: Trigger,
}

impl HttpFault for Blackhole {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new("http_blackhole", "Never answers matching requests")
                .version(env!("CARGO_PKG_VERSION"))
                .streams(&[
                    faultgate_guest::Direction::Upstream,
                    faultgate_guest::Direction::Downstream,
                ]),
        )
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            trigger: Trigger::new(conn, attrs)?,
        })
    }
}

impl HttpExchange for Blackhole {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.trigger.on_request(request, || vec![Action::Drop])
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        self.trigger.on_response(|| vec![Action::Drop])
    }
}

faultgate_guest::export_http_fault!(Blackhole);
