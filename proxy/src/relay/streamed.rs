//! A message too long for a Postgres fault to hold
//! ([`crate::postgres::STREAM_ABOVE`]) streams past it: the fault is told
//! its type and length once, at its header, never its bytes, and what it
//! answered applies to the message piece by piece as the pieces come.
//!
//! The fault's steps mean what they mean for a whole message, with one
//! rule more: its `forward` ranges must come in order (each starting at or
//! after the end of the one before), since the bytes before a range are
//! gone once it starts. Bytes no range covers are swallowed, as for a whole
//! message; `drop` swallows the rest of the message; `write`, `sleep`,
//! `hold`, `close`, `reset`, `wake` and replies run in their place among
//! the forwards: a `sleep` before the first forward delays the message from
//! the arrival of its header. A fault removed while a message streams past
//! it stays until that message has passed (see `Stages::keeping_streams`),
//! so that what it answered for the message holds for all of it.

use std::collections::VecDeque;

use super::frames::Op;
use crate::plugin_host::{ByteRange, Step};

/// What is left of a fault's steps on a message streaming past it.
pub(super) struct Streamed {
    /// The whole message's length.
    len: u64,
    /// Bytes of it that came in earlier pieces.
    seen: u64,
    /// Where the last forward ended: no range may start before it.
    forwarded_to: u64,
    ops: VecDeque<Op>,
}

impl Streamed {
    /// The fault's steps for a message of `len` bytes.
    pub fn new(len: u32, ops: VecDeque<Op>) -> Self {
        Self {
            len: len.into(),
            seen: 0,
            forwarded_to: 0,
            ops,
        }
    }

    /// The steps for the next piece of the message, `piece` bytes long,
    /// with forward ranges made relative to the piece. An error says why
    /// the fault's steps cannot apply.
    pub fn piece(&mut self, piece: usize) -> Result<VecDeque<Op>, String> {
        let start = self.seen;
        let end = start + piece as u64;
        let mut now = VecDeque::new();
        while let Some(op) = self.ops.front_mut() {
            let Op::Step(Step::Forward(range)) = op else {
                let op = self.ops.pop_front().expect("looked at above");
                let dropping = matches!(op, Op::Step(Step::Drop));
                now.push_back(op);
                if dropping {
                    // The rest of the message is swallowed, and steps after
                    // a drop are ignored, as for a whole message.
                    self.ops.clear();
                }
                continue;
            };
            let (from, to) = (u64::from(range.start), u64::from(range.end));
            if from > to || to > self.len {
                return Err(format!(
                    "forward {from}..{to} is outside a message of {} bytes",
                    self.len
                ));
            }
            if from < self.forwarded_to.max(start) && from < to {
                return Err(format!(
                    "forward {from}..{to} reaches back before byte {}: a message of {} bytes \
                     streams past the fault, so its forwards must come in order",
                    self.forwarded_to.max(start),
                    self.len
                ));
            }
            if from == to {
                self.ops.pop_front();
                continue;
            }
            if from >= end {
                // It starts in a later piece.
                break;
            }
            let until = to.min(end);
            now.push_back(Op::Step(Step::Forward(ByteRange {
                start: (from - start) as u32,
                end: (until - start) as u32,
            })));
            self.forwarded_to = until;
            if to > end {
                range.start = end as u32;
                break;
            }
            self.ops.pop_front();
        }
        self.seen = end;
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(start: u32, end: u32) -> Op {
        Op::Step(Step::Forward(ByteRange { start, end }))
    }

    /// The steps for pieces of `sizes`, as text.
    fn pieces(len: u32, ops: Vec<Op>, sizes: &[usize]) -> Result<Vec<String>, String> {
        let mut streamed = Streamed::new(len, ops.into());
        let mut out = Vec::new();
        for size in sizes {
            let ops = streamed.piece(*size)?;
            out.push(ops.iter().map(show).collect::<Vec<_>>().join(" "));
        }
        Ok(out)
    }

    fn show(op: &Op) -> String {
        match op {
            Op::Step(Step::Forward(r)) => format!("f{}..{}", r.start, r.end),
            Op::Step(Step::Write(b)) => format!("w{}", b.len()),
            Op::Step(Step::Sleep(us)) => format!("s{us}"),
            Op::Step(Step::Drop) => "drop".into(),
            Op::Reply(b) => format!("r{}", b.len()),
            Op::Step(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn a_forward_of_the_whole_message_is_cut_into_the_pieces() {
        let got = pieces(
            300,
            vec![Op::Step(Step::Sleep(5)), forward(0, 300)],
            &[100, 150, 50],
        );
        assert_eq!(got.unwrap(), ["s5 f0..100", "f0..150", "f0..50"]);
    }

    #[test]
    fn steps_between_forwards_run_where_the_forwards_leave_off() {
        let ops = vec![
            forward(0, 120),
            Op::Step(Step::Write(vec![1, 2, 3])),
            Op::Reply(vec![9; 4].into()),
            // 120..150 swallowed.
            forward(150, 300),
        ];
        let got = pieces(300, ops, &[100, 100, 100]).unwrap();
        assert_eq!(got, ["f0..100", "f0..20 w3 r4 f50..100", "f0..100"]);
    }

    #[test]
    fn a_drop_swallows_the_rest_and_ignores_later_steps() {
        let ops = vec![
            Op::Step(Step::Write(vec![0; 7])),
            Op::Step(Step::Drop),
            forward(0, 300),
        ];
        let got = pieces(300, ops, &[100, 200]).unwrap();
        assert_eq!(got, ["w7 drop", ""]);
    }

    #[test]
    fn with_no_steps_left_the_rest_is_swallowed() {
        let got = pieces(300, vec![forward(0, 10)], &[100, 200]).unwrap();
        assert_eq!(got, ["f0..10", ""]);
    }

    #[test]
    fn forwards_out_of_order_or_outside_the_message_are_refused() {
        let back = pieces(300, vec![forward(100, 200), forward(50, 60)], &[300]);
        assert!(back.unwrap_err().contains("must come in order"));
        let gone = pieces(300, vec![forward(200, 300), forward(0, 10)], &[250, 50]);
        assert!(gone.unwrap_err().contains("reaches back before byte 300"));
        let outside = pieces(300, vec![forward(0, 301)], &[300]);
        assert!(
            outside
                .unwrap_err()
                .contains("outside a message of 300 bytes")
        );
    }
}
