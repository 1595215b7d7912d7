//! Replies a Postgres fault sends back to the peer its message came from,
//! slipped in where that peer expects them.
//!
//! Clients pipeline: a reply to the client must not overtake the server's
//! answers to what the client sent before it, or the client pairs answers
//! with the wrong requests. So a reply made on the client's side waits
//! until the client has been given as many ReadyForQuery messages as it had
//! sent sync points (the startup packet, Query, Sync) to the server when the
//! reply was made, and it is written only between two whole messages.
//!
//! The two directions of a connection each have a [`PgSide`]; a reply made
//! by one travels to the other, which writes it to its peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::framing::Boundaries;
use super::startup::StartupGate;
use super::{Malformed, PostgresTls};

/// What both directions of one `postgres` connection share.
#[derive(Debug, Default)]
struct PgShared {
    /// Set when the connection stops being readable as the protocol
    /// (TLS passed through, a cancel request): only bytes from then on.
    opaque: AtomicBool,
    /// Query and Sync messages written to the server.
    syncs_sent: AtomicU64,
    /// ReadyForQuery messages written to the client.
    readies_delivered: AtomicU64,
}

impl PgShared {
    fn opaque(&self) -> bool {
        self.opaque.load(Ordering::Relaxed)
    }

    fn set_opaque(&self) {
        self.opaque.store(true, Ordering::Relaxed);
    }

    fn syncs_sent(&self) -> u64 {
        self.syncs_sent.load(Ordering::Relaxed)
    }

    fn readies_delivered(&self) -> u64 {
        self.readies_delivered.load(Ordering::Relaxed)
    }
}

/// Bytes a fault sends back to the peer its message came from.
pub struct Reply {
    /// Due once the client has been given this many ReadyForQuery messages.
    after_ready: u64,
    pub bytes: Bytes,
    /// End the connection (FIN) once this reply is out: a fault that
    /// answers and closes wants its answer seen in its turn.
    pub close_after: bool,
}

/// How the client is told that faultgate ends its session.
pub enum FatalNotice {
    /// Write this ErrorResponse to the client, then close.
    Write(Bytes),
    /// The other side writes it, then closes.
    HandedOver,
    /// The client cannot be told (a message to it is half-written, or the
    /// connection is opaque): close.
    CannotTell,
}

/// One direction of a `postgres` connection, as the protocol sees it.
pub struct PgSide {
    shared: Arc<PgShared>,
    /// The client's side only: the startup handshake, ahead of every fault.
    gate: Option<StartupGate>,
    /// Message boundaries of what this side has written.
    written: Boundaries,
    /// Replies for the peer this side reads from, sent to the other side.
    replies_out: mpsc::UnboundedSender<Reply>,
    /// Replies from the other side, for the peer this side writes to.
    replies_in: mpsc::UnboundedReceiver<Reply>,
    /// The next reply, waiting for its turn.
    held: Option<Reply>,
    /// Whether the startup handshake is over for this direction (the
    /// client's StartupMessage passed the gate; the server spoke). Postgres
    /// faults join a session only then: a real Postgres answers a TLS
    /// request before it sends any error, and clients rely on it.
    started: bool,
}

impl PgSide {
    /// The two directions of one connection, wired to each other: the
    /// client's side (upstream) first.
    pub fn pair(tls: PostgresTls) -> (Self, Self) {
        let shared = Arc::new(PgShared::default());
        let (to_client, from_server_side) = mpsc::unbounded_channel();
        let (to_server, from_client_side) = mpsc::unbounded_channel();
        let upstream = Self {
            shared: shared.clone(),
            gate: Some(StartupGate::new(tls)),
            written: Boundaries::new(true),
            replies_out: to_client,
            replies_in: from_client_side,
            held: None,
            started: false,
        };
        let downstream = Self {
            shared,
            gate: None,
            written: Boundaries::new(false),
            replies_out: to_server,
            replies_in: from_server_side,
            held: None,
            started: false,
        };
        (upstream, downstream)
    }

    fn client_side(&self) -> bool {
        self.gate.is_some()
    }

    /// Takes bytes read from this side's peer. The client's bytes pass the
    /// startup gate first, where TLS requests are answered. Returns what
    /// goes on to the faults.
    pub fn admit(&mut self, data: Bytes) -> Result<Option<Bytes>, Malformed> {
        let Some(gate) = &mut self.gate else {
            return Ok(Some(data));
        };
        let gated = gate.take(data)?;
        if gated.opaque {
            self.shared.set_opaque();
        }
        if !gated.answer.is_empty() {
            self.reply(gated.answer.into());
        }
        Ok(gated.forward.filter(|f| !f.is_empty()))
    }

