//! What a step did over time, kept for the HTML report's timeline: each
//! attempt of a repeated check, each change it made to a proxy's faults,
//! and what it sent, expected and got back.
//!
//! Times are offsets from the start of the scenario, so that every step of
//! a scenario lies on one axis.

use std::time::{Duration, Instant};

/// One attempt of a `wait_until` check.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Duration,
    pub took: Duration,
    pub passed: bool,
    /// Why it did not hold.
    pub message: Option<String>,
}

/// What a `fault` step made true on a proxy.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultEffect {
    /// This fault is on now.
    Added(String),
    /// This fault is off now.
    Removed(String),
    /// Exactly these faults are on now.
    Chain(Vec<String>),
    /// The proxy was enabled (`true`) or disabled.
    Enabled(bool),
}

#[derive(Debug, Clone)]
pub struct FaultChange {
    pub at: Duration,
    pub proxy: String,
    pub effect: FaultEffect,
}

/// What the step sent, what it expected and what came back (the last
/// attempt's, for a repeated check). Bodies are already cut to size.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub sent: Option<String>,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub body: Option<String>,
}

/// A step's record, filled while it runs.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The scenario's start: every time here is counted from it.
    pub origin: Instant,
    pub attempts: Vec<Attempt>,
    pub faults: Vec<FaultChange>,
    pub detail: Detail,
}

impl Trace {
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            attempts: Vec::new(),
            faults: Vec::new(),
            detail: Detail::default(),
        }
    }

    /// Now, as an offset from the scenario's start.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub fn changed(&mut self, proxy: &str, effect: FaultEffect) {
        self.faults.push(FaultChange {
            at: self.now(),
            proxy: proxy.to_owned(),
            effect,
        });
    }
}
