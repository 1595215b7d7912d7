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
//!   last one to the socket. In-progress work is a stack of [`Frame`]s, one
//!   per fault the current piece of data is inside.
//! * While a step waits (a `sleep` not yet elapsed, a `hold`) the pump keeps
//!   reading ahead and keeps watching the chain. When a fault is removed or
//!   replaced, its pending steps are abandoned and the part of the chunk it
//!   had not passed on is written at once: nothing is lost or reordered
//!   unless a fault asked for it.
//!
//! In `postgres` mode the pump also knows the protocol (see
//! [`super::postgres`]): the client's side passes through the startup gate
//! first; each Postgres fault gets whole messages, reassembled from whatever
//! pieces reach it; and replies a fault sends back to the other peer arrive
//! through the other pump, which writes them only between two messages.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::Stats;
use super::connection::{ConnShared, Ended, Ending};
use super::postgres::{Boundaries, Framer, Malformed, PgShared, StartupGate};
use super::stream::Source;
use crate::clock;
use crate::faults::{Chain, Fault};
use crate::plugin_host::{
    ConnContext, Direction, Filter, PgAction, PluginError, PluginKind, Session, Step,
};

/// How long replies still queued for a peer may take to go out when a
/// fault closes the connection.
const REPLY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// How much may be read ahead of the chunk being worked on. Past this the
/// pump stops reading, and TCP flow control pushes back on the sender.
const MAX_READ_AHEAD: usize = 1 << 20;

pub(super) struct Pump {
    direction: Direction,
    conn: Arc<ConnShared>,
    context: ConnContext,
    seed: u64,
    stats: Arc<Stats>,
    chain: watch::Receiver<Arc<Chain>>,
    /// The faults on this direction, in chain order.
    stages: Vec<Stage>,
    /// Work in progress; the top runs first.
    frames: Vec<Frame>,
    /// Read, not yet started.
    queue: VecDeque<Pending>,
    queued_bytes: usize,
    eof_read: bool,
    closing: bool,
    /// In `postgres` mode: the protocol's state for this direction.
    pg: Option<PgPump>,
}

/// One direction of a `postgres` connection.
pub(crate) struct PgPump {
    shared: Arc<PgShared>,
    /// The client's side only: the startup handshake, ahead of every fault.
    gate: Option<StartupGate>,
    /// Message boundaries of what this pump has written.
    written: Boundaries,
    /// Replies for the peer this pump reads from, sent to the other pump.
    replies_out: mpsc::UnboundedSender<Reply>,
    /// Replies from the other pump, for the peer this pump writes to.
    replies_in: mpsc::UnboundedReceiver<Reply>,
    /// The next reply, waiting for its turn.
    held: Option<Reply>,
    /// Whether the startup handshake is over for this direction (the
    /// client's StartupMessage passed the gate; the server spoke). Postgres
    /// faults join a session only then: a real Postgres answers a TLS
    /// request before it sends any error, and clients rely on it.
    started: bool,
}

/// Bytes a fault sends back to the peer its message came from.
///
/// Clients pipeline: a reply to the client must not overtake the server's
/// answers to what the client sent before it, or the client pairs answers
/// with the wrong requests. So a reply waits until the client has been
/// given as many ReadyForQuery messages as it had sent sync points (Query,
/// Sync) to the server when the reply was made.
pub(crate) struct Reply {
    after_ready: u64,
    bytes: Bytes,
    /// End the connection (FIN) once this reply is out: a fault that
    /// answers and closes wants its answer seen in its turn.
    close_after: bool,
}

impl PgPump {
    /// Sends `bytes` back to the peer this pump reads from.
    fn reply(&self, bytes: Bytes) {
        // Replies to the client (made on the client's side) wait for the
        // server's answers to the sync points already sent; replies to the
        // server wait for nothing.
        let after_ready = if self.gate.is_some() {
            self.shared.syncs_sent()
        } else {
            0
        };
        let _ = self.replies_out.send(Reply {
            after_ready,
            bytes,
            close_after: false,
        });
    }

