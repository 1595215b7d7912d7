//! The pump's work in progress: data read and not yet started, and a stack
//! of frames, one per fault the current piece of data is inside.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::plugin_host::{PgAction, Step};

/// What a frame still has to do: a TCP step, or a Postgres reply.
pub(super) enum Op {
    Step(Step),
    Reply(Bytes),
}

pub(super) fn tcp_ops(steps: Vec<Step>) -> VecDeque<Op> {
    steps.into_iter().map(Op::Step).collect()
}

pub(super) fn pg_ops(actions: Vec<PgAction>) -> VecDeque<Op> {
    actions
        .into_iter()
        .map(|action| match action {
            PgAction::Step(step) => Op::Step(step),
            PgAction::Reply(bytes) => Op::Reply(bytes.into()),
        })
        .collect()
}

/// Read from the peer, not yet started.
pub(super) enum Pending {
    Data { data: Bytes, arrived: Instant },
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameKind {
    /// A piece of data inside a fault; what it passes on goes to the next fault.
    Data,
    /// Steps from `on-open` or `on-close`; what they write goes to the socket.
    Host,
    /// A Postgres fault has messages (or pieces of one streaming past it)
    /// waiting in its framer.
    Framing,
}

/// One fault's work on one piece of data (or on its open or close).
pub(super) struct Frame {
    pub fault_id: u64,
    pub kind: FrameKind,
    pub data: Bytes,
    pub steps: VecDeque<Op>,
    /// When the next step may run: starts at arrival, `sleep` moves it on.
    pub cursor: Instant,
    /// End of the furthest byte passed on, for abandoning the frame.
    pub passed: usize,
}

impl Frame {
    /// A fault's steps on `data`, which arrived at `at`.
    pub fn data(fault_id: u64, data: Bytes, steps: VecDeque<Op>, at: Instant) -> Self {
        Self {
            fault_id,
            kind: FrameKind::Data,
            data,
            steps,
            cursor: at,
            passed: 0,
        }
    }

    /// A fault's `on-open` or `on-close` steps, starting now.
    pub fn host(fault_id: u64, steps: VecDeque<Op>) -> Self {
        Self {
            fault_id,
            kind: FrameKind::Host,
            data: Bytes::new(),
            steps,
            cursor: Instant::now(),
            passed: 0,
        }
    }

    /// A Postgres fault collecting whole messages from what reached it.
    pub fn framing(fault_id: u64, at: Instant) -> Self {
        Self {
            fault_id,
            kind: FrameKind::Framing,
            data: Bytes::new(),
            steps: VecDeque::new(),
            cursor: at,
            passed: 0,
        }
    }

    /// What the frame had not passed on yet, when its fault goes.
    pub fn unpassed(&self) -> Option<&[u8]> {
        (self.kind == FrameKind::Data && self.passed < self.data.len())
            .then(|| &self.data[self.passed..])
    }
}

/// What the pump waits for next.
pub(super) enum Wait {
    /// Nothing to do until data arrives.
    Idle,
    Until(Instant),
    /// Read nothing until the holding fault (this id) goes.
    Hold(u64),
    /// A fault's reply waits for room among the replies queued for its
    /// peer: read nothing until the other direction has written some out.
    ReplyRoom,
    /// The end of stream was passed on.
    Finished,
}
