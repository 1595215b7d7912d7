//! The scenario file: what it may say, and checking it before anything runs.
//!
//! ```toml
//! name = "a blackholed repository does not block a healthy one"
//! seed = 7                                  # optional; exported as ${SEED}
//!
//! [proxies.gitea]                           # every proxy the steps touch
//! api = "${FAULTGATE_API:-http://127.0.0.1:8474}"
//! # create = { listen = "127.0.0.1:13000", upstream = "127.0.0.1:3000", mode = "http" }
//!
//! [[setup]]                                 # setup, steps, teardown: lists of steps
//! fault = { proxy = "gitea", clear = true }
//!
//! [[steps]]
//! name = "alpha hangs"
//! fault = { proxy = "gitea", add = { type = "http_blackhole", attributes = { path_prefix = "/git/alpha.git/" } } }
//!
//! [[steps]]
//! name = "beta still answers"
//! http = { url = "${GIT}/git/beta.git/info/refs?service=git-upload-pack", expect = { status = 200, within = "2s" } }
//! ```
//!
//! A `fault` step does one of: `add` (a toxic), `remove` (by name), `replace`
//! (the whole chain), `clear = true`, `enabled = true|false`, or
//! `bounce = "5s"` (a Postgres bounce: 57P01 for every session, 57P03 for new
//! ones for that long, then back).
//!
//! Each step is a table with an optional `name` and exactly one kind:
//! `fault`, `http`, `wait_until`, `sleep`, `exec`, `tcp`, `sql`, `capture`
//! or `holds`, or `use` of a template (see [`templates`]).
//! `holds = { for = "10s", every = "1s", check = { ... } }` is the inverse
//! of `wait_until`: the check must pass at every attempt for `for`, and
//! the first miss fails the step, saying when and why.
//!
//! Expectations that something must not happen: `http.expect =
//! { no_answer_within = "2s" }` (no response head for that long; the step
//! waits no longer), `exec.expect.code = "!= 0"` (with `stderr`/`stdout`
//! checks), `sql.expect.sqlstate` and/or `sql.expect.error` (a check of the
//! error's message), and `tcp = { connects = false, failure = "refused" }`
//! (or `"timeout"`). `http.expect.within` also bounds the wait: once it has
//! passed the answer cannot pass, and the step fails there ("no answer
//! within 2s") rather than at its `timeout` (30 s by default).
//! `wait_until` repeats the step in its `check` (written the same way) and
//! `capture` keeps a value of the step in its `from`:
//!
//! ```toml
//! [[steps]]
//! wait_until = { within = "30s", every = "500ms", check = { sql = { connect = "${PG}", query = "SELECT 1" } } }
//!
//! [[steps]]
//! capture = { var = "rss", value = "stdout", from = { exec = { command = "ps -o rss= -p ${PID}" } } }
//! ```
//!
//! `${VAR}` and `${VAR:-default}` take values from the environment (and
//! from captures, once made) in every string a step sends or checks: URLs,
//! header values, bodies, commands, queries, addresses, toxics and the
//! expected values. Names are taken as written: `proxy`, `method`, header
//! names, JSON paths, `sqlstate`, and a capture's `var` and `value`.
//!
//! A scenario the system under test is known to fail (a defect not fixed
//! yet) is marked, at the top: `known_failure = "why, or an issue link"`.
//! It then passes the run when one of its checks fails, reported as
//! KNOWN FAILURE, and fails it when every step passes ("fixed? remove the
//! mark"). A bad file or an unreachable stack is not excused (exit 2).
//!
//! `http` steps speak HTTPS to `https://` URLs, checking the server's
//! certificate against the system's CA certificates, or as the scenario's
//! `tls` table says (read when the scenario starts; paths are relative to
//! the working directory):
//!
//! ```toml
//! tls = { ca = "${CERTS}/ca.pem" }   # or insecure = true; server_name = "git.test"
//! ```

mod before_run;
mod expanded;
mod file;
mod holds;
mod kinds;
mod negative;
pub mod templates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use holds::HoldsStep;
pub use kinds::{
    Action, CaptureStep, Check, ExecExpect, ExecStep, FaultOperation, FaultStep, HttpExpect,
    HttpStep, SqlExpect, SqlStep, TcpFailure, TcpStep, WaitStep,
};

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRef {
    /// The control API, e.g. `http://127.0.0.1:8474`.
    pub api: String,
    /// Create the proxy for the run (and delete it after) when it does not
    /// exist.
    #[serde(default)]
    pub create: Option<ProxyCreate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyCreate {
    pub listen: String,
    pub upstream: String,
    #[serde(default, deserialize_with = "deserialize_mode")]
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
