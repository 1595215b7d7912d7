//! The contract's `http-host` import: what an HTTP fault asks of the host
//! besides its actions (edits to a passing response, a request sent more
//! than once). While a hook runs, its requests are recorded in the
//! instance's store (`state.rs` implements the import); they are handed to
//! the HTTP layer with the hook's actions, and the HTTP layer decides
//! whether they fit the hook and applies them.

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
    pub(super) fn record(&mut self, edit: HttpEdit) {
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
