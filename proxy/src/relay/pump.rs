//! One direction of one connection: read, run the fault chain, write.
//!
//! With no fault on its direction a pump is a plain copy loop: read a chunk,
//! write it, no plugin call. With faults it is a small scheduler that runs in
//! the same task:
//!
//! * Chunks are read ahead (up to [`MAX_READ_AHEAD`]) and stamped with their
//!   arrival time, so a delay is measured from when a chunk arrived, not from
//!   when the chunk in front of it was let through.
//! * The chunk at the head is handed to the first fault, whose plugin answers
//!   with steps. Bytes a step passes on go to the next fault, and from the
//!   last one to the socket. In-progress work is a stack of
//!   [`Frame`](super::frames::Frame)s, one per fault the current piece of
//!   data is inside.
//! * While a step waits (a `sleep` not yet elapsed, a `hold`) the pump keeps
//!   reading ahead and keeps watching the chain. When a fault is removed or
//!   replaced, its pending steps are abandoned and the part of the chunk it
//!   had not passed on is written at once: nothing is lost or reordered
//!   unless a fault asked for it.
//!
//! What the pump knows of the protocol it carries (the Postgres startup
//! gate, whole messages for Postgres faults, replies slipped in between two
//! messages) comes through its [`Protocol`]. A Postgres fault's replies wait
//! in a bounded queue for the other direction to write them: when it is
//! full, the pump holds the reply and reads nothing more until there is
//! room, so a peer that does not read pushes back on the one that sends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::frames::{Frame, FrameKind, Op, Pending, Wait, pg_ops, tcp_ops};
use super::protocol::{OnFailure, Protocol};
use super::stages::{Instance, PgStage, Stage, Stages};
use super::streamed::Streamed;
use crate::clock;
use crate::conn::{Connection, Ended};
use crate::faults::{Chain, Fault, Held, HoldGuard};
use crate::net::{Ending, Source};
use crate::plugin_host::{ByteRange, Direction, PluginError, Step};
use crate::postgres::{Framed, Malformed};

/// How long replies still queued for a peer may take to go out when a
/// fault closes the connection.
const REPLY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// How much may be read ahead of the chunk being worked on. Past this the
/// pump stops reading, and TCP flow control pushes back on the sender.
const MAX_READ_AHEAD: usize = 1 << 20;

/// One direction of a connection.
pub struct Pump<P> {
    direction: Direction,
    conn: Arc<Connection>,
    chain: watch::Receiver<Arc<Chain>>,
    stages: Stages,
    /// Work in progress; the top runs first.
    frames: Vec<Frame>,
    /// Read, not yet started.
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    eof_read: bool,
    closing: bool,
    protocol: P,
    /// A plugin that failed while the faults were opened before the pump
    /// ran ([`Pump::open_faults`]): the connection fails when it runs.
    failed_early: Option<PluginError>,
}

impl<P: Protocol> Pump<P> {
    pub fn new(direction: Direction, conn: Arc<Connection>, protocol: P) -> Self {
        Self {
            direction,
            chain: conn.chain.clone(),
            conn,
            stages: Stages::default(),
            frames: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            eof_read: false,
            closing: false,
            protocol,
            failed_early: None,
        }
    }

    /// Opens this direction's faults (their `fault.open` and `on-open`)
    /// before the pump runs, so that what they ask of the connection before
    /// its far side is dialed (`delay-connect`) is known first. Their
    /// `on-open` steps run when the pump does, their time counted from now.
    pub async fn open_faults(&mut self) {
        let chain = self.chain.borrow_and_update().clone();
        let wanted = self.faults_of_direction(&chain);
        match self
            .stages
            .replace(wanted, &self.conn, self.direction)
            .await
        {
            Ok(opening) => self.frames.extend(opening),
            Err(error) => self.failed_early = Some(error),
        }
    }

    /// The faults of `chain` that run on this direction now.
    fn faults_of_direction(&self, chain: &Chain) -> Vec<Arc<Fault>> {
        chain
            .faults
            .iter()
            .filter(|f| f.stream == self.direction && self.protocol.runs(f.plugin.kind()))
            .cloned()
            .collect()
    }

