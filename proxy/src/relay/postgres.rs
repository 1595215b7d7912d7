//! The Postgres wire protocol, as much of it as a proxy in `postgres` mode
//! needs: where messages start and end, and the startup handshake.
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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Postgres's own limit on one message (`PQ_LARGE_MESSAGE_LIMIT`-like: a
/// message can carry up to 1 GB of data).
const MAX_MESSAGE: usize = (1 << 30) + 64;

/// The longest startup packet Postgres accepts.
const MAX_STARTUP: usize = 10_000;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

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

/// What both directions of one `postgres` connection share.
#[derive(Debug, Default)]
pub struct PgShared {
    /// Set when the connection stops being readable as the protocol
    /// (TLS passed through, a cancel request): only bytes from then on.
    opaque: AtomicBool,
    /// Query and Sync messages written to the server.
    syncs_sent: AtomicU64,
    /// ReadyForQuery messages written to the client.
    readies_delivered: AtomicU64,
}

impl PgShared {
    pub fn opaque(&self) -> bool {
        self.opaque.load(Ordering::Relaxed)
    }

    pub fn syncs_sent(&self) -> u64 {
        self.syncs_sent.load(Ordering::Relaxed)
    }

    pub fn sync_sent(&self) {
        self.syncs_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn readies_delivered(&self) -> u64 {
        self.readies_delivered.load(Ordering::Relaxed)
    }

    pub fn ready_delivered(&self) {
        self.readies_delivered.fetch_add(1, Ordering::Relaxed);
    }

    fn set_opaque(&self) {
        self.opaque.store(true, Ordering::Relaxed);
    }
}

/// The client side of the startup handshake, ahead of every fault.
pub struct StartupGate {
    tls: PostgresTls,
    buffer: BytesMut,
    done: bool,
}

/// What the gate made of bytes from the client.
#[derive(Debug, Default)]
pub struct Gated {
    /// Pass these on, as read.
    pub forward: Option<Bytes>,
    /// Send these bytes back to the client.
    pub answer: Vec<u8>,
}

impl StartupGate {
    pub fn new(tls: PostgresTls) -> Self {
        Self {
            tls,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// Takes bytes from the client. Until the StartupMessage (or a cancel
    /// request) has gone by, packets are collected whole and TLS requests
    /// are answered here; after, bytes pass untouched.
    pub fn take(&mut self, data: Bytes, shared: &PgShared) -> Result<Gated, Malformed> {
        if self.done {
            return Ok(Gated {
                forward: Some(data),
                answer: Vec::new(),
            });
        }
        self.buffer.extend_from_slice(&data);
        let mut gated = Gated::default();
        while self.buffer.len() >= 8 {
            let len = u32::from_be_bytes(self.buffer[..4].try_into().unwrap()) as usize;
            if !(8..=MAX_STARTUP).contains(&len) {
                return Err(Malformed(format!(
                    "startup packet of {len} bytes from the client (expected 8 to {MAX_STARTUP})"
                )));
            }
            if self.buffer.len() < len {
                break;
            }
            let code = u32::from_be_bytes(self.buffer[4..8].try_into().unwrap());
            match code {
                SSL_REQUEST | GSSENC_REQUEST if self.tls == PostgresTls::Refuse => {
                    self.buffer.advance(len);
                    gated.answer.push(b'N');
                }
                SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
                    shared.set_opaque();
                    return Ok(self.finish(gated));
                }
                code if code >> 16 == 3 => return Ok(self.finish(gated)),
                code => {
                    return Err(Malformed(format!(
                        "startup packet with protocol {}.{} from the client (faultgate speaks 3.x)",
                        code >> 16,
                        code & 0xffff
                    )));
                }
            }
        }
        Ok(gated)
    }

    fn finish(&mut self, mut gated: Gated) -> Gated {
        self.done = true;
        gated.forward = Some(std::mem::take(&mut self.buffer).freeze());
        gated
    }
}

/// Follows message boundaries in bytes as they are written, so that replies
/// are slipped in only between two messages.
pub struct Boundaries {
    /// The next message is an untyped startup packet (client side).
    untyped_next: bool,
    header: [u8; 5],
    have: usize,
    remaining: usize,
    lost: bool,
}

impl Boundaries {
    /// `client_side`: the bytes are the client's, which start untyped.
    pub fn new(client_side: bool) -> Self {
        Self {
            untyped_next: client_side,
            header: [0; 5],
            have: 0,
            remaining: 0,
            lost: false,
        }
    }

    pub fn at_boundary(&self) -> bool {
        !self.lost && self.have == 0 && self.remaining == 0
    }

