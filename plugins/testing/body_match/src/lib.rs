//! `test_body_match`: answers 403 to requests whose body contains `needle`.
//! It asks for bodies (`wants-bytes`), so faultgate's tests can check that
//! an HTTP plugin sees them.

use faultgate_guest::http::{Action, HttpExchange, HttpFault, RequestHead, action};
use faultgate_guest::{Attrs, ConnInfo, Description, attribute};

struct BodyMatch {
    needle: String,
}

impl HttpFault for BodyMatch {
    fn describe() -> Description {
        Description::new(
            "test_body_match",
            "Answers 403 when the request body contains a needle",
        )
        .attribute(attribute::text("needle", "", "the text to look for"))
        .wants_bytes()
    }

    fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            needle: attrs.text("needle", "")?,
        })
    }
}

impl HttpExchange for BodyMatch {
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        let found = request.body.as_ref().is_some_and(|body| {
            !self.needle.is_empty()
                && body
                    .windows(self.needle.len())
                    .any(|w| w == self.needle.as_bytes())
        });
        match (&request.body, found) {
            (_, true) => vec![action::respond(403, &format!("found {}", self.needle))],
            (None, false) => vec![action::respond(400, "no body shown")],
            (Some(_), false) => Vec::new(),
        }
    }
}

faultgate_guest::export_http_fault!(BodyMatch);
