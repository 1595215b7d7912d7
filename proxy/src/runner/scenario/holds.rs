//! The `holds` step: a check that must keep passing for a while, the
//! inverse of `wait_until`.
//!
//! ```toml
//! [[steps]]
//! holds = { for = "10s", every = "1s", check = { http = { url = "${OPAL}/healthcheck", expect = { within = "1s" } } } }
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::env_values;
use super::kinds::{Action, StepTable, nested_step};
use super::schema_parts::DurationText;

/// Repeat a check every `every` for `for`; the first miss fails the step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "holds")]
pub struct HoldsStep {
    /// How long the check must keep passing (`for` in files).
    #[serde(rename = "for", deserialize_with = "env_values::holds_for")]
    #[schemars(with = "DurationText")]
    pub duration: Duration,
    /// How long to wait between attempts (default 1 s).
    #[serde(
        default = "default_every",
        deserialize_with = "env_values::holds_every"
    )]
    #[schemars(with = "DurationText")]
    pub every: Duration,
    /// The check, written as a step is; each attempt is bounded by `every`
    /// (at least 1 s), so a hang is a miss, not a stall.
    #[serde(deserialize_with = "nested_step")]
    #[schemars(with = "StepTable")]
    pub check: Box<Action>,
}

fn default_every() -> Duration {
    Duration::from_secs(1)
}
