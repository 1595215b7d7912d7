//! `http_duplicate`: a matching request is sent to the upstream `times`
//! times in all, one after another, and the client gets one answer (the
//! first's by default, or the last's): the server sees the retry a client
//! or a proxy might make, for idempotency bugs. It acts at the request
//! whichever stream it is attached to. The host holds the body to send it
//! again, so only requests without a body or with a Content-Length of at
//! most 1 MiB are repeated; others are sent once (the host logs it). The
//! repeat goes through the contract's `http-host` import.

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, host,
};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

/// The most times a request is sent (the host's bound too).
const MAX_TIMES: i64 = 10;

struct Duplicate {
    when: RequestMatch,
    times: u32,
    answer: u32,
}

impl HttpFault for Duplicate {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new(
                "http_duplicate",
                "Sends matching requests upstream several times; the client gets one answer",
            )
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "times",
                2,
                "how many times the request is sent in all (2-10)",
            ))
            .attribute(attribute::text(
                "answer",
                "first",
                "which send's answer the client gets: \"first\" or \"last\"",
            )),
        )
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let times = attrs.int("times", 2)?;
        if !(2..=MAX_TIMES).contains(&times) {
            return Err(format!(
                "times: expected 2 to {MAX_TIMES} (sends in all), got {times}"
            ));
        }
        let times = times as u32;
        let answer = match attrs
            .choice("answer", "first", &["first", "last"])?
            .as_str()
        {
            "first" => 1,
            _ => times,
        };
        Ok(Self {
            when: RequestMatch::from_attrs(attrs)?,
            times,
            answer,
        })
    }
}

impl HttpExchange for Duplicate {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        if self.when.matches(request) {
            host::repeat_request(self.times, self.answer);
        }
        Vec::new()
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        Vec::new()
    }
}

faultgate_guest::export_http_fault!(Duplicate);
