//! Where messages start and end: whole messages for a Postgres fault (or,
//! for one too large to hold, its head and then its bytes as they come),
//! within Postgres's own limits, and message boundaries in what a pump
//! writes.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{Malformed, limits};

/// The longest message a fault is given whole (type byte, length word and
/// body). A longer one streams past: the fault is told its type and length,
/// never its bytes, and its steps apply to the bytes as they go by, so that
/// faultgate holds at most this much of one message per fault.
pub const STREAM_ABOVE: usize = 1 << 20;

/// Follows message boundaries in bytes as they are written, so that replies
/// are slipped in only between two messages.
#[derive(Clone)]
pub(super) struct Boundaries {
    /// The next message is an untyped startup packet (client side).
    untyped_next: bool,
    header: [u8; 5],
    have: usize,
    /// The type byte of the message under way (0 for the startup packet).
    tag: u8,
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
            tag: 0,
            remaining: 0,
            lost: false,
        }
    }

    pub(super) fn at_boundary(&self) -> bool {
        !self.lost && self.have == 0 && self.remaining == 0
    }

    /// Whether a fault rewrote the stream into something unframed, so that
    /// no boundary can be told any more.
    pub(super) fn lost(&self) -> bool {
        self.lost
    }

    /// Follows `data`; calls `ended` with the type byte of every message
    /// whose last byte it passes (0 for the startup packet). Stops right
    /// after a message for which `ended` returns true; returns how much of
    /// `data` it followed.
    pub(super) fn observe(&mut self, data: &[u8], mut ended: impl FnMut(u8) -> bool) -> usize {
        let mut at = 0;
        while at < data.len() && !self.lost {
            if self.remaining == 0 {
                // A startup packet's length begins with a zero byte; a typed
                // message begins with a letter.
                if self.have == 0 && self.untyped_next && data[at] != 0 {
                    self.untyped_next = false;
                }
                let size = if self.untyped_next { 4 } else { 5 };
                let n = (size - self.have).min(data.len() - at);
                self.header[self.have..self.have + n].copy_from_slice(&data[at..at + n]);
                self.have += n;
                at += n;
                if self.have < size {
                    break;
                }
                let from = size - 4;
                let len =
                    u32::from_be_bytes(self.header[from..from + 4].try_into().unwrap()) as usize;
                // A fault rewrote the stream into something unframed: stop
                // slipping replies in rather than guess.
                self.lost = len < 4;
                self.tag = if size == 5 { self.header[0] } else { 0 };
                self.remaining = len.saturating_sub(4);
                self.have = 0;
                self.untyped_next = false;
                if self.lost {
                    break;
                }
            } else {
                let n = self.remaining.min(data.len() - at);
                self.remaining -= n;
                at += n;
            }
            if self.remaining == 0 && ended(self.tag) {
                break;
            }
        }
        at
    }
}

/// Collects messages for a Postgres fault, from pieces of any size: whole
/// ones up to [`STREAM_ABOVE`], longer ones as a head and then pieces.
pub struct Framer {
    client_side: bool,
    untyped_next: bool,
    buffer: BytesMut,
    arrived: Option<Instant>,
    /// Bytes still to come of a message that streams past.
    streaming: usize,
}

/// What a Postgres fault is given next.
#[derive(Debug)]
pub enum Framed {
    /// One whole message.
    Whole {
        /// The type byte; 0 for the startup packet.
        tag: u8,
        bytes: Bytes,
        /// When its last byte arrived.
        arrived: Instant,
    },
    /// The head of a message longer than [`STREAM_ABOVE`]: its bytes,
    /// header included, follow as [`Framed::Piece`]s.
    Head {
        tag: u8,
        /// The whole message's length: type byte, length word and body.
        len: u32,
        /// When its header arrived.
        arrived: Instant,
    },
    /// The next bytes of the message that streams past.
    Piece {
        bytes: Bytes,
        /// This piece ends the message.
        last: bool,
        arrived: Instant,
    },
}

impl Framer {
    /// `client_side`: the messages are the client's, whose first may be the
    /// untyped startup packet.
    pub fn new(client_side: bool) -> Self {
        Self {
            client_side,
            untyped_next: client_side,
            buffer: BytesMut::new(),
            arrived: None,
            streaming: 0,
        }
    }

