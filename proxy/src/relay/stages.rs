//! The faults on one direction of a connection, in chain order, each with
//! this connection's resource in the fault's plugin instance: opened when
//! the fault first applies, kept while the fault stays in the chain (a fault
//! rebound to a replaced plugin keeps the old plugin's resource here),
//! dropped when it goes.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::conn::Connection;
use crate::faults::Fault;
use crate::plugin_host::{
    AnyInstance, ConnContext, Direction, Filter, Fresh, PluginError, Session,
};
use crate::postgres::Framer;

use super::frames::{Frame, Op, pg_ops, tcp_ops};
use super::streamed::Streamed;

/// One fault on this direction.
pub(super) struct Stage {
    pub fault: Arc<Fault>,
    /// `None` when the fault's toxicity roll left this connection alone.
    pub instance: Option<Instance>,
    /// When the fault asked to be woken (a `wake` step).
    pub wake_at: Option<Instant>,
}

/// This connection's resource in a fault's plugin instance.
pub(super) enum Instance {
    Tcp(Filter),
    Postgres(PgStage),
}

/// A Postgres fault's session, with what it holds of this direction's
/// messages.
pub(super) struct PgStage {
    pub session: Session,
    /// The messages it has been given only in part.
    pub framer: Framer,
    /// What is left of its steps on a message streaming past it.
    pub streamed: Option<Streamed>,
}

/// The stages of one direction.
#[derive(Default)]
pub(super) struct Stages {
    stages: Vec<Stage>,
    /// Completes when one of the stages' plugin instances fails, by index.
    failures: Vec<(usize, Pin<Box<WaitForCancellationFutureOwned>>)>,
}

impl Stages {
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Stage> {
        self.stages.get_mut(index)
    }

    pub fn get(&self, index: usize) -> Option<&Stage> {
        self.stages.get(index)
    }

    /// The faults acting on this direction: those that picked the connection.
    pub fn acting(&self) -> Vec<u64> {
        self.stages
            .iter()
            .filter(|s| s.instance.is_some())
            .map(|s| s.fault.id)
            .collect()
    }

    /// The stage of fault `fault_id`.
    pub fn find_mut(&mut self, fault_id: u64) -> Option<&mut Stage> {
        self.stages.iter_mut().find(|s| s.fault.id == fault_id)
    }

    /// The stage after fault `fault_id`'s, where what it passes on goes.
    pub fn after(&self, fault_id: u64) -> usize {
        self.stages
            .iter()
            .position(|s| s.fault.id == fault_id)
            .map_or(self.stages.len(), |i| i + 1)
    }

    /// Fault `fault_id`, if it is still on this direction.
    pub fn fault(&self, fault_id: u64) -> Option<&Arc<Fault>> {
        self.stages
            .iter()
            .find(|s| s.fault.id == fault_id)
            .map(|s| &s.fault)
    }

    /// The plugin of fault `fault_id`, for messages.
    pub fn plugin_name(&self, fault_id: u64) -> String {
        self.stages
            .iter()
            .find(|s| s.fault.id == fault_id)
            .map_or_else(String::new, |s| s.fault.plugin.name().to_owned())
    }

    /// `wanted`, with every Postgres fault that a message is streaming past
    /// kept in its place: such a fault answered for the whole message at its
    /// head, so it leaves only once the message has passed (the pump then
    /// brings the stages in line again).
    pub fn keeping_streams(&self, mut wanted: Vec<Arc<Fault>>) -> Vec<Arc<Fault>> {
        for (i, stage) in self.stages.iter().enumerate() {
            let streaming = matches!(
                &stage.instance,
                Some(Instance::Postgres(pg)) if pg.framer.streaming()
            );
            if streaming && !wanted.iter().any(|f| f.id == stage.fault.id) {
                wanted.insert(i.min(wanted.len()), stage.fault.clone());
            }
        }
        wanted
    }

    /// What the Postgres faults not in `wanted` hold of messages they had
    /// not been given yet.
    pub fn leftovers_of_gone(&mut self, wanted: &[Arc<Fault>]) -> Vec<bytes::Bytes> {
        self.stages
            .iter_mut()
            .filter(|s| !wanted.iter().any(|f| f.id == s.fault.id))
            .filter_map(|s| match &mut s.instance {
                Some(Instance::Postgres(pg)) => Some(pg.framer.take_rest()),
                _ => None,
            })
            .collect()
    }

    /// Makes the stages `wanted`, in its order: a fault already here keeps
    /// its instance; a new one rolls its toxicity and, if it applies, gets
    /// a fresh instance. Returns the frames of the new instances' `on-open`
    /// steps, to run first (the first fault's on top).
    pub async fn replace(
        &mut self,
        wanted: Vec<Arc<Fault>>,
        conn: &Connection,
        direction: Direction,
    ) -> Result<Vec<Frame>, PluginError> {
        let mut old = std::mem::take(&mut self.stages);
        // Exactly as many as wanted: a stage is a few hundred bytes, and an
        // idle connection should not hold room for stages it never gets.
        self.stages.reserve_exact(wanted.len());
        let mut fresh = Vec::new();
        for fault in wanted {
            if let Some(i) = old.iter().position(|s| s.fault.id == fault.id) {
                // The same fault, perhaps rebound to a replaced plugin: the
                // instance it already has here stays until the connection ends.
                let kept = old.swap_remove(i);
                self.stages.push(Stage { fault, ..kept });
                continue;
            }
            let salt = match direction {
                Direction::Upstream => 1,
                Direction::Downstream => 2,
            };
            let admitted = fault.admits(conn.client.ip());
            let rolled = admitted
                .then(|| fault.roll(conn.seed, conn.id, salt))
                .flatten();
            let instance = match rolled {
                Some(random_seed) => {
                    let context = conn.plugin_context(direction, random_seed);
                    let (instance, Fresh(fresh)) = Instance::make(&fault, &context).await?;
                    if fresh {
                        conn.stats.plugin_instances.inc();
                    }
                    conn.stats.faults_injected.inc();
                    Some(instance)
                }
                None => None,
            };
            fresh.push(self.stages.len());
            self.stages.push(Stage {
                fault,
                instance,
                wake_at: None,
            });
        }
        self.watch_failures();

        let mut opening = Vec::new();
        for i in fresh {
            let Stage {
                fault,
                instance: Some(instance),
                ..
            } = &mut self.stages[i]
            else {
                continue;
            };
            let ops = instance.on_open().await?;
            if !ops.is_empty() {
                opening.push(Frame::host(fault.id, ops));
            }
        }
        opening.reverse();
        Ok(opening)
    }