    /// Asks the other pump to end the connection once the replies sent
    /// before this are out. Only the client's side needs to: its replies
    /// wait for the server's answers.
    fn close_after_replies(&self) -> bool {
        if self.gate.is_none() || self.shared.opaque() {
            return false;
        }
        let _ = self.replies_out.send(Reply {
            after_ready: self.shared.syncs_sent(),
            bytes: Bytes::new(),
            close_after: true,
        });
        true
    }

    /// The two directions of one connection, wired to each other.
    pub(super) fn pair(gate: StartupGate) -> (Self, Self) {
        let shared = Arc::new(PgShared::default());
        let (to_client, from_server_side) = mpsc::unbounded_channel();
        let (to_server, from_client_side) = mpsc::unbounded_channel();
        let upstream = Self {
            shared: shared.clone(),
            gate: Some(gate),
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
}

struct Stage {
    fault: Arc<Fault>,
    /// `None` when the fault's toxicity roll left this connection alone.
    instance: Option<Instance>,
}

/// A fault's plugin instance on this direction.
enum Instance {
    Tcp(Filter),
    /// With the messages it has been given only in part.
    Postgres(Session, Framer),
}

/// What a frame still has to do: a TCP step, or a Postgres reply.
enum Op {
    Step(Step),
    Reply(Bytes),
}

fn tcp_ops(steps: Vec<Step>) -> VecDeque<Op> {
    steps.into_iter().map(Op::Step).collect()
}

fn pg_ops(actions: Vec<PgAction>) -> VecDeque<Op> {
    actions
        .into_iter()
        .map(|action| match action {
            PgAction::Step(step) => Op::Step(step),
            PgAction::Reply(bytes) => Op::Reply(bytes.into()),
        })
        .collect()
}

enum Pending {
    Data { data: Bytes, arrived: Instant },
    Eof,
}

#[derive(PartialEq)]
enum FrameKind {
    /// A piece of data inside a fault; what it passes on goes to the next fault.
    Data,
    /// Steps from `on-open` or `on-close`; what they write goes to the socket.
    Host,
    /// A Postgres fault has whole messages waiting in its framer.
    Framing,
}

struct Frame {
    fault_id: u64,
    kind: FrameKind,
    data: Bytes,
    steps: VecDeque<Op>,
    /// When the next step may run: starts at arrival, `sleep` moves it on.
    cursor: Instant,
    /// End of the furthest byte passed on, for abandoning the frame.
    passed: usize,
}

enum Wait {
    /// Nothing to do until data arrives.
    Idle,
    Until(Instant),
    /// Read nothing until the holding fault goes.
    Hold,
    /// The end of stream was passed on.
    Finished,
}

impl Pump {
    pub(super) fn new(
        direction: Direction,
        conn: Arc<ConnShared>,
        context: ConnContext,
        seed: u64,
        stats: Arc<Stats>,
        chain: watch::Receiver<Arc<Chain>>,
        pg: Option<PgPump>,
    ) -> Self {
        Self {
            direction,
            conn,
            context,
            seed,
            stats,
            chain,
            stages: Vec::new(),
            frames: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            eof_read: false,
            closing: false,
            pg,
        }
    }

    /// Runs until the end of stream has been passed on (`Ok`) or the
    /// connection is ending (`Err`).
    pub(super) async fn run<W: AsyncWrite + Unpin>(
        &mut self,
        reader: &mut impl Source,
        writer: &mut W,
    ) -> Result<(), Ended> {
        self.chain.mark_changed();
        loop {
            let wait = self.advance(writer).await?;
            if let Wait::Finished = wait {
                return writer.shutdown().await.map_err(|e| self.io_failed(e));
            }
            let can_read =
                !self.eof_read && self.queued_bytes < MAX_READ_AHEAD && !matches!(wait, Wait::Hold);
            let deadline = match wait {
                Wait::Until(at) => Some(tokio::time::Instant::from_std(at)),
                _ => None,
            };
            self.deliver_replies(writer).await?;
            let can_take_reply = self.pg.as_ref().is_some_and(|pg| pg.held.is_none());
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => {
                    if self.conn.ending() == Some(Ending::Close) {
                        self.flush_replies(writer).await;
                    }
                    return Err(Ended);
                }
                reply = next_reply(&mut self.pg), if can_take_reply => {
                    if let Some(pg) = &mut self.pg {
                        pg.held = Some(reply);
                    }
                }
                changed = self.chain.changed() => match changed {
                    Ok(()) => self.sync_chain(writer).await?,
                    // The proxy was deleted; it is closing its connections.
                    Err(_) => return Err(Ended),
                },
                _ = sleep_until(deadline), if deadline.is_some() => {}
                read = reader.read_chunk(), if can_read => {
                    let data = read.map_err(|e| self.io_failed(e))?;
                    if data.is_empty() {
                        self.eof_read = true;
                        self.queue.push_back(Pending::Eof);
                    } else if let Some(data) = self.through_gate(data)? {
                        if self.session_starts() {
                            self.sync_chain(writer).await?;
                        }
                        self.queued_bytes += data.len();
                        self.queue.push_back(Pending::Data { data, arrived: Instant::now() });
                    }
                }
            }
        }
    }

    /// In `postgres` mode, the client's bytes pass the startup gate first:
    /// TLS requests are answered there. Returns what goes on to the faults.
    fn through_gate(&mut self, data: Bytes) -> Result<Option<Bytes>, Ended> {
        let Some(pg) = &mut self.pg else {
            return Ok(Some(data));
        };
        let Some(gate) = &mut pg.gate else {
            return Ok(Some(data));
        };
        match gate.take(data, &pg.shared) {
            Ok(gated) => {
                if !gated.answer.is_empty() {
                    pg.reply(gated.answer.into());
                }
                Ok(gated.forward.filter(|f| !f.is_empty()))
            }
            Err(malformed) => Err(self.malformed(malformed)),
        }
    }

    /// In `postgres` mode, whether the data just read is the first after the
    /// startup handshake on this direction, so Postgres faults join now.
    /// A session relayed opaquely (TLS passed through) never starts.
    fn session_starts(&mut self) -> bool {
        match &mut self.pg {
            Some(pg) if !pg.started && !pg.shared.opaque() => {
                pg.started = true;
                true
            }
            _ => false,
        }
    }

    /// Writes the replies whose turn has come: between two whole messages,
    /// after the answers to what was sent before them.
    async fn deliver_replies<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
    ) -> Result<(), Ended> {
        loop {
            let Some(pg) = &mut self.pg else {
                return Ok(());
            };
            if pg.held.is_none() {
                pg.held = pg.replies_in.try_recv().ok();
            }
            let due = match &pg.held {
                Some(reply) => {
                    // Only replies to the client wait for the server's answers.
                    let ready = if pg.gate.is_some() {
                        u64::MAX
                    } else {
                        pg.shared.readies_delivered()
                    };
                    self.frames.is_empty() && pg.written.at_boundary() && reply.after_ready <= ready
                }
                None => false,
            };
            if !due {
                return Ok(());
            }
            let reply = pg.held.take().expect("checked above");
            // Written as is: a reply is whole messages, and it answers no
            // sync point the server saw, so it is not counted.
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => return Err(Ended),
                written = writer.write_all(&reply.bytes) => written.map_err(|e| self.io_failed(e))?,
            }
            if reply.close_after {
                return Err(self.conn.end(Ending::Close));
            }
        }
    }

    /// Writes the replies still queued for this pump's peer, briefly: a fault
    /// that sends an error and closes wants the error seen.
    async fn flush_replies<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) {
        let Some(pg) = &mut self.pg else { return };
        let mut replies: Vec<Bytes> = pg.held.take().map(|r| r.bytes).into_iter().collect();
        while let Ok(reply) = pg.replies_in.try_recv() {
            replies.push(reply.bytes);
        }
        let flush = async {
            for reply in replies {
                if writer.write_all(&reply).await.is_err() {
                    return;
                }
            }
            let _ = writer.flush().await;
        };
        let _ = tokio::time::timeout(REPLY_FLUSH_TIMEOUT, flush).await;
    }

    fn malformed(&self, malformed: Malformed) -> Ended {
        let side = match self.direction {
            Direction::Upstream => "the client",
            Direction::Downstream => "the server",
        };
        tracing::warn!(proxy = %self.context.proxy, conn = self.context.id, "{malformed} from {side}; closing the connection");
        self.conn.end(Ending::Close)
    }

    /// Runs every step that can run now; says what to wait for next.
    async fn advance<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> Result<Wait, Ended> {
        loop {
            let Some(top) = self.frames.last_mut() else {
                match self.queue.pop_front() {
                    Some(Pending::Data { data, arrived }) => {
                        self.queued_bytes -= data.len();
                        self.emit(0, data, arrived, writer).await?;
                        continue;
                    }
                    Some(Pending::Eof) => {
                        self.begin_close().await?;
                        continue;
                    }
                    None if self.closing => return Ok(Wait::Finished),
                    None => return Ok(Wait::Idle),
                }
            };
            if top.kind == FrameKind::Framing {
                let fault_id = top.fault_id;
                self.next_message(fault_id).await?;
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
                Some(Op::Reply(bytes)) => {
                    if let Some(pg) = &self.pg {
                        pg.reply(bytes);
                    }
                    continue;
                }
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
                        let fault_id = top.fault_id;
                        return Err(self.bad_step(fault_id, reason));
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
                    return Ok(Wait::Hold);
                }
                Step::Close => {
                    // In `postgres` mode the client's side lets the other
                    // pump close, after the replies queued there; this pump
                    // stops now.
                    if self.pg.as_ref().is_some_and(PgPump::close_after_replies) {
                        return Err(Ended);
                    }
                    return Err(self.conn.end(Ending::Close));
                }
                Step::Reset => return Err(self.conn.end(Ending::Reset)),
            };
            let (at, host_frame, fault_id) =
                (top.cursor, top.kind == FrameKind::Host, top.fault_id);
            let next = self.next_stage(host_frame, fault_id);
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
        let opaque = self.pg.as_ref().is_some_and(|pg| pg.shared.opaque());
        while stage < self.stages.len()
            && match &self.stages[stage].instance {
                None => true,
                // Postgres faults do not see a connection relayed opaquely.
                Some(Instance::Postgres(..)) => opaque,
                Some(Instance::Tcp(_)) => false,
            }
        {
            stage += 1;
        }
        let Some(Stage {
            fault,
            instance: Some(instance),
        }) = self.stages.get_mut(stage)
        else {
            return self.write(writer, &piece).await;
        };
        let fault_id = fault.id;
        match instance {
            Instance::Tcp(filter) => {
                let steps = match filter.on_data(&piece, clock::micros(at)).await {
                    Ok(steps) => steps,
                    Err(e) => return Err(self.plugin_failed(e)),
                };
                self.frames.push(Frame {
                    fault_id,
                    kind: FrameKind::Data,
                    data: piece,
                    steps: tcp_ops(steps),
                    cursor: at,
                    passed: 0,
                });
            }
            Instance::Postgres(_, framer) => {
                // The fault gets whole messages: collect, then hand them
                // over one at a time (see `next_message`).
                framer.push(&piece, at);
                self.frames.push(Frame {
                    fault_id,
                    kind: FrameKind::Framing,
                    data: Bytes::new(),
                    steps: VecDeque::new(),
                    cursor: at,
                    passed: 0,
                });
            }
        }
        Ok(())
    }

    /// The Postgres fault `fault_id` takes its next whole message, if one is
    /// in; its actions become a frame. With none left, its framing frame goes.
    async fn next_message(&mut self, fault_id: u64) -> Result<(), Ended> {
        let stage = self.stages.iter_mut().find(|s| s.fault.id == fault_id);
        let Some(Stage {
            instance: Some(Instance::Postgres(session, framer)),
            ..
        }) = stage
        else {
            self.frames.pop();
            return Ok(());
        };
        let framed = match framer.pop() {
            Ok(Some(framed)) => framed,
            Ok(None) => {
                self.frames.pop();
                return Ok(());
            }
            Err(malformed) => return Err(self.malformed(malformed)),
        };
        let actions = match session
            .on_message(framed.tag, &framed.bytes, clock::micros(framed.arrived))
            .await
        {
            Ok(actions) => actions,
            Err(e) => return Err(self.plugin_failed(e)),
        };
        self.frames.push(Frame {
            fault_id,
            kind: FrameKind::Data,
            data: framed.bytes,
            steps: pg_ops(actions),
            cursor: framed.arrived,
            passed: 0,
        });
        Ok(())
    }

    /// Where what a frame passes on goes next.
    fn next_stage(&self, host_frame: bool, fault_id: u64) -> usize {
        if host_frame {
            return self.stages.len();
        }
        self.stages
            .iter()
            .position(|s| s.fault.id == fault_id)
            .map_or(self.stages.len(), |i| i + 1)
    }

    async fn write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        data: &[u8],
    ) -> Result<(), Ended> {
        if let Some(pg) = &mut self.pg
            && !pg.shared.opaque()
        {
            let client_side = pg.gate.is_some();
            pg.written.observe(data, |tag| match (client_side, tag) {
                // The startup packet is answered by a ReadyForQuery too.
                (true, 0 | b'Q' | b'S') => pg.shared.sync_sent(),
                (false, b'Z') => pg.shared.ready_delivered(),
                _ => {}
            });
        }
        tokio::select! {
            biased;
            _ = self.conn.cancel.cancelled() => Err(Ended),
            written = writer.write_all(data) => written.map_err(|e| self.io_failed(e)),
        }
    }

    /// Brings the stages in line with the proxy's current chain.
    async fn sync_chain<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> Result<(), Ended> {
        let chain = self.chain.borrow_and_update().clone();
        let wanted: Vec<Arc<Fault>> = chain
            .faults
            .iter()
            .filter(|f| f.stream == self.direction && self.runs(f.plugin.kind()))
            .cloned()
            .collect();
        let gone = |id: u64| !wanted.iter().any(|f| f.id == id);

        // Work inside a fault that is gone is abandoned: the frames above it
        // hold data it passed on earlier, so they are flushed first.
        if let Some(first_gone) = self.frames.iter().position(|f| gone(f.fault_id)) {
            let abandoned: Vec<Frame> = self.frames.drain(first_gone..).rev().collect();
            for frame in abandoned {
                if frame.kind == FrameKind::Data && frame.passed < frame.data.len() {
                    self.write(writer, &frame.data[frame.passed..]).await?;
                }
            }
        }
        // A Postgres fault that goes may hold messages it had not been given
        // yet; they came after everything above.
        let mut leftovers = Vec::new();
        for stage in self.stages.iter_mut().filter(|s| gone(s.fault.id)) {
            if let Some(Instance::Postgres(_, framer)) = &mut stage.instance {
                leftovers.push(framer.take_rest());
            }
        }
        for rest in leftovers {
            self.write(writer, &rest).await?;
        }

        let mut old = std::mem::take(&mut self.stages);
        let mut fresh = Vec::new();
        for fault in wanted {
            if let Some(i) = old.iter().position(|s| s.fault.id == fault.id) {
                // The same fault, perhaps rebound to a replaced plugin: the
                // instance it already has here stays until the connection ends.
                let kept = old.swap_remove(i);
                self.stages.push(Stage {
                    fault,
                    instance: kept.instance,
                });
                continue;
            }
            let direction = match self.direction {
                Direction::Upstream => 1,
                Direction::Downstream => 2,
            };
            let instance = match fault.roll(self.seed, self.context.id, direction) {
                Some(random_seed) => {
                    let context = ConnContext {
                        random_seed,
                        ..self.context.clone()
                    };
                    match Instance::make(&fault, &context).await {
                        Ok(instance) => {
                            self.stats.plugin_instances.inc();
                            self.stats.faults_injected.inc();
                            Some(instance)
                        }
                        Err(e) => return Err(self.plugin_failed(e)),
                    }
                }
                None => None,
            };
            fresh.push(self.stages.len());
            self.stages.push(Stage { fault, instance });
        }

        // New faults run their on-open steps first, in chain order.
        let mut opening = Vec::new();
        for i in fresh {
            let Stage {
                fault,
                instance: Some(instance),
            } = &mut self.stages[i]
            else {
                continue;
            };
            let fault_id = fault.id;
            match instance.on_open().await {
                Ok(ops) if ops.is_empty() => {}
                Ok(ops) => opening.push(host_frame(fault_id, ops)),
                Err(e) => return Err(self.plugin_failed(e)),
            }
        }
        self.frames.extend(opening.into_iter().rev());
        Ok(())
    }

    /// Which kinds of fault this pump runs: TCP faults always, Postgres
    /// faults in `postgres` mode once the session has started. (HTTP faults run in the HTTP layer.)
    fn runs(&self, kind: PluginKind) -> bool {
        match kind {
            PluginKind::Tcp => true,
            PluginKind::Postgres => self.pg.as_ref().is_some_and(|pg| pg.started),
            PluginKind::Http => false,
        }
    }

    /// The sender finished: let every fault have its say before the end of
    /// stream is passed on.
    async fn begin_close(&mut self) -> Result<(), Ended> {
        self.closing = true;
        let mut closing = Vec::new();
        for stage in &mut self.stages {
            let Some(instance) = &mut stage.instance else {
                continue;
            };
            match instance.on_close().await {
                Ok(ops) if ops.is_empty() => {}
                Ok(ops) => closing.push(host_frame(stage.fault.id, ops)),
                Err(e) => return Err(self.plugin_failed(e)),
            }
        }
        self.frames.extend(closing.into_iter().rev());
        Ok(())
    }

    fn plugin_failed(&self, error: PluginError) -> Ended {
        self.stats.plugin_failures.inc();
        tracing::warn!(
            proxy = %self.context.proxy,
            conn = self.context.id,
            "{error}; closing the connection"
        );
        self.conn.end(Ending::Close)
    }

    fn bad_step(&self, fault_id: u64, reason: String) -> Ended {
        let plugin = self
            .stages
            .iter()
            .find(|s| s.fault.id == fault_id)
            .map_or_else(String::new, |s| s.fault.plugin.name().to_owned());
        self.plugin_failed(PluginError::BadStep { plugin, reason })
    }

    fn io_failed(&self, error: std::io::Error) -> Ended {
        tracing::debug!(proxy = %self.context.proxy, conn = self.context.id, %error, "connection error");
        let how = if error.kind() == std::io::ErrorKind::ConnectionReset {
            Ending::Reset
        } else {
            Ending::Close
        };
        self.conn.end(how)
    }
}

