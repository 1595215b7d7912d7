//! What an open connection is doing now, for `GET /proxies/{p}/connections`:
//! its age, the bytes passed on each way, the faults acting on it and
//! whether one holds it; and the table of a proxy's open connections.
//!
//! The pumps write these as they go (a relaxed add per write, a store only
//! when something changes), and the control API reads them; neither waits
//! on the other. The table is on the accept path, so it is split in shards,
//! each with a lock held only to insert or remove one entry or to copy the
//! shard out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Connection;
use crate::plugin_host::Direction;

/// What one connection is doing now.
#[derive(Debug)]
pub struct Live {
    opened: Instant,
    /// Bytes written to the upstream, and to the client.
    bytes: [AtomicU64; 2],
    /// Whether a fault holds each direction now (a `hold` step waiting).
    held: [AtomicBool; 2],
    /// The ids of the faults acting on each direction (those whose roll
    /// picked the connection), as the pump last set them.
    acting: [Mutex<Box<[u64]>>; 2],
}

impl Default for Live {
    fn default() -> Self {
        Self {
            opened: Instant::now(),
            bytes: Default::default(),
            held: Default::default(),
            acting: Default::default(),
        }
    }
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Upstream => 0,
        Direction::Downstream => 1,
    }
}

impl Live {
    pub fn age_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Counts bytes written on toward `direction`'s peer.
    pub fn wrote(&self, direction: Direction, bytes: usize) {
        self.bytes[index(direction)].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[index(direction)].load(Ordering::Relaxed)
    }

    pub fn set_held(&self, direction: Direction, held: bool) {
        self.held[index(direction)].store(held, Ordering::Relaxed);
    }

    /// Whether a fault holds either direction now.
    pub fn held(&self) -> bool {
        self.held.iter().any(|h| h.load(Ordering::Relaxed))
    }

    /// The faults acting on `direction` now, by id.
    pub fn set_acting(&self, direction: Direction, fault_ids: Vec<u64>) {
        let mut acting = self.acting[index(direction)].lock().unwrap();
        if **acting != *fault_ids {
            *acting = fault_ids.into_boxed_slice();
        }
    }

    /// The faults acting on either direction now, by id.
    pub fn acting(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .acting
            .iter()
            .flat_map(|a| a.lock().unwrap().to_vec())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Shards of the table: a power of two, so a connection's is its id's low
/// bits.
const SHARDS: usize = 16;

/// A proxy's open connections, by id.
#[derive(Default)]
pub struct LiveTable {
    shards: [Mutex<HashMap<u64, Arc<Connection>>>; SHARDS],
}

/// A connection's place in the table: it leaves the table when this drops.
pub struct Listed {
    table: Arc<LiveTable>,
    id: u64,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.table.shard(self.id).lock().unwrap().remove(&self.id);
    }
}

impl LiveTable {
    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, Arc<Connection>>> {
        &self.shards[id as usize % SHARDS]
    }

    /// Lists `conn` until the returned guard drops.
    pub fn insert(self: &Arc<Self>, conn: Arc<Connection>) -> Listed {
        let id = conn.id;
        self.shard(id).lock().unwrap().insert(id, conn);
        Listed {
            table: self.clone(),
            id,
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<Connection>> {
        self.shard(id).lock().unwrap().get(&id).cloned()
    }

    /// Every open connection, by id.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<Arc<Connection>> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().unwrap().values().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_unstable_by_key(|c| c.id);
        all
    }
}