    /// A fault half-closed this direction (`half-close`): it ends as if its
    /// sender had finished. What was read and not passed on yet is dropped,
    /// and nothing more is read; the end of stream goes on after the
    /// faults' `on-close`, while the other direction goes on.
    fn half_close(&mut self) {
        tracing::debug!(proxy = %self.conn.proxy, conn = self.conn.id, direction = %self.direction, "a fault half-closed this direction");
        self.queue.clear();
        self.queued_bytes = 0;
        self.eof_read = true;
        self.queue.push_back(Pending::Eof);
    }

    /// Runs until the end of stream has been passed on (`Ok`) or the
    /// connection is ending (`Err`).
    pub async fn run<W: AsyncWrite + Unpin>(
        &mut self,
        reader: &mut impl Source,
        writer: &mut W,
    ) -> Result<(), Ended> {
        let result = self.serve(reader, writer).await;
        // Replies for this pump's peer cannot go out any more: the other
        // direction must not wait for room for them.
        self.protocol.finished();
        result
    }

    async fn serve<W: AsyncWrite + Unpin>(
        &mut self,
        reader: &mut impl Source,
        writer: &mut W,
    ) -> Result<(), Ended> {
        if let Some(error) = self.failed_early.take() {
            return Err(self.fail(writer, error).await);
        }
        self.chain.mark_changed();
        let mut held = false;
        // Counts this direction under the fault holding it, for `/metrics`.
        let mut holder: Option<(u64, HoldGuard)> = None;
        loop {
            let wait = self.advance(writer).await?;
            if held != matches!(wait, Wait::Hold(_)) {
                held = !held;
                self.conn.live.set_held(self.direction, held);
            }
            let holding = match wait {
                Wait::Hold(fault_id) => Some(fault_id),
                _ => None,
            };
            if holder.as_ref().map(|(id, _)| *id) != holding {
                holder = holding.and_then(|id| {
                    let fault = self.stages.fault(id)?;
                    Some((id, fault.holding.hold(Held::Connection)))
                });
            }
            if let Wait::Finished = wait {
                return writer.shutdown().await.map_err(|e| self.conn.io_failed(e));
            }
            let can_read = !self.eof_read
                && self.queued_bytes < MAX_READ_AHEAD
                && !matches!(wait, Wait::Hold(_) | Wait::ReplyRoom);
            let wants_room = matches!(wait, Wait::ReplyRoom);
            let deadline = match wait {
                Wait::Until(at) => Some(tokio::time::Instant::from_std(at)),
                _ => None,
            };
            self.deliver_replies(writer).await?;
            let can_receive = self.protocol.can_receive();
            let wake = self.stages.next_wake().map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => {
                    if self.conn.ending() == Some(Ending::Close) {
                        self.flush_replies(writer).await;
                    }
                    return Err(Ended);
                }
                error = self.stages.failed() => return Err(self.fail(writer, error).await),
                _ = self.protocol.replies_move(can_receive, wants_room), if can_receive || wants_room => {}
                _ = sleep_until(wake), if wake.is_some() => {
                    match self.stages.woken(Instant::now()).await {
                        Ok(woken) => self.frames.extend(woken),
                        Err(error) => return Err(self.fail(writer, error).await),
                    }
                }
                changed = self.chain.changed() => match changed {
                    Ok(()) => self.sync_chain(writer).await?,
                    // The proxy was deleted; it is closing its connections.
                    Err(_) => return Err(Ended),
                },
                _ = sleep_until(deadline), if deadline.is_some() => {}
                read = reader.read_chunk(), if can_read => {
                    let data = read.map_err(|e| self.conn.io_failed(e))?;
                    if data.is_empty() {
                        self.eof_read = true;
                        self.queue.push_back(Pending::Eof);
                    } else if let Some(data) = self.protocol.admit(data).map_err(|m| self.malformed(m))? {
                        if self.protocol.session_starts() {
                            self.sync_chain(writer).await?;
                        }
                        self.queued_bytes += data.len();
                        self.queue.push_back(Pending::Data { data, arrived: Instant::now() });
                    }
                }
            }
        }
    }

    /// Runs every step that can run now; says what to wait for next.
    async fn advance<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> Result<Wait, Ended> {
        loop {
            if self.frames.is_empty()
                && !self.closing
                && self.conn.requests.take_half_close(self.direction)
            {
                self.half_close();
            }
            let Some(top) = self.frames.last_mut() else {
                match self.queue.pop_front() {
                    Some(Pending::Data { data, arrived }) => {
                        self.queued_bytes -= data.len();
                        self.emit(0, data, arrived, writer).await?;
                        continue;
                    }
                    Some(Pending::Eof) => {
                        self.closing = true;
                        match self.stages.closing().await {
                            Ok(closing) => self.frames.extend(closing),
                            Err(error) => return Err(self.fail(writer, error).await),
                        }
                        continue;
                    }
                    None if self.closing => return Ok(Wait::Finished),
                    None => return Ok(Wait::Idle),
                }
            };
            if top.kind == FrameKind::Framing {
                let fault_id = top.fault_id;
                self.next_message(fault_id, writer).await?;
                continue;
            }
            if top.cursor > Instant::now() {
                return Ok(Wait::Until(top.cursor));
            }
            let step = match top.steps.pop_front() {
                None => {
                    self.frames.pop();
                    continue;
                }
                Some(Op::Reply(bytes)) => match self.protocol.try_reply(bytes) {
                    Ok(()) => continue,
                    Err(bytes) => {
                        top.steps.push_front(Op::Reply(bytes));
                        return Ok(Wait::ReplyRoom);
                    }
                },
                Some(Op::Step(step)) => step,
            };
            let piece = match step {
                Step::Forward(range) => {
                    let (start, end) = (range.start as usize, range.end as usize);
                    if start > end || end > top.data.len() {
                        let reason = format!(
                            "forward {start}..{end} is outside a chunk of {} bytes",
                            top.data.len()
                        );
                        let plugin = self.stages.plugin_name(top.fault_id);
                        let error = PluginError::BadStep { plugin, reason };
                        return Err(self.fail(writer, error).await);
                    }
                    top.passed = top.passed.max(end);
                    top.data.slice(start..end)
                }
                Step::Write(bytes) => Bytes::from(bytes),
                Step::Sleep(micros) => {
                    top.cursor = clock::add_micros(top.cursor, micros);
                    continue;
                }
                Step::Drop => {
                    top.steps.clear();
                    top.passed = top.data.len();
                    continue;
                }
                Step::Hold => {
                    top.steps.push_front(Op::Step(Step::Hold));
                    return Ok(Wait::Hold(top.fault_id));
                }
                Step::Close => {
                    // The client's side of a `postgres` connection lets the
                    // other pump close, after the replies queued there; this
                    // pump stops now.
                    if self.protocol.close_after_replies() {
                        return Err(Ended);
                    }
                    return Err(self.conn.end(Ending::Close));
                }
                Step::Reset => return Err(self.conn.end(Ending::Reset)),
                Step::Wake(micros) => {
                    let fault_id = top.fault_id;
                    let at = clock::add_micros(Instant::now(), micros);
                    self.stages.wake(fault_id, at);
                    continue;
                }
            };
            let (at, kind, fault_id) = (top.cursor, top.kind, top.fault_id);
            // What `on-open` and `on-close` write goes to the socket.
            let next = match kind {
                FrameKind::Host => self.stages.len(),
                _ => self.stages.after(fault_id),
            };
            self.emit(next, piece, at, writer).await?;
        }
    }

    /// Hands `piece` to the first applicable fault from `stage` on, or to the
    /// socket past the last one.
    async fn emit<W: AsyncWrite + Unpin>(
        &mut self,
        mut stage: usize,
        piece: Bytes,
        at: Instant,
        writer: &mut W,
    ) -> Result<(), Ended> {
        if piece.is_empty() {
            return Ok(());
        }
        let opaque = self.protocol.opaque();
        while self.stages.get(stage).is_some_and(|s| match &s.instance {
            None => true,
            // Protocol faults do not see a connection relayed opaquely.
            Some(Instance::Postgres(..)) => opaque,
            Some(Instance::Tcp(_)) => false,
        }) {
            stage += 1;
        }
        let Some(Stage {
            fault,
            instance: Some(instance),
            ..
        }) = self.stages.get_mut(stage)
        else {
            return self.write(writer, &piece).await;
        };
        let fault_id = fault.id;
        match instance {
            Instance::Tcp(filter) => {
                let steps = match filter.on_data(&piece, clock::micros(at)).await {
                    Ok(steps) => steps,
                    Err(error) => return Err(self.fail(writer, error).await),
                };
                self.frames
                    .push(Frame::data(fault_id, piece, tcp_ops(steps), at));
            }
            Instance::Postgres(pg) => {
                // The fault gets whole messages (or a long one as it
                // streams): collect, then hand them over one at a time (see
                // `next_message`).
                pg.framer.push(&piece, at);
                self.frames.push(Frame::framing(fault_id, at));
            }
        }
        Ok(())
    }

    /// The Postgres fault `fault_id` takes what comes next, if it is in: a
    /// whole message, whose actions become a frame; the head of one too
    /// long to hold, whose actions it keeps; or a piece of that one, with
    /// its part of those actions. With none left, its framing frame goes.
    async fn next_message<W: AsyncWrite + Unpin>(
        &mut self,
        fault_id: u64,
        writer: &mut W,
    ) -> Result<(), Ended> {
        let Some(Stage {
            instance: Some(Instance::Postgres(pg)),
            ..
        }) = self.stages.find_mut(fault_id)
        else {
            self.frames.pop();
            return Ok(());
        };
        if !pg.framer.streaming() && !self.chain.borrow().faults.iter().any(|f| f.id == fault_id) {
            // The fault was removed while a message streamed past it: that
            // message has passed, so it leaves now, before the next one.
            return self.sync_chain(writer).await;
        }
        let framed = match pg.framer.pop() {
            Ok(Some(framed)) => framed,
            Ok(None) => {
                self.frames.pop();
                return Ok(());
            }
            Err(malformed) => return Err(self.malformed(malformed)),
        };
        let frame = match framed {
            Framed::Whole {
                tag,
                bytes,
                arrived,
            } => {
                let actions = match pg
                    .session
                    .on_message(tag, &bytes, clock::micros(arrived))
                    .await
                {
                    Ok(actions) => actions,
                    Err(error) => return Err(self.fail(writer, error).await),
                };
                Frame::data(fault_id, bytes, pg_ops(actions), arrived)
            }
            Framed::Head { tag, len, arrived } => {
                match pg
                    .session
                    .on_message_unseen(tag, len, clock::micros(arrived))
                    .await
                {
                    Ok(actions) => pg.streamed = Some(Streamed::new(len, pg_ops(actions))),
                    Err(error) => return Err(self.fail(writer, error).await),
                }
                return Ok(());
            }
            Framed::Piece {
                bytes,
                last,
                arrived,
            } => {
                let ops = piece_ops(pg, bytes.len(), last);
                match ops {
                    Ok(ops) => Frame::data(fault_id, bytes, ops, arrived),
                    Err(reason) => {
                        let plugin = self.stages.plugin_name(fault_id);
                        let error = PluginError::BadStep { plugin, reason };
                        return Err(self.fail(writer, error).await);
                    }
                }
            }
        };
        self.frames.push(frame);
        Ok(())
    }

    /// Writes `data` to the peer, with the replies whose turn comes inside
    /// it put in right after the message that makes them due.
    async fn write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        mut data: &[u8],
    ) -> Result<(), Ended> {
        while !data.is_empty() {
            let before_reply = match self.protocol.before_next_reply(data) {
                0 => {
                    if self.deliver_replies(writer).await? {
                        continue;
                    }
                    // Said due but not given: write on rather than loop.
                    data.len()
                }
                n => n,
            };
            let (now, rest) = data.split_at(before_reply);
            self.protocol.wrote(now);
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => return Err(Ended),
                written = writer.write_all(now) => written.map_err(|e| self.conn.io_failed(e))?,
            }
            self.conn.count_written(self.direction, now.len());
            data = rest;
        }
        Ok(())
    }

    /// Writes the replies whose turn has come: between two whole messages,
    /// after the answers to what was sent before them. Says whether it
    /// wrote any.
    async fn deliver_replies<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
    ) -> Result<bool, Ended> {
        let mut delivered = false;
        while let Some(reply) = self.protocol.due_reply() {
            delivered = true;
            // Written as is: a reply is whole messages, and it answers no
            // sync point the server saw, so it is not counted.
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => return Err(Ended),
                written = writer.write_all(&reply.bytes) => written.map_err(|e| self.conn.io_failed(e))?,
            }
            self.conn.count_written(self.direction, reply.bytes.len());
            if reply.close_after {
                return Err(self.conn.end(Ending::Close));
            }
        }
        Ok(delivered)
    }

    /// Writes the replies still queued for this pump's peer, briefly: a fault
    /// that sends an error and closes wants the error seen.
    async fn flush_replies<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) {
        let replies = self.protocol.take_waiting();
        if replies.is_empty() {
            return;
        }
        let flush = async {
            for reply in replies {
                if writer.write_all(&reply).await.is_err() {
                    return;
                }
                self.conn.count_written(self.direction, reply.len());
            }
            let _ = writer.flush().await;
        };
        let _ = tokio::time::timeout(REPLY_FLUSH_TIMEOUT, flush).await;
    }

    /// Brings the stages in line with the proxy's current chain.
    async fn sync_chain<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> Result<(), Ended> {
        let chain = self.chain.borrow_and_update().clone();
        let wanted = self.faults_of_direction(&chain);
        let wanted = self.stages.keeping_streams(wanted);
        let gone = |id: u64| !wanted.iter().any(|f| f.id == id);

        // Work inside a fault that is gone is abandoned: the frames above it
        // hold data it passed on earlier, so they are flushed first.
        if let Some(first_gone) = self.frames.iter().position(|f| gone(f.fault_id)) {
            let abandoned: Vec<Frame> = self.frames.drain(first_gone..).rev().collect();
            for frame in abandoned {
                if let Some(rest) = frame.unpassed() {
                    self.write(writer, rest).await?;
                }
            }
        }
        // A Postgres fault that goes may hold messages it had not been given
        // yet; they came after everything above.
        for rest in self.stages.leftovers_of_gone(&wanted) {
            self.write(writer, &rest).await?;
        }

        match self
            .stages
            .replace(wanted, &self.conn, self.direction)
            .await
        {
            Ok(opening) => self.frames.extend(opening),
            Err(error) => return Err(self.fail(writer, error).await),
        }
        self.conn
            .live
            .set_acting(self.direction, self.stages.acting());
        Ok(())
    }

    /// A plugin serving this connection failed (or answered nonsense): the
    /// connection ends as the protocol fails one, a reset for a byte stream,
    /// a FATAL error for a Postgres client.
    async fn fail<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, error: PluginError) -> Ended {
        self.conn.stats.count_failure(&error);
        tracing::warn!(
            proxy = ?&*self.conn.proxy,
            conn = self.conn.id,
            "{error}; ending the connection"
        );
        match self.protocol.on_plugin_failure(&error.to_string()) {
            OnFailure::Reset => self.conn.end(Ending::Reset),
            OnFailure::Close => self.conn.end(Ending::Close),
            OnFailure::WriteThenClose(notice) => {
                let write = async {
                    if writer.write_all(&notice).await.is_ok() {
                        let _ = writer.flush().await;
                    }
                };
                let _ = tokio::time::timeout(REPLY_FLUSH_TIMEOUT, write).await;
                self.conn.end(Ending::Close)
            }
            OnFailure::OtherSideCloses => Ended,
        }
    }

    /// A peer broke the protocol's framing or limits (the message says
    /// which peer, and how).
    fn malformed(&self, malformed: Malformed) -> Ended {
        tracing::warn!(proxy = %self.conn.proxy, conn = self.conn.id, "{malformed}; closing the connection");
        self.conn.end(Ending::Close)
    }
}

/// The steps of a Postgres fault for the next piece of the message
/// streaming past it; the message's state goes with its last piece.
fn piece_ops(pg: &mut PgStage, len: usize, last: bool) -> Result<VecDeque<Op>, String> {
    let Some(streamed) = &mut pg.streamed else {
        // The framer gives a head before any piece; were one missing, the
        // piece would pass untouched rather than be lost.
        return Ok(VecDeque::from([Op::Step(Step::Forward(ByteRange {
            start: 0,
            end: len as u32,
        }))]));
    };
    let ops = streamed.piece(len);
    if last {
        pg.streamed = None;
    }
    ops
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