impl Instance {
    async fn make(fault: &Fault, context: &ConnContext) -> Result<Self, PluginError> {
        let attributes = &fault.contract_attributes;
        Ok(match fault.plugin.kind() {
            PluginKind::Postgres => Self::Postgres(
                fault.plugin.open_session(context, attributes).await?,
                Framer::new(context.stream == Direction::Upstream),
            ),
            _ => Self::Tcp(fault.plugin.open(context, attributes).await?),
        })
    }

    async fn on_open(&mut self) -> Result<VecDeque<Op>, PluginError> {
        Ok(match self {
            Self::Tcp(filter) => tcp_ops(filter.on_open().await?),
            Self::Postgres(session, _) => pg_ops(session.on_open().await?),
        })
    }

    async fn on_close(&mut self) -> Result<VecDeque<Op>, PluginError> {
        Ok(match self {
            Self::Tcp(filter) => tcp_ops(filter.on_close().await?),
            Self::Postgres(session, _) => pg_ops(session.on_close().await?),
        })
    }
}

/// The next reply for this pump's peer; never, outside `postgres` mode.
async fn next_reply(pg: &mut Option<PgPump>) -> Reply {
    match pg {
        Some(pg) => match pg.replies_in.recv().await {
            Some(reply) => reply,
            // The other pump is gone; so is the connection, shortly.
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

fn host_frame(fault_id: u64, steps: VecDeque<Op>) -> Frame {
    Frame {
        fault_id,
        kind: FrameKind::Host,
        data: Bytes::new(),
        steps,
        cursor: Instant::now(),
        passed: 0,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
