//! The recent events the live page (`GET /ui`) lists: faults added,
//! removed, updated or replaced, proxies created, deleted, enabled or
//! disabled, and connections a plugin failed. A bounded ring: the oldest
//! event goes when a new one comes past [`CAPACITY`].
//!
//! Plugin failures happen on the data path, which never waits on the
//! control path; they are not pushed here. The failure counters are read
//! when someone asks for the events ([`EventLog::observe`]), and a rise
//! since the last look becomes one event.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::listener::Proxy;

/// Events kept; older ones are dropped.
pub const CAPACITY: usize = 256;

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increasing from 1; a reader asks for those after the last it saw.
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `toxic_added`, `toxic_updated`, `toxic_removed`, `toxics_replaced`,
    /// `proxy_created`, `proxy_updated`, `proxy_deleted`, `proxy_enabled`,
    /// `proxy_disabled`, `reset`, `populated`, `plugin_failures`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toxic: Option<String>,
    /// What changed, in words.
    pub message: String,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<Event>,
    last_id: u64,
    /// Each proxy's plugin failure count at the last look.
    failures_seen: HashMap<String, u64>,
}

/// The ring, shared by the API's handlers.
#[derive(Default)]
pub struct EventLog {
    ring: Mutex<Ring>,
}

impl EventLog {
    pub fn push(
        &self,
        kind: &'static str,
        proxy: Option<&str>,
        toxic: Option<&str>,
        message: String,
    ) {
        let mut ring = self.ring.lock().unwrap();
        ring.last_id += 1;
        let event = Event {
            id: ring.last_id,
            at_ms: now_ms(),
            kind,
            proxy: proxy.map(str::to_owned),
            toxic: toxic.map(str::to_owned),
            message,
        };
        if ring.events.len() == CAPACITY {
            ring.events.pop_front();
        }
        ring.events.push_back(event);
    }

    /// Turns a rise of a proxy's plugin failure count since the last look
    /// into an event. A proxy seen for the first time counts from what it
    /// has now only if it already had failures.
    pub fn observe(&self, proxies: &[std::sync::Arc<Proxy>]) {
        let mut risen = Vec::new();
        {
            let mut ring = self.ring.lock().unwrap();
            for proxy in proxies {
                let now = proxy.stats().plugin_failures.get();
                let before = ring
                    .failures_seen
                    .insert(proxy.name().to_owned(), now)
                    .unwrap_or(0);
                if now > before {
                    let culprits: Vec<String> = proxy
                        .chain()
                        .faults
                        .iter()
                        .filter_map(|f| {
                            let view = f.view();
                            view.plugin_last_failure
                                .map(|why| format!("{} ({}): {why}", view.name, view.kind))
                        })
                        .collect();
                    risen.push((proxy.name().to_owned(), now - before, culprits));
                }
            }
            let names: Vec<&str> = proxies.iter().map(|p| p.name()).collect();
            ring.failures_seen
                .retain(|name, _| names.contains(&name.as_str()));
        }
        for (proxy, count, culprits) in risen {
            let mut message = format!(
                "{count} connection{} or request{} failed by a plugin",
                plural(count),
                plural(count)
            );
            if !culprits.is_empty() {
                message.push_str(": ");
                message.push_str(&culprits.join("; "));
            }
            self.push("plugin_failures", Some(&proxy), None, message);
        }
    }

    /// The events after `after` (all kept ones for 0), oldest first, and the
    /// last id given so far.
    pub fn after(&self, after: u64) -> (Vec<Event>, u64) {
        let ring = self.ring.lock().unwrap();
        let events = ring
            .events
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        (events, ring.last_id)
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_events_and_their_ids_go_on() {
        let log = EventLog::default();
        for i in 0..CAPACITY + 10 {
            log.push("toxic_added", Some("p"), Some("t"), format!("event {i}"));
        }
        let (all, last) = log.after(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(last, (CAPACITY + 10) as u64);
        assert_eq!(all[0].id, 11);
        assert_eq!(all[0].message, "event 10");
        let (newer, _) = log.after(last - 2);
        assert_eq!(
            newer.iter().map(|e| e.id).collect::<Vec<_>>(),
            [last - 1, last]
        );
    }
}
