//! Replies a Postgres fault sends back to the peer its message came from,
//! slipped in where that peer expects them.
//!
//! Clients pipeline: a reply to the client must not overtake the server's
//! answers to what the client sent before it, or the client pairs answers
//! with the wrong requests. So a reply made on the client's side waits
//! until the client has been given as many ReadyForQuery messages as it had
//! sent sync points (the startup packet, Query, Sync) to the server when the
//! reply was made, and it goes in right after the message that completes
//! them, between two whole messages. While the server waits for the
//! client's data (it asked for a COPY's rows), every answer before that is
//! out, so replies made then are due at once.
//!
//! The two directions of a connection each have a [`PgSide`]; a reply made
//! by one travels to the other, which writes it to its peer. Replies
//! waiting for one peer are bounded ([`REPLY_BUDGET`]): past it, the side
//! making them waits ([`PgSide::replies_move`]) and reads nothing more from
//! its own peer until the other side has written some out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{Semaphore, TryAcquireError, mpsc};

use super::framing::Boundaries;
use super::startup::StartupGate;
use super::{Malformed, PostgresTls};

/// How many bytes of replies may wait for one peer.
pub const REPLY_BUDGET: usize = 256 << 10;

/// What a reply counts for at least, so that many small replies are
/// bounded too (each costs its bookkeeping besides its bytes).
const REPLY_LEAST_COST: usize = 64;

/// What both directions of one `postgres` connection share.
#[derive(Debug, Default)]
struct PgShared {
    /// Set when the connection stops being readable as the protocol
    /// (TLS passed through, a cancel request): only bytes from then on.
    opaque: AtomicBool,
    /// Query and Sync messages written to the server, whole.
    syncs_sent: AtomicU64,
    /// ReadyForQuery messages written to the client.
    readies_delivered: AtomicU64,
    /// The server asked for the client's COPY data (CopyInResponse or
    /// CopyBothResponse written to the client), and the client has not
    /// ended it yet: the server answers nothing more until it does.
    server_waits: AtomicBool,
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

