//! What a plugin writes to its standard output and error, as log lines.
//!
//! A language runtime inside a plugin (Python's, JavaScript's, C's libc)
//! tells why it failed on its standard error: an uncaught exception's
//! traceback, an abort's message. Without this it went nowhere, and the log
//! said only that the instance trapped. Each complete line becomes one log
//! line tagged with the plugin and the toxic (stderr at `warn`, stdout at
//! `info`).
//!
//! Both are bounded: a line longer than [`MAX_LINE`] bytes is cut there, so
//! what a plugin writes never holds more than one line's worth of host
//! memory; and a stream logs at most [`BURST`] lines at once and
//! [`LINES_PER_SECOND`] after that, so a plugin that prints for every chunk
//! cannot flood the log. Lines past the rate are counted, and the count is
//! logged with the next line that may be.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The longest line kept whole; the rest of a longer one is dropped.
const MAX_LINE: usize = 4096;

/// Lines a stream may log at once, before the rate applies.
const BURST: f64 = 100.0;

/// Lines a stream may log per second, after the burst.
const LINES_PER_SECOND: f64 = 10.0;

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
    lines: Arc<Mutex<Lines>>,
}

/// Bytes made into lines, at a bounded rate.
struct Lines {
    /// The line being assembled.
    line: Vec<u8>,
    /// Lines that may be logged now (a token bucket of [`BURST`]).
    allowance: f64,
    refilled: Instant,
    /// Lines dropped since the last one logged.
    dropped: u64,
}

impl Lines {
    fn new(now: Instant) -> Self {
        Self {
            line: Vec::new(),
            allowance: BURST,
            refilled: now,
            dropped: 0,
        }
    }

    /// Takes `bytes` written at `now`; the lines to log.
    fn take(&mut self, bytes: &[u8], now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let room = MAX_LINE.saturating_sub(self.line.len());
            let (text, ended) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            self.line.extend_from_slice(&text[..text.len().min(room)]);
            if ended {
                self.finish(now, &mut out);
            }
        }
        out
    }

    /// Ends the line being assembled: logged if the rate allows, else
    /// counted.
    fn finish(&mut self, now: Instant, out: &mut Vec<String>) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.allowance = (self.allowance + elapsed * LINES_PER_SECOND).min(BURST);
        self.refilled = now;
        if self.allowance >= 1.0 {
            self.allowance -= 1.0;
            let mut text = String::from_utf8_lossy(&self.line).into_owned();
            if self.dropped > 0 {
                text = format!(
                    "{text} ({} lines before this one not logged: more than {LINES_PER_SECOND} a second)",
                    self.dropped
                );
                self.dropped = 0;
            }
            out.push(text);
        } else {
            self.dropped += 1;
        }
        self.line.clear();
    }
}

impl GuestOutput {
    pub(super) fn new(channel: Channel, plugin: Arc<str>, toxic: Arc<str>) -> Self {
        Self {
            channel,
            plugin,
            toxic,
            lines: Arc::new(Mutex::new(Lines::new(Instant::now()))),
        }
    }

    fn take(&self, bytes: &[u8]) {
        let lines = self.lines.lock().unwrap().take(bytes, Instant::now());
        for line in lines {
            self.emit(&line);
        }
    }

    fn emit(&self, text: &str) {
        let (plugin, toxic) = (&*self.plugin, &*self.toxic);
        match self.channel {
            Channel::Stderr => tracing::warn!(plugin, toxic, "plugin stderr: {text}"),
            Channel::Stdout => tracing::info!(plugin, toxic, "plugin stdout: {text}"),
        }
    }
}

impl Drop for GuestOutput {
    /// The last clone gone: a line with no newline yet is still told (its
    /// trap's last words, often), and so are lines dropped before it.
    fn drop(&mut self) {
        if Arc::strong_count(&self.lines) == 1 {
            let mut lines = self.lines.lock().unwrap();
            if !lines.line.is_empty() || lines.dropped > 0 {
                let mut out = Vec::new();
                lines.allowance = lines.allowance.max(1.0);
                lines.finish(Instant::now(), &mut out);
                drop(lines);
                for line in out {
                    self.emit(&line);
                }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_are_cut_at_the_longest_kept_and_split_across_writes_are_joined() {
        let now = Instant::now();
        let mut lines = Lines::new(now);
        assert!(lines.take(b"half a ", now).is_empty());
        assert_eq!(lines.take(b"line\nnext\n", now), ["half a line", "next"]);
        let long = vec![b'x'; MAX_LINE * 3];
        let out = lines.take(&[long.as_slice(), b"\n"].concat(), now);
        assert_eq!(out[0].len(), MAX_LINE);
    }

    #[test]
    fn a_flood_of_lines_is_logged_at_the_bounded_rate_and_the_rest_counted() {
        let start = Instant::now();
        let mut lines = Lines::new(start);
        let flood = "a line\n".repeat(10_000);
        let logged = lines.take(flood.as_bytes(), start);
        assert_eq!(logged.len(), BURST as usize);
        // A second later, the rate's worth again; the first says how many
        // were not logged.
        let later = lines.take(flood.as_bytes(), start + Duration::from_secs(1));
        assert_eq!(later.len(), LINES_PER_SECOND as usize);
        assert!(
            later[0].ends_with("(9900 lines before this one not logged: more than 10 a second)"),
            "{}",
            later[0]
        );
        assert_eq!(later[1], "a line");
    }
}