    /// Follows `data`; calls `started` with the type byte of every message
    /// whose header it completes (0 for the startup packet).
    pub fn observe(&mut self, mut data: &[u8], mut started: impl FnMut(u8)) {
        while !data.is_empty() && !self.lost {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            // A startup packet's length begins with a zero byte; a typed
            // message begins with a letter.
            if self.have == 0 && self.untyped_next && data[0] != 0 {
                self.untyped_next = false;
            }
            let size = if self.untyped_next { 4 } else { 5 };
            let n = (size - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == size {
                let at = size - 4;
                let len = u32::from_be_bytes(self.header[at..at + 4].try_into().unwrap()) as usize;
                // A fault rewrote the stream into something unframed: stop
                // slipping replies in rather than guess.
                self.lost = len < 4;
                self.remaining = len.saturating_sub(4);
                self.have = 0;
                if !self.lost {
                    started(if size == 5 { self.header[0] } else { 0 });
                }
                self.untyped_next = false;
            }
        }
    }
}

/// Collects whole messages for a Postgres fault, from pieces of any size.
pub struct Framer {
    untyped_next: bool,
    buffer: BytesMut,
    arrived: Option<Instant>,
}

/// One whole message.
#[derive(Debug)]
pub struct Framed {
    /// The type byte; 0 for the startup packet.
    pub tag: u8,
    pub bytes: Bytes,
    /// When its last byte arrived.
    pub arrived: Instant,
}

impl Framer {
    /// `client_side`: the messages are the client's, whose first may be the
    /// untyped startup packet.
    pub fn new(client_side: bool) -> Self {
        Self {
            untyped_next: client_side,
            buffer: BytesMut::new(),
            arrived: None,
        }
    }

    pub fn push(&mut self, piece: &[u8], arrived: Instant) {
        self.buffer.extend_from_slice(piece);
        self.arrived = Some(arrived);
    }

    /// The next whole message, if one is in.
    pub fn pop(&mut self) -> Result<Option<Framed>, Malformed> {
        // A fault attached to a running session gets typed messages only;
        // a startup packet's length begins with a zero byte, a type never.
        if self.untyped_next && self.buffer.first().is_some_and(|b| *b != 0) {
            self.untyped_next = false;
        }
        let header = if self.untyped_next { 4 } else { 5 };
        if self.buffer.len() < header {
            return Ok(None);
        }
        let at = header - 4;
        let len = u32::from_be_bytes(self.buffer[at..at + 4].try_into().unwrap()) as usize;
        if !(4..=MAX_MESSAGE).contains(&len) {
            let tag = if self.untyped_next {
                "the startup packet".to_owned()
            } else {
                format!("message {:?}", char::from(self.buffer[0]))
            };
            return Err(Malformed(format!("{tag} claims a length of {len}")));
        }
        let total = len + at;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let tag = if self.untyped_next { 0 } else { self.buffer[0] };
        self.untyped_next = false;
        Ok(Some(Framed {
            tag,
            bytes: self.buffer.split_to(total).freeze(),
            arrived: self.arrived.unwrap_or_else(Instant::now),
        }))
    }

    /// What is left: a message not yet whole.
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buffer).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn framer_reassembles_messages_cut_anywhere() {
        let mut stream = Vec::new();
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        stream.extend_from_slice(&startup);
        stream.extend(typed(b'Q', b"SELECT 1\0"));
        stream.extend(typed(b'X', b""));
        for cut in 1..stream.len() {
            let mut framer = Framer::new(true);
            let mut seen = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                framer.push(piece, Instant::now());
                while let Some(m) = framer.pop().unwrap() {
                    seen.push((m.tag, m.bytes.len()));
                }
            }
            assert_eq!(seen, [(0, 8), (b'Q', 14), (b'X', 5)], "cut at {cut}");
        }
    }

    #[test]
    fn framer_refuses_impossible_lengths() {
        let mut framer = Framer::new(false);
        framer.push(&[b'Q', 0, 0, 0, 2], Instant::now());
        assert!(framer.pop().unwrap_err().0.contains("length of 2"));
    }

    #[test]
    fn boundaries_follow_messages_across_writes() {
        let mut b = Boundaries::new(false);
        let m = typed(b'D', b"abcdef");
        let mut tags = Vec::new();
        b.observe(&m[..3], |t| tags.push(t));
        assert!(!b.at_boundary());
        b.observe(&m[3..], |t| tags.push(t));
        assert!(b.at_boundary());
        assert_eq!(tags, b"D");
    }

    #[test]
    fn gate_answers_tls_requests_and_passes_the_startup() {
        let shared = PgShared::default();
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let gated = gate
            .take(Bytes::copy_from_slice(&ssl[..5]), &shared)
            .unwrap();
        assert!(gated.forward.is_none() && gated.answer.is_empty());
        let gated = gate
            .take(Bytes::copy_from_slice(&ssl[5..]), &shared)
            .unwrap();
        assert_eq!(gated.answer, b"N");
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        let gated = gate
            .take(Bytes::copy_from_slice(&startup), &shared)
            .unwrap();
        assert_eq!(gated.forward.unwrap(), &startup[..]);
        assert!(!shared.opaque());

        let mut passthrough = StartupGate::new(PostgresTls::Passthrough);
        let gated = passthrough
            .take(Bytes::copy_from_slice(&ssl), &shared)
            .unwrap();
        assert_eq!(gated.forward.unwrap(), &ssl[..]);
        assert!(shared.opaque());
    }

    #[test]
    fn gate_refuses_garbage() {
        let mut gate = StartupGate::new(PostgresTls::Refuse);
        let err = gate
            .take(
                Bytes::from_static(b"GET / HTTP/1.1\r\n"),
                &PgShared::default(),
            )
            .unwrap_err();
        assert!(err.0.contains("startup packet"), "{err}");
    }
}