    fn server_waits(&self) -> bool {
        self.server_waits.load(Ordering::Relaxed)
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
    /// What it counts for in the budget of replies waiting for its peer.
    cost: usize,
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
    /// Room for them: permits are bytes, given back as the other side
    /// writes them out.
    budget_out: Arc<Semaphore>,
    /// What the reply that found no room needs.
    wanted: usize,
    /// Replies from the other side, for the peer this side writes to.
    replies_in: mpsc::UnboundedReceiver<Reply>,
    /// The other side's budget for them.
    budget_in: Arc<Semaphore>,
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
        let for_client = Arc::new(Semaphore::new(REPLY_BUDGET));
        let for_server = Arc::new(Semaphore::new(REPLY_BUDGET));
        let upstream = Self {
            shared: shared.clone(),
            gate: Some(StartupGate::new(tls)),
            written: Boundaries::new(true),
            replies_out: to_client,
            budget_out: for_client.clone(),
            wanted: 0,
            replies_in: from_client_side,
            budget_in: for_server.clone(),
            held: None,
            started: false,
        };
        let downstream = Self {
            shared,
            gate: None,
            written: Boundaries::new(false),
            replies_out: to_server,
            budget_out: for_server,
            wanted: 0,
            replies_in: from_server_side,
            budget_in: for_client,
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
        let gated = gate.take(data);
        if gated.opaque {
            self.shared.set_opaque();
        }
        // At most one answer per kind of TLS request: outside the budget.
        if !gated.answer.is_empty() {
            self.send(gated.answer.into(), false, 0);
        }
        if let Some(refused) = gated.refused {
            return Err(refused);
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
        self.written.observe(data, |tag| {
            match (client_side, tag) {
                // The startup packet is answered by a ReadyForQuery too.
                (true, 0 | b'Q' | b'S') => {
                    shared.syncs_sent.fetch_add(1, Ordering::Relaxed);
                }
                // CopyDone, CopyFail: the server answers again.
                (true, b'c' | b'f') => shared.server_waits.store(false, Ordering::Relaxed),
                (false, b'Z') => {
                    shared.server_waits.store(false, Ordering::Relaxed);
                    shared.readies_delivered.fetch_add(1, Ordering::Relaxed);
                }
                // CopyInResponse, CopyBothResponse: the server waits.
                (false, b'G' | b'W') => shared.server_waits.store(true, Ordering::Relaxed),
                _ => {}
            }
            false
        });
    }

    /// Sends `bytes` back to the peer this side reads from, if the replies
    /// already waiting for it leave room; else hands them back, and
    /// [`PgSide::replies_move`] says when to try again.
    pub fn try_reply(&mut self, bytes: Bytes) -> Result<(), Bytes> {
        let cost = bytes.len().clamp(REPLY_LEAST_COST, REPLY_BUDGET);
        match self.budget_out.try_acquire_many(cost as u32) {
            Ok(permit) => {
                permit.forget();
                self.send(bytes, false, cost);
                Ok(())
            }
            Err(TryAcquireError::NoPermits) => {
                self.wanted = cost;
                Err(bytes)
            }
            // The other side writes nothing more: no peer to reply to.
            Err(TryAcquireError::Closed) => Ok(()),
        }
    }

    fn send(&self, bytes: Bytes, close_after: bool, cost: usize) {
        let _ = self.replies_out.send(Reply {
            after_ready: self.due_after(),
            bytes,
            close_after,
            cost,
        });
    }

    /// A fault asked to close. On the client's side the other side closes,
    /// once the replies sent before this are out (returns true); elsewhere
    /// the caller closes now (false).
    pub fn close_after_replies(&self) -> bool {
        if !self.client_side() || self.shared.opaque() {
            return false;
        }
        // One, as the connection ends: outside the budget.
        self.send(Bytes::new(), true, 0);
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

    /// Takes the next reply from the other side to hold, if none is held.
    fn hold_next(&mut self) {
        if self.held.is_none() {
            self.held = self.replies_in.try_recv().ok();
        }
    }

    /// Whether a reply due after `after_ready` ReadyForQuery messages may
    /// go to this side's peer now.
    fn due(&self, after_ready: u64, readies: u64, server_waits: bool) -> bool {
        // Only replies to the client (written on the server's side) wait
        // for the server's answers.
        self.client_side() || after_ready <= readies || server_waits
    }

    /// How much of `data`, about to be written to this side's peer, goes
    /// before the reply held here must: up to the end of the message after
    /// which it is due (0: it is due now), or all of it.
    pub fn before_next_reply(&mut self, data: &[u8]) -> usize {
        if self.shared.opaque() || self.written.lost() {
            return data.len();
        }
        self.hold_next();
        let Some(after_ready) = self.held.as_ref().map(|r| r.after_ready) else {
            return data.len();
        };
        let mut readies = self.shared.readies_delivered();
        let mut server_waits = self.shared.server_waits();
        if self.due(after_ready, readies, server_waits) && self.written.at_boundary() {
            return 0;
        }
        // Where the messages about to be written make it due.
        let mut probe = self.written.clone();
        let client_side = self.client_side();
        probe.observe(data, |tag| {
            if !client_side {
                match tag {
                    b'Z' => {
                        readies += 1;
                        server_waits = false;
                    }
                    b'G' | b'W' => server_waits = true,
                    _ => {}
                }
            }
            self.due(after_ready, readies, server_waits)
        })
    }

    /// The reply for this side's peer whose turn has come, if any: only
    /// between two whole messages written.
    pub fn due_reply(&mut self) -> Option<Reply> {
        if self.written.lost() {
            // A fault made the stream unframed: no place for a reply can be
            // told, so none goes (and none waits for one).
            self.discard_waiting();
            return None;
        }
        self.hold_next();
        let reply = self.held.as_ref()?;
        let due = self.written.at_boundary()
            && self.due(
                reply.after_ready,
                self.shared.readies_delivered(),
                self.shared.server_waits(),
            );
        let reply = due.then(|| self.held.take().expect("checked above"))?;
        // Out of the queue: its room is the other side's again.
        self.budget_in.add_permits(reply.cost);
        Some(reply)
    }

    fn discard_waiting(&mut self) {
        for reply in self
            .held
            .take()
            .into_iter()
            .chain(std::iter::from_fn(|| self.replies_in.try_recv().ok()))
        {
            self.budget_in.add_permits(reply.cost);
        }
    }

    /// Whether [`PgSide::replies_move`] may take in another reply.
    pub fn can_receive(&self) -> bool {
        self.held.is_none()
    }

    /// Waits until the next reply from the other side comes, and holds it
    /// for its turn (with `receive`), or until the reply
    /// [`PgSide::try_reply`] handed back has room (with `room`), or the
    /// other side stopped writing, so that it never will. Waits for nothing
    /// of the other side once it is gone (so is the connection, shortly).
    pub async fn replies_move(&mut self, receive: bool, room: bool) {
        let (held, replies_in) = (&mut self.held, &mut self.replies_in);
        let wanted = self.wanted as u32;
        tokio::select! {
            reply = replies_in.recv(), if receive => match reply {
                Some(reply) => *held = Some(reply),
                None => std::future::pending().await,
            },
            // Only this side takes from this budget: the room seen stays.
            _ = self.budget_out.acquire_many(wanted), if room => {}
            else => std::future::pending().await,
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

    /// This side writes nothing more to its peer: replies for it can no
    /// longer go out, so the other side must not wait for room for them.
    pub fn stop_receiving(&mut self) {
        self.budget_in.close();
        self.discard_waiting();
    }

    /// faultgate ends the session for `reason` (a plugin failed): a FATAL
    /// ErrorResponse for the client, as Postgres ends one.
    pub fn fatal(&mut self, reason: &str) -> FatalNotice {
        if self.shared.opaque() {
            return FatalNotice::CannotTell;
        }
        let notice = error_response("FATAL", "XX000", &format!("faultgate: {reason}"));
        if self.client_side() {
            // One, as the connection ends: outside the budget, due at once.
            let _ = self.replies_out.send(Reply {
                after_ready: 0,
                bytes: notice,
                close_after: true,
                cost: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// Both sides of a session whose startup went to the server and whose
    /// first ReadyForQuery went to the client.
    fn started() -> (PgSide, PgSide) {
        let (mut up, mut down) = PgSide::pair(PostgresTls::Refuse);
        up.wrote(&[0, 0, 0, 8, 0, 3, 0, 0]);
        down.wrote(&message(b'Z', b"I"));
        (up, down)
    }

    #[test]
    fn replies_past_the_budget_are_handed_back_until_some_are_written() {
        let (mut up, mut down) = started();
        let reply = Bytes::from(message(b'N', &[b'x'; 1019]));
        let mut queued = 0;
        while up.try_reply(reply.clone()).is_ok() {
            queued += 1;
            assert!(queued <= REPLY_BUDGET, "no bound");
        }
        assert_eq!(queued, REPLY_BUDGET / 1024);
        // One written out: room for one more, no more.
        assert!(down.due_reply().is_some());
        assert!(up.try_reply(reply.clone()).is_ok());
        assert!(up.try_reply(reply.clone()).is_err());
        // Many tiny replies are bounded too.
        let (mut up, _down) = started();
        let tiny = (0..)
            .take_while(|_| up.try_reply(Bytes::from_static(b"N")).is_ok())
            .count();
        assert_eq!(tiny, REPLY_BUDGET / REPLY_LEAST_COST);
    }

    #[test]
    fn replies_no_longer_wait_for_a_side_that_stopped_writing() {
        let (mut up, mut down) = started();
        let reply = Bytes::from(vec![0; REPLY_BUDGET]);
        assert!(up.try_reply(reply.clone()).is_ok());
        assert!(up.try_reply(reply.clone()).is_err());
        down.stop_receiving();
        assert!(up.try_reply(reply).is_ok(), "discarded, not waiting");
    }

    #[test]
    fn a_reply_goes_right_after_the_ready_for_query_it_waits_for() {
        let (mut up, mut down) = started();
        up.wrote(&message(b'Q', b"SELECT 1\0"));
        up.try_reply(Bytes::from(message(b'N', b"x"))).unwrap();
        let answer = [
            message(b'D', b"row"),
            message(b'C', b"SELECT 1\0"),
            message(b'Z', b"I"),
        ]
        .concat();
        let two = [answer.clone(), answer.clone()].concat();
        assert_eq!(down.before_next_reply(&two), answer.len());
        assert!(down.due_reply().is_none(), "due before the answer is out");
        down.wrote(&answer);
        assert_eq!(down.before_next_reply(&answer), 0);
        assert!(down.due_reply().is_some());
    }

    #[test]
    fn while_the_server_waits_for_copy_data_replies_are_due_at_once() {
        let (mut up, mut down) = started();
        up.wrote(&message(b'Q', b"COPY t FROM STDIN\0"));
        down.wrote(&message(b'G', &[0, 0, 0]));
        up.wrote(&message(b'd', b"1\n"));
        up.try_reply(Bytes::from(message(b'N', b"x"))).unwrap();
        assert!(down.due_reply().is_some(), "waits for the COPY to end");
        // Once the client ended the COPY, the server answers first again.
        up.wrote(&message(b'c', b""));
        up.try_reply(Bytes::from(message(b'N', b"y"))).unwrap();
        assert!(down.due_reply().is_none());
        down.wrote(&[message(b'C', b"COPY 1\0"), message(b'Z', b"I")].concat());
        assert!(down.due_reply().is_some());
    }
}
