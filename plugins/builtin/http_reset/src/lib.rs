//! `http_reset`: aborts the client's connection (RST) on matching requests,
//! before they go upstream (`upstream`) or after the server answered
//! (`downstream`).

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, Trigger,
};
use faultgate_guest::{Attrs, ConnInfo, Description};

struct Reset {
    trigger: Trigger,
}

impl HttpFault for Reset {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new("http_reset", "Resets the connection on matching requests")
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

impl HttpExchange for Reset {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.trigger.on_request(request, || vec![Action::Reset])
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        self.trigger.on_response(|| vec![Action::Reset])
    }
}

faultgate_guest::export_http_fault!(Reset);
