//! Where messages start and end: whole messages for a Postgres fault, and
//! message boundaries in what a pump writes.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::Malformed;

/// Postgres's own limit on one message (`PQ_LARGE_MESSAGE_LIMIT`-like: a
/// message can carry up to 1 GB of data).
const MAX_MESSAGE: usize = (1 << 30) + 64;

/// Follows message boundaries in bytes as they are written, so that replies
/// are slipped in only between two messages.
pub(super) struct Boundaries {
    /// The next message is an untyped startup packet (client side).
    untyped_next: bool,
    header: [u8; 5],
    have: usize,
    remaining: usize,
    lost: bool,
}

impl Boundaries {
    /// `client_side`: the bytes are the client's, which start untyped.
    pub(super) fn new(client_side: bool) -> Self {
        Self {
            untyped_next: client_side,
            header: [0; 5],
            have: 0,
            remaining: 0,
            lost: false,
        }
    }

    pub(super) fn at_boundary(&self) -> bool {
        !self.lost && self.have == 0 && self.remaining == 0
    }

    /// Follows `data`; calls `started` with the type byte of every message
    /// whose header it completes (0 for the startup packet).
    pub(super) fn observe(&mut self, mut data: &[u8], mut started: impl FnMut(u8)) {
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
}
