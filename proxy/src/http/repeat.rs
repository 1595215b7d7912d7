//! Sending one request upstream several times (a fault's `repeat-request`):
//! the body is held once, each copy goes after the answer to the one before
//! it is in, and the client gets the answer it was told to.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header;
use hyper::{Request, Response};

use super::{Body, ForwardError, Forwarder, MAX_SHOWN_BODY, full};
use crate::conn::Connection;

/// How much of an answer the client does not get is read (and discarded)
/// before the next copy goes; past it, the rest is not waited for.
const MAX_DISCARDED_BODY: u64 = 64 << 20;

/// A request to be sent `count` times, the client getting answer `answer`
/// (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Repeat {
    pub count: u32,
    pub answer: u32,
}

/// Why a repeated request got no answer for the client.
pub(super) enum RepeatError {
    /// The client's body could not be read whole.
    Client(hyper::Error),
    /// The copy whose answer the client gets could not be sent.
    Upstream(ForwardError),
}

/// Whether the request's body can be held to be sent again: none, or one
/// of a known length of at most 1 MiB.
pub(super) fn holdable(request: &Request<Body>) -> bool {
    request.body().is_end_stream()
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|len| len <= MAX_SHOWN_BODY)
}

/// Sends `request` `repeat.count` times, one after the other; the answer to
/// send number `repeat.answer` is the client's. Other answers are read to
/// their end (up to 64 MiB) and discarded before the next send, and one of
/// them that fails is logged only. `request` must be [`holdable`].
pub(super) async fn send(
    forwarder: &Forwarder,
    conn: &Connection,
    request: Request<Body>,
    repeat: Repeat,
) -> Result<Response<Incoming>, RepeatError> {
    let (parts, body) = request.into_parts();
    let body: Bytes = body
        .collect()
        .await
        .map_err(RepeatError::Client)?
        .to_bytes();
    let mut chosen = None;
    for number in 1..=repeat.count {
        let mut copy = Request::new(full(body.clone()));
        *copy.method_mut() = parts.method.clone();
        *copy.uri_mut() = parts.uri.clone();
        *copy.version_mut() = parts.version;
        *copy.headers_mut() = parts.headers.clone();
        let sent = forwarder.send(copy).await;
        if number == repeat.answer {
            chosen = Some(sent);
            continue;
        }
        match sent {
            Ok(answer) => discard(conn, number, answer).await,
            Err(error) => {
                tracing::warn!(proxy = %conn.proxy, conn = conn.id, copy = number, "a repeated request failed: {error}")
            }
        }
    }
    chosen
        .expect("answer is within 1..=count")
        .map_err(RepeatError::Upstream)
}

/// Reads an answer the client does not get to its end, so the server has
/// finished it before the next copy goes, holding nothing of it.
async fn discard(conn: &Connection, number: u32, answer: Response<Incoming>) {
    let mut body = answer.into_body();
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > MAX_DISCARDED_BODY {
                    tracing::debug!(proxy = %conn.proxy, conn = conn.id, copy = number, "a discarded answer is longer than 64 MiB; not waiting for its end");
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(proxy = %conn.proxy, conn = conn.id, copy = number, %error, "a discarded answer was cut short");
                return;
            }
        }
    }
}