    /// Watches the plugin instances the stages hold resources in.
    fn watch_failures(&mut self) {
        self.failures = self
            .stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, Box::pin(s.instance.as_ref()?.failed()))))
            .collect();
    }

    /// Completes when a plugin instance this direction uses has failed,
    /// with the error naming it; never while none does.
    pub async fn failed(&mut self) -> PluginError {
        let index = poll_fn(|cx| {
            for (index, failed) in &mut self.failures {
                if failed.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(*index);
                }
            }
            Poll::Pending
        })
        .await;
        let plugin = self.stages[index].fault.plugin.name().to_owned();
        let reason = self.stages[index]
            .fault
            .instance
            .failures()
            .last()
            .unwrap_or_default();
        PluginError::Failed { plugin, reason }
    }

    /// The earliest time a fault asked to be woken.
    pub fn next_wake(&self) -> Option<Instant> {
        self.stages.iter().filter_map(|s| s.wake_at).min()
    }

    /// Asks that fault `fault_id` be woken at `at`.
    pub fn wake(&mut self, fault_id: u64, at: Instant) {
        if let Some(stage) = self.find_mut(fault_id) {
            stage.wake_at = Some(at);
        }
    }

    /// The `on-wake` steps of every fault whose time has come (the first
    /// fault's on top).
    pub async fn woken(&mut self, now: Instant) -> Result<Vec<Frame>, PluginError> {
        let mut woken = Vec::new();
        for stage in &mut self.stages {
            if stage.wake_at.is_none_or(|at| at > now) {
                continue;
            }
            stage.wake_at = None;
            let Some(instance) = &mut stage.instance else {
                continue;
            };
            let ops = instance.on_wake().await?;
            if !ops.is_empty() {
                woken.push(Frame::host(stage.fault.id, ops));
            }
        }
        woken.reverse();
        Ok(woken)
    }

    /// The sender finished: every fault's `on-close` steps, to run before
    /// the end of stream is passed on (the first fault's on top).
    pub async fn closing(&mut self) -> Result<Vec<Frame>, PluginError> {
        let mut closing = Vec::new();
        for stage in &mut self.stages {
            let Some(instance) = &mut stage.instance else {
                continue;
            };
            let ops = instance.on_close().await?;
            if !ops.is_empty() {
                closing.push(Frame::host(stage.fault.id, ops));
            }
        }
        closing.reverse();
        Ok(closing)
    }
}

impl Instance {
    /// This connection's resource in the fault's instance; `Fresh(true)`
    /// when the instance was made for it (the last one had failed).
    async fn make(fault: &Fault, context: &ConnContext) -> Result<(Self, Fresh), PluginError> {
        let (instance, fresh) = fault.instance.get().await?;
        let made = match instance {
            AnyInstance::Tcp(shared) => Self::Tcp(Filter::open(&shared, context).await?),
            AnyInstance::Postgres(shared) => Self::Postgres(PgStage {
                session: Session::open(&shared, context).await?,
                framer: Framer::new(context.stream == Direction::Upstream),
                streamed: None,
            }),
            AnyInstance::Http(shared) => {
                return Err(PluginError::Call {
                    plugin: shared.plugin().name().to_owned(),
                    what: "open",
                    reason: "an HTTP fault runs per request, not on a byte stream".into(),
                });
            }
        };
        Ok((made, fresh))
    }

    fn failed(&self) -> WaitForCancellationFutureOwned {
        match self {
            Self::Tcp(filter) => filter.failed(),
            Self::Postgres(pg) => pg.session.failed(),
        }
    }

    async fn on_open(&mut self) -> Result<VecDeque<Op>, PluginError> {
        Ok(match self {
            Self::Tcp(filter) => tcp_ops(filter.on_open().await?),
            Self::Postgres(pg) => pg_ops(pg.session.on_open().await?),
        })
    }

    async fn on_wake(&mut self) -> Result<VecDeque<Op>, PluginError> {
        Ok(match self {
            Self::Tcp(filter) => tcp_ops(filter.on_wake().await?),
            Self::Postgres(pg) => pg_ops(pg.session.on_wake().await?),
        })
    }

    async fn on_close(&mut self) -> Result<VecDeque<Op>, PluginError> {
        Ok(match self {
            Self::Tcp(filter) => tcp_ops(filter.on_close().await?),
            Self::Postgres(pg) => pg_ops(pg.session.on_close().await?),
        })
    }
}