    /// Whether the data just admitted is the first after the startup
    /// handshake on this direction, so that Postgres faults join now. A
    /// session relayed opaquely (TLS passed through) never starts.
    pub fn session_starts(&mut self) -> bool {
        if self.started || self.shared.opaque() {
            return false;
        }
        self.started = true;
        true
    }

    /// Whether Postgres faults run on this direction now.
    pub fn running(&self) -> bool {
        self.started
    }

    /// Whether the connection is no longer readable as the protocol.
    pub fn opaque(&self) -> bool {
        self.shared.opaque()
    }

    /// Follows what this side writes to its peer, counting the sync points
    /// the server was sent and the ReadyForQuery messages the client was.
    pub fn wrote(&mut self, data: &[u8]) {
        if self.shared.opaque() {
            return;
        }
        let (client_side, shared) = (self.client_side(), &self.shared);
        self.written.observe(data, |tag| match (client_side, tag) {
            // The startup packet is answered by a ReadyForQuery too.
            (true, 0 | b'Q' | b'S') => {
                shared.syncs_sent.fetch_add(1, Ordering::Relaxed);
            }
            (false, b'Z') => {
                shared.readies_delivered.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        });
    }

    /// Sends `bytes` back to the peer this side reads from.
    pub fn reply(&self, bytes: Bytes) {
        let _ = self.replies_out.send(Reply {
            after_ready: self.due_after(),
            bytes,
            close_after: false,
        });
    }

    /// A fault asked to close. On the client's side the other side closes,
    /// once the replies sent before this are out (returns true); elsewhere
    /// the caller closes now (false).
    pub fn close_after_replies(&self) -> bool {
        if !self.client_side() || self.shared.opaque() {
            return false;
        }
        let _ = self.replies_out.send(Reply {
            after_ready: self.due_after(),
            bytes: Bytes::new(),
            close_after: true,
        });
        true
    }

    /// Replies to the client wait for the server's answers to the sync
    /// points already sent; replies to the server wait for nothing.
    fn due_after(&self) -> u64 {
        if self.client_side() {
            self.shared.syncs_sent()
        } else {
            0
        }
    }

    /// The reply for this side's peer whose turn has come, if any.
    /// `between_messages`: the caller has nothing half-written.
    pub fn due_reply(&mut self, between_messages: bool) -> Option<Reply> {
        if self.held.is_none() {
            self.held = self.replies_in.try_recv().ok();
        }
        let reply = self.held.as_ref()?;
        // Only replies to the client (written on the server's side) wait
        // for the server's answers.
        let ready = if self.client_side() {
            u64::MAX
        } else {
            self.shared.readies_delivered()
        };
        let due = between_messages && self.written.at_boundary() && reply.after_ready <= ready;
        due.then(|| self.held.take().expect("checked above"))
    }

    /// Whether [`PgSide::receive`] has room for another reply.
    pub fn can_receive(&self) -> bool {
        self.held.is_none()
    }

    /// Waits for the next reply from the other side and holds it for its
    /// turn. Never returns once the other side is gone (so is the
    /// connection, shortly).
    pub async fn receive(&mut self) {
        match self.replies_in.recv().await {
            Some(reply) => self.held = Some(reply),
            None => std::future::pending().await,
        }
    }

    /// Every reply still waiting for this side's peer, for a last write
    /// before the connection closes.
    pub fn take_waiting(&mut self) -> Vec<Bytes> {
        let mut replies: Vec<Bytes> = self.held.take().map(|r| r.bytes).into_iter().collect();
        while let Ok(reply) = self.replies_in.try_recv() {
            replies.push(reply.bytes);
        }
        replies
    }

    /// faultgate ends the session for `reason` (a plugin failed): a FATAL
    /// ErrorResponse for the client, as Postgres ends one.
    pub fn fatal(&mut self, reason: &str) -> FatalNotice {
        if self.shared.opaque() {
            return FatalNotice::CannotTell;
        }
        let notice = error_response("FATAL", "XX000", &format!("faultgate: {reason}"));
        if self.client_side() {
            let _ = self.replies_out.send(Reply {
                after_ready: 0,
                bytes: notice,
                close_after: true,
            });
            FatalNotice::HandedOver
        } else if self.written.at_boundary() {
            FatalNotice::Write(notice)
        } else {
            FatalNotice::CannotTell
        }
    }
}

/// An ErrorResponse message: `severity` (FATAL, ERROR), the SQLSTATE
/// `code`, and the message.
fn error_response(severity: &str, code: &str, message: &str) -> Bytes {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.push(field);
        // A NUL would end the field early.
        body.extend(value.bytes().filter(|b| *b != 0));
        body.push(0);
    }
    body.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&body);
    message.into()
}
