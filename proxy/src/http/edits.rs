//! What an HTTP fault asked of the host besides its actions (the
//! contract's `http-host`): checking each request fits the hook it was made
//! in, and applying a fault's edits to a response that passes.

use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::repeat::Repeat;
use super::{Body, full};
use crate::faults::Fault;
use crate::plugin_host::{HttpEdit, HttpEdits, PluginError};

/// The most times a request may be sent.
pub const MAX_SENDS: u32 = 10;

fn bad(fault: &Fault, reason: String) -> PluginError {
    PluginError::BadStep {
        plugin: fault.plugin.name().to_owned(),
        reason,
    }
}

/// The repeat an `on-request` hook asked for (the last, if several), or
/// why what it asked does not fit there.
pub(super) fn repeat_of(fault: &Fault, edits: HttpEdits) -> Result<Option<Repeat>, PluginError> {
    let mut repeat = None;
    for edit in edits.into_list().map_err(|e| bad(fault, e))? {
        match edit {
            HttpEdit::Repeat { count, answer } => {
                if !(2..=MAX_SENDS).contains(&count) {
                    return Err(bad(
                        fault,
                        format!("repeat-request: count {count} is not 2-{MAX_SENDS}"),
                    ));
                }
                if !(1..=count).contains(&answer) {
                    return Err(bad(
                        fault,
                        format!("repeat-request: answer {answer} is not 1-{count}"),
                    ));
                }
                repeat = Some(Repeat { count, answer });
            }
            other => {
                return Err(bad(
                    fault,
                    format!(
                        "{} was called in on-request; it edits the response, in on-response",
                        other.function()
                    ),
                ));
            }
        }
    }
    Ok(repeat)
}

/// The response edits an `on-response` hook asked for, or why what it
/// asked does not fit there.
pub(super) fn response_edits(
    fault: &Fault,
    edits: HttpEdits,
) -> Result<Vec<HttpEdit>, PluginError> {
    let edits = edits.into_list().map_err(|e| bad(fault, e))?;
    if edits.iter().any(|e| matches!(e, HttpEdit::Repeat { .. })) {
        return Err(bad(
            fault,
            "repeat-request was called in on-response; the request has been sent, it belongs in on-request".into(),
        ));
    }
    Ok(edits)
}

/// Applies `edits` to `response` in order. A status or header HTTP cannot
/// carry fails the request, naming it; nothing is applied then.
pub(super) fn apply(
    fault: &Fault,
    response: &mut Response<Body>,
    edits: Vec<HttpEdit>,
) -> Result<(), PluginError> {
    if edits.is_empty() {
        return Ok(());
    }
    let mut status = response.status();
    let mut headers = response.headers().clone();
    let mut body = None;
    for edit in edits {
        match edit {
            HttpEdit::Status(code) => {
                status = StatusCode::from_u16(code).map_err(|_| {
                    bad(
                        fault,
                        format!("set-response-status: {code} is not an HTTP status"),
                    )
                })?;
            }
            HttpEdit::SetHeader { name, value } => {
                let name = header_name(fault, "set-response-header", &name)?;
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    bad(
                        fault,
                        format!("set-response-header: {name}: {value:?} is not a header value"),
                    )
                })?;
                headers.insert(name, value);
            }
            HttpEdit::RemoveHeader(name) => {
                let name = header_name(fault, "remove-response-header", &name)?;
                headers.remove(name);
            }
            HttpEdit::Body(bytes) => body = Some(bytes),
            // `response_edits` lets none through; a repeat says nothing
            // of the response.
            HttpEdit::Repeat { .. } => {}
        }
    }
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(bytes) = body {
        // The length follows the new body (hyper writes it from the body's
        // exact size); the upstream's body is dropped unread.
        response.headers_mut().remove(header::CONTENT_LENGTH);
        response.headers_mut().remove(header::TRANSFER_ENCODING);
        *response.body_mut() = full(bytes.into());
    }
    Ok(())
}

/// A header name a fault may edit: not the two that follow the body.
fn header_name(fault: &Fault, function: &str, name: &str) -> Result<HeaderName, PluginError> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| bad(fault, format!("{function}: {name:?} is not a header name")))?;
    if parsed == header::CONTENT_LENGTH || parsed == header::TRANSFER_ENCODING {
        return Err(bad(
            fault,
            format!("{function}: {parsed} follows the body and is the host's to set"),
        ));
    }
    Ok(parsed)
}
