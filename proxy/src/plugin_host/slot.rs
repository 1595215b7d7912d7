//! A fault's place for its instance: made when the toxic is attached, and
//! made afresh, with fresh fault state, for the next connection after it
//! failed. A plugin that keeps failing is not re-made in a tight loop: each
//! failure in a row doubles the wait before the next instance (100 ms, 200
//! ms, ... up to 10 s); connections that come meanwhile fail at once. An
//! instance that served for a minute before it failed starts the count over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bindings::{Attributes, HttpPlugin, PostgresPlugin, TcpPlugin};
use super::error::PluginError;
use super::kind::PluginKind;
use super::plugin::Plugin;
use super::shared::SharedInstance;

/// The wait after the first failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An instance that lived this long before it failed starts the count over.
const HEALTHY_LIFE: Duration = Duration::from_secs(60);

/// A fault's instance, of whichever kind its plugin is.
#[derive(Clone)]
pub enum AnyInstance {
    Tcp(Arc<SharedInstance<TcpPlugin>>),
    Http(Arc<SharedInstance<HttpPlugin>>),
    Postgres(Arc<SharedInstance<PostgresPlugin>>),
}

impl AnyInstance {
    fn has_failed(&self) -> bool {
        match self {
            Self::Tcp(i) => i.has_failed(),
            Self::Http(i) => i.has_failed(),
            Self::Postgres(i) => i.has_failed(),
        }
    }
}

/// Whether [`InstanceSlot::get`] made the instance it gives (for the
/// proxy's count of instances).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh(pub bool);

/// What a fault's failures have been, for the toxic's JSON and `/metrics`.
#[derive(Debug, Default)]
pub struct Failures {
    count: AtomicU64,
    /// Why the last one failed, and when.
    last: Mutex<Option<(String, Instant)>>,
}

impl Failures {
    /// Instances of the fault that failed.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Why the last one failed.
    pub fn last(&self) -> Option<String> {
        self.last
            .lock()
            .unwrap()
            .as_ref()
            .map(|(why, _)| why.clone())
    }

    fn last_at(&self) -> Option<Instant> {
        self.last.lock().unwrap().as_ref().map(|(_, at)| *at)
    }

    fn record(&self, reason: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap() = Some((reason.to_owned(), Instant::now()));
    }
}

/// The instance serving new connections; `None` from the moment it fails,
/// so its pool slot goes as soon as its connections have let go too.
type Current = Arc<Mutex<Option<AnyInstance>>>;

/// When the instance was made, and how a failure streak stands.
struct State {
    made_at: Instant,
    /// Failures in a row, and when the next instance may be made.
    streak: u32,
    retry_at: Option<Instant>,
}

/// A fault's instance, and how it is made again.
pub struct InstanceSlot {
    plugin: Arc<Plugin>,
    toxic: Arc<str>,
    attributes: Attributes,
    seed: u64,
    current: Current,
    /// Held while a fresh instance is made, so one is made at a time.
    state: tokio::sync::Mutex<State>,
    failures: Arc<Failures>,
}

impl InstanceSlot {
    /// Makes the fault's first instance: an error refuses the toxic.
    pub async fn new(
        plugin: &Arc<Plugin>,
        toxic: &str,
        attributes: &Attributes,
        seed: u64,
    ) -> Result<Self, PluginError> {
        let toxic: Arc<str> = toxic.into();
        let failures = Arc::new(Failures::default());
        let current = Current::default();
        let first = make(plugin, &toxic, attributes, seed, &failures, &current).await?;
        *current.lock().unwrap() = Some(first);
        Ok(Self {
            plugin: plugin.clone(),
            toxic,
            attributes: attributes.clone(),
            seed,
            current,
            state: tokio::sync::Mutex::new(State {
                made_at: Instant::now(),
                streak: 0,
                retry_at: None,
            }),
            failures,
        })
    }

    /// The instance for a new connection: the current one, or, once that
    /// failed and its wait is over, a fresh one (`Fresh(true)`).
    pub async fn get(&self) -> Result<(AnyInstance, Fresh), PluginError> {
        if let Some(current) = self.live() {
            return Ok((current, Fresh(false)));
        }
        let mut state = self.state.lock().await;
        // Another connection may have made it while this one waited.
        if let Some(current) = self.live() {
            return Ok((current, Fresh(false)));
        }
        let now = Instant::now();
        let retry_at = match state.retry_at {
            Some(at) => at,
            None => {
                let failed_at = self.failures.last_at().unwrap_or(now);
                let lived = failed_at.saturating_duration_since(state.made_at);
                state.streak = if lived >= HEALTHY_LIFE {
                    1
                } else {
                    state.streak + 1
                };
                let wait = FIRST_BACKOFF.saturating_mul(1 << (state.streak - 1).min(16));
                let at = failed_at + wait.min(MAX_BACKOFF);
                state.retry_at = Some(at);
                at
            }
        };
        if now < retry_at {
            return Err(PluginError::BackingOff {
                plugin: self.plugin.name.to_string(),
                wait: retry_at - now,
                reason: self.failures.last().unwrap_or_default(),
            });
        }
        let fresh = make(
            &self.plugin,
            &self.toxic,
            &self.attributes,
            self.seed,
            &self.failures,
            &self.current,
        )
        .await;
        state.retry_at = None;
        match fresh {
            Ok(fresh) => {
                tracing::info!(
                    plugin = %self.plugin.name,
                    toxic = ?&*self.toxic,
                    failures = self.failures.count(),
                    "a fresh instance (fresh fault state) serves the toxic's new connections"
                );
                *self.current.lock().unwrap() = Some(fresh.clone());
                state.made_at = Instant::now();
                Ok((fresh, Fresh(true)))
            }
            Err(error) => {
                // Making it failed too: that counts as a failure in the row.
                self.failures.record(&error.to_string());
                state.made_at = Instant::now();
                Err(error)
            }
        }
    }

    pub fn failures(&self) -> &Failures {
        &self.failures
    }

    /// The current instance, unless it failed.
    fn live(&self) -> Option<AnyInstance> {
        let current = self.current.lock().unwrap();
        current.as_ref().filter(|c| !c.has_failed()).cloned()
    }
}

async fn make(
    plugin: &Arc<Plugin>,
    toxic: &Arc<str>,
    attributes: &Attributes,
    seed: u64,
    failures: &Arc<Failures>,
    current: &Current,
) -> Result<AnyInstance, PluginError> {
    let (failures, current) = (failures.clone(), current.clone());
    let on_failure: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |reason| {
        failures.record(reason);
        // Let the failed instance go (it is the current one: an instance
        // fails once, and is replaced only after).
        let mut current = current.lock().unwrap();
        if current.as_ref().is_some_and(AnyInstance::has_failed) {
            *current = None;
        }
    });
    let toxic = toxic.clone();
    Ok(match plugin.kind() {
        PluginKind::Tcp => AnyInstance::Tcp(
            SharedInstance::make(plugin, toxic, attributes, seed, on_failure).await?,
        ),
        PluginKind::Http => AnyInstance::Http(
            SharedInstance::make(plugin, toxic, attributes, seed, on_failure).await?,
        ),
        PluginKind::Postgres => AnyInstance::Postgres(
            SharedInstance::make(plugin, toxic, attributes, seed, on_failure).await?,
        ),
    })
}
