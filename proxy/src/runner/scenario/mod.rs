//! The scenario file: what it may say, and checking it before anything runs.
//!
//! The reference for people, every table and field with its type, default
//! and an example, is `docs/scenarios.md`; a test keeps it and the schema
//! generated from these types (`faultgate run --schema`) the same.
//!
//! ```toml
//! name = "a blackholed repository does not block a healthy one"
//!
//! [proxies.gitea]
//! api = "${FAULTGATE_API:-http://127.0.0.1:8474}"
//!
//! [[steps]]
//! fault = { proxy = "gitea", add = { type = "http_blackhole", attributes = { path_prefix = "/git/alpha.git/" } } }
//!
//! [[steps]]
//! name = "beta still answers"
//! http = { url = "${GIT}/git/beta.git/info/refs?service=git-upload-pack", expect = { status = 200 } }
//! ```
//!
//! Here: `kinds.rs` the step kinds (`holds` with an example in its
//! doc), `negative.rs` the checks of expectations that something must not happen,
//! `templates.rs` templates and includes, `file.rs` reading a file,
//! `env_values.rs` durations, names and the seed expanded from the
//! environment when read, `numbers.rs` statuses and exit codes written with
//! variables, `expanded.rs` which strings hold `${VAR}` at the step,
//! `before_run.rs` the checks made before running, `schema.rs` and
//! `schema_parts.rs` the JSON Schema.

mod before_run;
mod env_values;
mod expanded;
mod file;
mod kinds;
mod negative;
mod numbers;
#[cfg(test)]
mod reference_tests;
mod schema;
mod schema_parts;
pub mod templates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use kinds::{
    Action, CaptureStep, Check, ExecExpect, ExecStep, FaultOperation, FaultStep, HoldsStep,
    HttpExpect, HttpStep, SqlExpect, SqlStep, TcpFailure, TcpStep, WaitStep,
};

pub use schema::json_schema;

use crate::listener::Mode;
use crate::registry::deserialize_mode;
use crate::tls::ClientTls;

/// A scenario, read and checked.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Where it came from, for messages ("FILE:LINE").
    pub file: PathBuf,
    pub seed: Option<u64>,
    /// How `http` steps check `https://` servers (`ca`, `insecure`,
    /// `server_name`); by default against the system's CA certificates.
    pub tls: Option<ClientTls>,
    pub proxies: BTreeMap<String, ProxyRef>,
    pub setup: Vec<Step>,
    pub steps: Vec<Step>,
    pub teardown: Vec<Step>,
    /// `known_failure = "why"`: the system under test is known to fail
    /// this scenario. A run where a check fails counts as expected (exit
    /// 0, reported as KNOWN FAILURE); one where every step passes fails
    /// (exit 1: fixed? remove the mark).
    pub known_failure: Option<String>,
}

/// A proxy the scenario uses, by its name on a faultgate control API.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "proxies.NAME")]
pub struct ProxyRef {
    /// The control API, e.g. `http://127.0.0.1:8474`.
    pub api: String,
    /// Create the proxy for the run (and delete it after) when it does not
    /// exist.
    #[serde(default)]
    pub create: Option<ProxyCreate>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "proxies.NAME.create")]
pub struct ProxyCreate {
    pub listen: String,
    pub upstream: String,
    #[serde(default, deserialize_with = "deserialize_mode")]
    #[schemars(schema_with = "schema_parts::mode_schema")]
    pub mode: Option<Mode>,
}

/// One step, with where it is written.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// 1-based line of the step's table in the file (0 when built in code).
    pub line: usize,
    pub action: Action,
}

impl Step {
    /// A step built in code, which has no line.
    fn built(name: &str, action: Action) -> Self {
        Self {
            name: name.to_owned(),
            line: 0,
            action,
        }
    }
}

/// Why a scenario file was refused. Names the file, and the line when
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {error}")]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

impl Scenario {
    /// An empty scenario, to build in code (as a Rust test might).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            file: PathBuf::from(format!("<{name}>")),
            seed: None,
            tls: None,
            proxies: BTreeMap::new(),
            setup: Vec::new(),
            steps: Vec::new(),
            teardown: Vec::new(),
            known_failure: None,
        }
    }

    /// Declares a proxy on the control API at `api`.
    pub fn proxy(mut self, name: &str, api: &str) -> Self {
        self.proxies.insert(
            name.to_owned(),
            ProxyRef {
                api: api.to_owned(),
                create: None,
            },
        );
        self
    }

    /// Adds a step to `steps`.
    pub fn step(mut self, name: &str, action: Action) -> Self {
        self.steps.push(Step::built(name, action));
        self
    }

    /// Adds a step to `teardown`.
    pub fn teardown(mut self, name: &str, action: Action) -> Self {
        self.teardown.push(Step::built(name, action));
        self
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}
