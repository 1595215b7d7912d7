//! What a plugin writes to its standard output and error, as log lines.
//!
//! A language runtime inside a plugin (Python's, JavaScript's, C's libc)
//! tells why it failed on its standard error: an uncaught exception's
//! traceback, an abort's message. Without this it went nowhere, and the log
//! said only that the instance trapped. Each complete line becomes one log
//! line tagged with the plugin and the toxic (stderr at `warn`, stdout at
//! `info`); a line longer than [`MAX_LINE`] bytes is cut there, so what a
//! plugin writes never holds more than one line's worth of host memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The longest line kept whole; the rest of a longer one is dropped.
const MAX_LINE: usize = 4096;

#[derive(Clone, Copy)]
pub(super) enum Channel {
    Stdout,
    Stderr,
}

/// One of an instance's two output streams. Clones share the line being
/// assembled, as WASI hands out a fresh stream per `get-stderr` call.
#[derive(Clone)]
pub(super) struct GuestOutput {
    channel: Channel,
    plugin: Arc<str>,
    toxic: Arc<str>,
    line: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    pub(super) fn new(channel: Channel, plugin: Arc<str>, toxic: Arc<str>) -> Self {
        Self {
            channel,
            plugin,
            toxic,
            line: Arc::default(),
        }
    }

    fn take(&self, bytes: &[u8]) {
        let mut line = self.line.lock().unwrap();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let room = MAX_LINE.saturating_sub(line.len());
            let (text, ended) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            line.extend_from_slice(&text[..text.len().min(room)]);
            if ended {
                self.emit(&line);
                line.clear();
            }
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let (plugin, toxic) = (&*self.plugin, &*self.toxic);
        match self.channel {
            Channel::Stderr => tracing::warn!(plugin, toxic, "plugin stderr: {text}"),
            Channel::Stdout => tracing::info!(plugin, toxic, "plugin stdout: {text}"),
        }
    }
}

impl Drop for GuestOutput {
    /// The last clone gone: a line with no newline yet is still told.
    fn drop(&mut self) {
        if Arc::strong_count(&self.line) == 1 {
            let line = std::mem::take(&mut *self.line.lock().unwrap());
            if !line.is_empty() {
                self.emit(&line);
            }
        }
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
