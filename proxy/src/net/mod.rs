//! The network under the relay and the HTTP layer: byte streams to peers
//! (plain TCP or TLS), dialing an upstream, and the adapter that lets hyper
//! drive such a stream.
//!
//! Nothing here knows about faults or proxies; both the data path
//! ([`crate::relay`], [`crate::http`]) and the scenario runner's client use
//! these pieces as they are.

mod hyper_io;
mod stream;
mod upstream;

pub use hyper_io::DialedIo;
pub use stream::{Ending, Endpoint, Source, Stream, StreamReader, StreamWriter};
pub use upstream::{CONNECT_TIMEOUT, DialError, Upstream, UpstreamError};

/// An error and its causes, outermost first: hyper's own messages are terse
/// ("client error (Connect)"), the cause says what happened.
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
