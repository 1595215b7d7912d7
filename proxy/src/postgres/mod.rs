//! The Postgres wire protocol, as much of it as a proxy in `postgres` mode
//! needs: where messages start and end ([`framing`]), how long Postgres lets
//! them be ([`limits`]), the startup handshake ([`startup`]), and slipping a
//! fault's replies in between the server's answers in the order the client
//! expects ([`replies`]).
//!
//! A session starts with untyped packets from the client (Int32 length,
//! Int32 code): an SSLRequest or GSSENCRequest, answered with one byte; a
//! CancelRequest, alone on its connection; then the StartupMessage. After
//! that every message in either direction is a type byte, an Int32 length
//! (counting itself) and a body.
//!
//! faultgate answers TLS requests itself with 'N' (so the session stays in
//! plain text and Postgres faults can see it), unless the proxy's
//! `postgres_tls` is `passthrough`: then such a connection is relayed
//! opaquely, and only byte-level faults apply to it.

mod framing;
mod limits;
mod replies;
mod startup;

pub use framing::{Framed, Framer, STREAM_ABOVE};
pub use replies::{FatalNotice, PgSide, REPLY_BUDGET, Reply};

use serde::{Deserialize, Serialize};

/// What a `postgres` proxy does when a client asks for TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostgresTls {
    /// Answer 'N' (no TLS): the session goes on in plain text, visible to
    /// Postgres faults. Clients with `sslmode=require` give up.
    #[default]
    Refuse,
    /// Pass the request to the server; the connection is then relayed as
    /// opaque bytes, whatever the server answers.
    Passthrough,
}

/// A message that breaks the protocol's framing.
#[derive(Debug, thiserror::Error)]
#[error("malformed Postgres message: {0}")]
pub struct Malformed(pub String);
