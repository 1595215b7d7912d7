//! `http_quota`: a rate limit shared by every client of the proxy. The
//! first `requests` matching requests in each `window` pass; the rest are
//! answered `status` (429 Too Many Requests) with a `Retry-After` header
//! saying when the window ends. Windows are counted from the moment the
//! toxic is attached, across all connections: the fault's shared state.
//! Attached `upstream` (the usual way) the server never sees a refused
//! request; attached `downstream`, it does the work and the client is told
//! otherwise.

use std::cell::Cell;
use std::rc::Rc;

use faultgate_guest::http::{
    Action, Header, HttpExchange, RequestHead, RequestMatch, Response, ResponseHead,
    SharedHttpFault,
};
use faultgate_guest::{Attrs, ConnInfo, Description, Direction, attribute, host};

struct Quota {
    when: RequestMatch,
    requests: u64,
    window_us: u64,
    status: u16,
    start_us: u64,
    /// The window being counted, and the matching requests seen in it.
    window: Cell<(u64, u64)>,
}

impl Quota {
    /// Counts a matching request; `None` if it passes, else the seconds
    /// until the window ends (for `Retry-After`).
    fn take(&self) -> Option<u64> {
        let elapsed = host::now_us().saturating_sub(self.start_us);
        let current = elapsed / self.window_us;
        let (window, seen) = self.window.get();
        let seen = if window == current { seen } else { 0 };
        self.window.set((current, seen + 1));
        if seen < self.requests {
            return None;
        }
        let left_us = self.window_us - elapsed % self.window_us;
        Some(left_us.div_ceil(1_000_000))
    }

    fn refusal(&self, retry_after: u64) -> Action {
        Action::Respond(Response {
            status: self.status,
            headers: vec![
                Header {
                    name: "content-type".into(),
                    value: "text/plain; charset=utf-8".into(),
                },
                Header {
                    name: "retry-after".into(),
                    value: retry_after.to_string(),
                },
            ],
            body: b"quota exceeded\n".to_vec(),
        })
    }
}

impl SharedHttpFault for Quota {
    type Exchange = QuotaExchange;

    fn describe() -> Description {
        RequestMatch::describe(
            Description::new(
                "http_quota",
                "Lets the first N matching requests of each window pass, answers the rest 429",
            )
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "requests",
                10,
                "matching requests that pass in each window",
            ))
            .attribute(attribute::integer(
                "window",
                1000,
                "length of a window, in milliseconds (at least 1)",
            ))
            .attribute(attribute::integer(
                "status",
                429,
                "the status refused requests are answered with (100-999)",
            )),
        )
    }

    fn new(attrs: &Attrs) -> Result<Self, String> {
        let window = attrs.non_negative("window", 1000, "milliseconds")?;
        if !(1..=86_400_000).contains(&window) {
            return Err(format!(
                "window: {window} milliseconds; give 1 to 86400000 (a day)"
            ));
        }
        let status = attrs.int("status", 429)?;
        if !(100..=999).contains(&status) {
            return Err(format!(
                "status: expected an HTTP status (100-999), got {status}"
            ));
        }
        Ok(Self {
            when: RequestMatch::from_attrs(attrs)?,
            requests: attrs.non_negative("requests", 10, "requests")?,
            window_us: window * 1000,
            status: status as u16,
            start_us: host::now_us(),
            window: Cell::new((0, 0)),
        })
    }

    fn open(fault: &Rc<Self>, conn: &ConnInfo) -> Result<QuotaExchange, String> {
        Ok(QuotaExchange {
            fault: fault.clone(),
            at_response: conn.stream == Direction::Downstream,
            refused: None,
        })
    }
}

/// One request under the quota.
struct QuotaExchange {
    fault: Rc<Quota>,
    /// Attached downstream: the refusal replaces the server's answer.
    at_response: bool,
    /// The refusal, once the request was counted over the quota.
    refused: Option<Action>,
}

impl HttpExchange for QuotaExchange {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        if !self.fault.when.matches(request) {
            return Vec::new();
        }
        self.refused = self
            .fault
            .take()
            .map(|retry_after| self.fault.refusal(retry_after));
        match &self.refused {
            Some(refusal) if !self.at_response => vec![refusal.clone()],
            _ => Vec::new(),
        }
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        match self.refused.take() {
            Some(refusal) if self.at_response => vec![refusal],
            _ => Vec::new(),
        }
    }
}

faultgate_guest::export_shared_http_fault!(Quota);
