//! The contract's `http-host` import: what an HTTP fault asks of the host
//! besides its actions (edits to a passing response, a request sent more
//! than once). A hook's requests are recorded in the instance's store while
//! it runs and handed to the HTTP layer with its actions when it returns;
//! the HTTP layer decides whether they fit the hook and applies them.

use super::bindings::HttpHost;
use super::state::InstanceState;

/// The most requests one hook may record; past it the request fails,
/// so a plugin cannot make the host hold an unbounded list.
pub const MAX_HTTP_EDITS: usize = 64;

/// One thing a fault asked of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEdit {
    /// The response goes on with this status.
    Status(u16),
    /// The response header has this one value.
    SetHeader { name: String, value: String },
    /// The response header is removed.
    RemoveHeader(String),
    /// The response body is this, in place of the upstream's.
    Body(Vec<u8>),
    /// The request is sent `count` times; the client gets answer `answer`.
    Repeat { count: u32, answer: u32 },
}

impl HttpEdit {
    /// The function that recorded it, for error messages.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Status(_) => "set-response-status",
            Self::SetHeader { .. } => "set-response-header",
            Self::RemoveHeader(_) => "remove-response-header",
            Self::Body(_) => "replace-response-body",
            Self::Repeat { .. } => "repeat-request",
        }
    }
}

/// What the running hook has recorded.
#[derive(Debug, Default)]
pub struct HttpEdits {
    edits: Vec<HttpEdit>,
    overflowed: bool,
}

impl HttpEdits {
    fn record(&mut self, edit: HttpEdit) {
        if self.edits.len() < MAX_HTTP_EDITS {
            self.edits.push(edit);
        } else {
            self.overflowed = true;
        }
    }

    /// The edits in the order they were made, or why there are too many.
    pub fn into_list(self) -> Result<Vec<HttpEdit>, String> {
        if self.overflowed {
            return Err(format!(
                "more than {MAX_HTTP_EDITS} http-host requests in one hook"
            ));
        }
        Ok(self.edits)
    }
}

impl HttpHost for InstanceState {
    fn set_response_status(&mut self, status: u16) {
        self.http_edits().record(HttpEdit::Status(status));
    }

    fn set_response_header(&mut self, name: String, value: String) {
        self.http_edits()
            .record(HttpEdit::SetHeader { name, value });
    }

    fn remove_response_header(&mut self, name: String) {
        self.http_edits().record(HttpEdit::RemoveHeader(name));
    }

    fn replace_response_body(&mut self, body: Vec<u8>) {
        self.http_edits().record(HttpEdit::Body(body));
    }

    fn repeat_request(&mut self, count: u32, answer: u32) {
        self.http_edits().record(HttpEdit::Repeat { count, answer });
    }
}
