//! `http_abort`: answers matching requests with `status` and `body`. Attached
//! `upstream`, the server never sees the request; attached `downstream`
//! (Toxiproxy's default), the server does the work and the client gets the
//! error instead of its answer.

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, Trigger, action,
};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct Abort {
    trigger: Trigger,
    answer: Vec<Action>,
}

impl HttpFault for Abort {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new(
                "http_abort",
                "Answers matching requests with an error status",
            )
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "status",
                503,
                "the status to answer with (100-999)",
            ))
            .attribute(attribute::text(
                "body",
                "",
                "the response body (plain text)",
            )),
        )
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let status = attrs.int("status", 503)?;
        if !(100..=999).contains(&status) {
            return Err(format!(
                "status: expected an HTTP status (100-999), got {status}"
            ));
        }
        Ok(Self {
            trigger: Trigger::new(conn, attrs)?,
            answer: vec![action::respond(status as u16, &attrs.text("body", "")?)],
        })
    }
}

impl HttpExchange for Abort {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.trigger.on_request(request, || self.answer.clone())
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        self.trigger.on_response(|| self.answer.clone())
    }
}

faultgate_guest::export_http_fault!(Abort);