    pub fn push(&mut self, piece: &[u8], arrived: Instant) {
        self.buffer.extend_from_slice(piece);
        self.arrived = Some(arrived);
    }

    /// What comes next for the fault, if it is in: a whole message, the
    /// head of one too long to hold, or a piece of that one. A length past
    /// Postgres's limit for the message is refused at its header.
    pub fn pop(&mut self) -> Result<Option<Framed>, Malformed> {
        let arrived = self.arrived.unwrap_or_else(Instant::now);
        if self.streaming > 0 {
            if self.buffer.is_empty() {
                return Ok(None);
            }
            let n = self.streaming.min(self.buffer.len());
            self.streaming -= n;
            return Ok(Some(Framed::Piece {
                bytes: self.buffer.split_to(n).freeze(),
                last: self.streaming == 0,
                arrived,
            }));
        }
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
        self.check(len)?;
        let tag = if self.untyped_next { 0 } else { self.buffer[0] };
        let total = len + at;
        if total > STREAM_ABOVE {
            self.untyped_next = false;
            self.streaming = total;
            return Ok(Some(Framed::Head {
                tag,
                // At most the server's limit plus the type byte: in range.
                len: total as u32,
                arrived,
            }));
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        self.untyped_next = false;
        Ok(Some(Framed::Whole {
            tag,
            bytes: self.buffer.split_to(total).freeze(),
            arrived,
        }))
    }

    /// Refuses a length word Postgres would refuse, naming the message and
    /// the limit.
    fn check(&self, len: usize) -> Result<(), Malformed> {
        let side = if self.client_side {
            "the client"
        } else {
            "the server"
        };
        let (least, most, what) = if self.untyped_next {
            (
                limits::MIN_STARTUP_PACKET,
                limits::MAX_STARTUP_PACKET,
                "the startup packet".to_owned(),
            )
        } else {
            let tag = char::from(self.buffer[0]);
            let (most, name) = if self.client_side {
                limits::from_client(self.buffer[0])
            } else {
                (limits::from_server(), "")
            };
            let what = if name.is_empty() {
                format!("message {tag:?}")
            } else {
                format!("message {tag:?} ({name})")
            };
            (4, most, what)
        };
        if len < least {
            return Err(Malformed(format!(
                "{what} from {side} claims a length of {len}"
            )));
        }
        if len > most {
            return Err(Malformed(format!(
                "{what} from {side} claims a length of {len}, over Postgres's limit of {most} for it"
            )));
        }
        Ok(())
    }

    /// Whether a message streams past: its head was given, and bytes of it
    /// are still to come.
    pub fn streaming(&self) -> bool {
        self.streaming > 0
    }

    /// What is left: a message not yet whole, or the part of one streaming
    /// past that has not gone yet.
    pub fn take_rest(&mut self) -> Bytes {
        self.streaming = 0;
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

    /// Everything `framer` gives for `pieces`, as (tag, length) for whole
    /// messages and heads, the pieces joined.
    fn frame(framer: &mut Framer, pieces: &[&[u8]]) -> (Vec<(u8, usize, bool)>, Vec<u8>) {
        let (mut seen, mut streamed) = (Vec::new(), Vec::new());
        for piece in pieces {
            framer.push(piece, Instant::now());
            while let Some(framed) = framer.pop().unwrap() {
                match framed {
                    Framed::Whole { tag, bytes, .. } => seen.push((tag, bytes.len(), true)),
                    Framed::Head { tag, len, .. } => seen.push((tag, len as usize, false)),
                    Framed::Piece { bytes, .. } => streamed.extend_from_slice(&bytes),
                }
            }
            // Never more held than one piece and a message's head.
            assert!(framer.buffer.len() <= piece.len() + 5);
        }
        (seen, streamed)
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
            let (seen, _) = frame(&mut framer, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(
                seen,
                [(0, 8, true), (b'Q', 14, true), (b'X', 5, true)],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn framer_refuses_impossible_lengths() {
        let mut framer = Framer::new(false);
        framer.push(&[b'Q', 0, 0, 0, 2], Instant::now());
        assert!(framer.pop().unwrap_err().0.contains("length of 2"));
    }

    /// The error for a header of `tag` with length word `len`, if refused.
    fn refusal(client_side: bool, tag: Option<u8>, len: u32) -> Option<String> {
        let mut framer = Framer::new(client_side);
        let mut header: Vec<u8> = tag.into_iter().collect();
        header.extend_from_slice(&len.to_be_bytes());
        framer.push(&header, Instant::now());
        framer.pop().err().map(|m| m.0)
    }

    #[test]
    fn framer_refuses_lengths_past_postgres_limits_at_the_header() {
        // What Postgres takes from a client during authentication...
        assert_eq!(refusal(true, Some(b'p'), 65_535), None);
        let refused = refusal(true, Some(b'p'), 1 << 30).unwrap();
        assert!(
            refused.contains("message 'p'")
                && refused.contains("from the client")
                && refused.contains("limit of 65535"),
            "{refused}"
        );
        // ...short messages after it, and long ones.
        assert_eq!(refusal(true, Some(b'S'), 10_000), None);
        assert!(
            refusal(true, Some(b'S'), 10_001)
                .unwrap()
                .contains("(Sync)")
        );
        assert_eq!(refusal(true, Some(b'Q'), 0x3fff_fffe), None);
        assert!(refusal(true, Some(b'Q'), 0x3fff_ffff).is_some());
        // The startup packet: 10,000 bytes after its length word.
        assert_eq!(refusal(true, None, 10_004), None);
        assert!(
            refusal(true, None, 10_005)
                .unwrap()
                .contains("the startup packet")
        );
        // What the server can build.
        assert_eq!(refusal(false, Some(b'D'), 0x4000_0003), None);
        let refused = refusal(false, Some(b'D'), 0x4000_0004).unwrap();
        assert!(refused.contains("from the server"), "{refused}");
    }

    #[test]
    fn framer_streams_a_message_too_long_to_hold_and_frames_what_follows() {
        let body: Vec<u8> = (0..3 * STREAM_ABOVE).map(|i| (i % 251) as u8).collect();
        let big = typed(b'd', &body);
        let stream = [big.clone(), typed(b'c', b""), typed(b'S', b"")].concat();
        let pieces: Vec<&[u8]> = stream.chunks(65_521).collect();
        let mut framer = Framer::new(true);
        let (seen, streamed) = frame(&mut framer, &pieces);
        assert_eq!(
            seen,
            [(b'd', big.len(), false), (b'c', 5, true), (b'S', 5, true)]
        );
        assert!(
            streamed == big,
            "the streamed pieces differ from the message"
        );
    }

    #[test]
    fn framer_marks_the_last_piece_of_a_streamed_message() {
        let big = typed(b'Q', &vec![b'x'; STREAM_ABOVE]);
        let mut framer = Framer::new(false);
        framer.push(&big[..100], Instant::now());
        assert!(matches!(framer.pop(), Ok(Some(Framed::Head { .. }))));
        assert!(matches!(
            framer.pop(),
            Ok(Some(Framed::Piece { last: false, .. }))
        ));
        assert!(matches!(framer.pop(), Ok(None)));
        framer.push(&big[100..], Instant::now());
        let Ok(Some(Framed::Piece { bytes, last, .. })) = framer.pop() else {
            panic!("no last piece");
        };
        assert!(last);
        assert_eq!(bytes.len(), big.len() - 100);
    }

    #[test]
    fn boundaries_follow_messages_across_writes() {
        let mut b = Boundaries::new(false);
        let m = typed(b'D', b"abcdef");
        let mut tags = Vec::new();
        b.observe(&m[..3], |t| {
            tags.push(t);
            false
        });
        assert!(!b.at_boundary());
        b.observe(&m[3..], |t| {
            tags.push(t);
            false
        });
        assert!(b.at_boundary());
        assert_eq!(tags, b"D");
    }

    #[test]
    fn boundaries_stop_after_the_message_asked_for() {
        let mut b = Boundaries::new(true);
        let startup = [0, 0, 0, 8, 0, 3, 0, 0];
        let stream = [
            startup.to_vec(),
            typed(b'Q', b"SELECT 1\0"),
            typed(b'S', b""),
            typed(b'X', b""),
        ]
        .concat();
        let mut tags = Vec::new();
        let followed = b.observe(&stream, |t| {
            tags.push(t);
            t == b'S'
        });
        assert_eq!(tags, [0, b'Q', b'S']);
        assert_eq!(followed, 8 + 14 + 5);
        assert!(b.at_boundary());
    }
}
