//! `http_delay`: delays matching requests (attached `upstream`) or their
//! responses (attached `downstream`) by `delay` ± `jitter` milliseconds.

use faultgate_guest::http::{
    Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, Trigger,
};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute, random_between};

struct Delay {
    trigger: Trigger,
    delay_us: i64,
    jitter_us: i64,
}

/// `delay` ± `jitter` microseconds, drawn from the seeded stream.
fn wait(delay_us: i64, jitter_us: i64) -> Vec<Action> {
    let delay = delay_us + random_between(-jitter_us, jitter_us);
    if delay <= 0 {
        Vec::new()
    } else {
        vec![Action::Delay(delay as u64)]
    }
}

impl HttpFault for Delay {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new("http_delay", "Delays matching requests or their responses")
                .version(env!("CARGO_PKG_VERSION"))
                .streams(&[
                    faultgate_guest::Direction::Upstream,
                    faultgate_guest::Direction::Downstream,
                ])
                .attribute(attribute::integer("delay", 0, "delay in milliseconds"))
                .attribute(attribute::integer(
                    "jitter",
                    0,
                    "random variation of the delay, ± milliseconds",
                )),
        )
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            trigger: Trigger::new(conn, attrs)?,
            delay_us: attrs.millis("delay", 0)? as i64,
            jitter_us: attrs.millis("jitter", 0)? as i64,
        })
    }
}

impl HttpExchange for Delay {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.trigger
            .on_request(request, || wait(self.delay_us, self.jitter_us))
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        self.trigger
            .on_response(|| wait(self.delay_us, self.jitter_us))
    }
}

faultgate_guest::export_http_fault!(Delay);
