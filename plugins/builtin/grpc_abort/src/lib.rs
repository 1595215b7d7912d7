//! `grpc_abort`: answers matching gRPC calls (requests whose content-type
//! is `application/grpc...`) with a gRPC error: a trailers-only response
//! (HTTP 200 with `grpc-status` and `grpc-message` in its one header block,
//! and no body), which a gRPC client reports as that status and message.
//! Other requests pass. Attached `upstream`, the server never sees the
//! call; attached `downstream`, it does the work and the client gets the
//! error instead of its answer.

use faultgate_guest::http::{
    Action, Header, HttpExchange, HttpFault, RequestHead, RequestMatch, Response, ResponseHead,
    Trigger,
};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct GrpcAbort {
    trigger: Trigger,
    grpc: bool,
    answer: Response,
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and
/// '%' itself.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn header(name: &str, value: String) -> Header {
    Header {
        name: name.into(),
        value,
    }
}

impl HttpFault for GrpcAbort {
    fn describe() -> Description {
        RequestMatch::describe(
            Description::new(
                "grpc_abort",
                "Answers matching gRPC calls with a gRPC error status and message",
            )
            .version(env!("CARGO_PKG_VERSION"))
            .streams(&[
                faultgate_guest::Direction::Upstream,
                faultgate_guest::Direction::Downstream,
            ])
            .attribute(attribute::integer(
                "code",
                14,
                "the grpc-status to answer with (1-16; 14 is UNAVAILABLE)",
            ))
            .attribute(attribute::text(
                "message",
                "",
                "the grpc-message the client sees",
            )),
        )
    }

    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        let code = attrs.int("code", 14)?;
        if !(1..=16).contains(&code) {
            return Err(format!(
                "code: expected a gRPC error status (1-16; 0 is OK, not an error), got {code}"
            ));
        }
        let message = attrs.text("message", "")?;
        let mut headers = vec![
            header("content-type", "application/grpc".into()),
            header("grpc-status", code.to_string()),
        ];
        if !message.is_empty() {
            headers.push(header("grpc-message", percent_encode(&message)));
        }
        Ok(Self {
            trigger: Trigger::new(conn, attrs)?,
            grpc: false,
            answer: Response {
                status: 200,
                headers,
                body: Vec::new(),
            },
        })
    }
}

impl HttpExchange for GrpcAbort {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        self.grpc = request
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/grpc"));
        let act = self.trigger.at_request(request) && self.grpc;
        if act {
            vec![Action::Respond(self.answer.clone())]
        } else {
            Vec::new()
        }
    }

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {
        if self.grpc && self.trigger.at_response() {
            vec![Action::Respond(self.answer.clone())]
        } else {
            Vec::new()
        }
    }
}

faultgate_guest::export_http_fault!(GrpcAbort);
