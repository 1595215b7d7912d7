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

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::Stats;
use super::connection::{ConnShared, Ended, Ending};
use super::stream::Source;
use crate::clock;
use crate::faults::{Chain, Fault};
use crate::plugin_host::{ConnContext, Direction, Filter, PluginError, PluginKind, Step};

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
}

struct Stage {
    fault: Arc<Fault>,
    /// `None` when the fault's toxicity roll left this connection alone.
    filter: Option<Filter>,
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
}

struct Frame {
    fault_id: u64,
    kind: FrameKind,
    data: Bytes,
    steps: VecDeque<Step>,
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
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => return Err(Ended),
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
                    } else {
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
            if top.cursor > Instant::now() {
                return Ok(Wait::Until(top.cursor));
            }
            let Some(step) = top.steps.pop_front() else {
                self.frames.pop();
                continue;
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
                    top.steps.push_front(Step::Hold);
                    return Ok(Wait::Hold);
                }
                Step::Close => return Err(self.conn.end(Ending::Close)),
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
        while stage < self.stages.len() && self.stages[stage].filter.is_none() {
            stage += 1;
        }
        let Some(Stage {
            fault,
            filter: Some(filter),
        }) = self.stages.get_mut(stage)
        else {
            return self.write(writer, &piece).await;
        };
        let fault_id = fault.id;
        let steps = match filter.on_data(&piece, clock::micros(at)).await {
            Ok(steps) => steps,
            Err(e) => return Err(self.plugin_failed(e)),
        };
        self.frames.push(Frame {
            fault_id,
            kind: FrameKind::Data,
            data: piece,
            steps: steps.into(),
            cursor: at,
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
            .filter(|f| f.stream == self.direction && f.plugin.kind() == PluginKind::Tcp)
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

        let mut old = std::mem::take(&mut self.stages);
        let mut fresh = Vec::new();
        for fault in wanted {
            if let Some(i) = old.iter().position(|s| s.fault.id == fault.id) {
                // The same fault, perhaps rebound to a replaced plugin: the
                // instance it already has here stays until the connection ends.
                let kept = old.swap_remove(i);
                self.stages.push(Stage {
                    fault,
                    filter: kept.filter,
                });
                continue;
            }
            let direction = match self.direction {
                Direction::Upstream => 1,
                Direction::Downstream => 2,
            };
            let filter = match fault.roll(self.seed, self.context.id, direction) {
                Some(random_seed) => {
                    let context = ConnContext {
                        random_seed,
                        ..self.context.clone()
                    };
                    match fault
                        .plugin
                        .open(&context, &fault.contract_attributes)
                        .await
                    {
                        Ok(filter) => {
                            self.stats.plugin_instances.inc();
                            self.stats.faults_injected.inc();
                            Some(filter)
                        }
                        Err(e) => return Err(self.plugin_failed(e)),
                    }
                }
                None => None,
            };
            fresh.push(self.stages.len());
            self.stages.push(Stage { fault, filter });
        }

        // New faults run their on-open steps first, in chain order.
        let mut opening = Vec::new();
        for i in fresh {
            let Stage {
                fault,
                filter: Some(filter),
            } = &mut self.stages[i]
            else {
                continue;
            };
            let fault_id = fault.id;
            match filter.on_open().await {
                Ok(steps) if steps.is_empty() => {}
                Ok(steps) => opening.push(host_frame(fault_id, steps)),
                Err(e) => return Err(self.plugin_failed(e)),
            }
        }
        self.frames.extend(opening.into_iter().rev());
        Ok(())
    }

    /// The sender finished: let every fault have its say before the end of
    /// stream is passed on.
    async fn begin_close(&mut self) -> Result<(), Ended> {
        self.closing = true;
        let mut closing = Vec::new();
        for stage in &mut self.stages {
            let Some(filter) = &mut stage.filter else {
                continue;
            };
            match filter.on_close().await {
                Ok(steps) if steps.is_empty() => {}
                Ok(steps) => closing.push(host_frame(stage.fault.id, steps)),
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

fn host_frame(fault_id: u64, steps: Vec<Step>) -> Frame {
    Frame {
        fault_id,
        kind: FrameKind::Host,
        data: Bytes::new(),
        steps: steps.into(),
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
