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
//! `fault`, `http`, `wait_until`, `sleep`, `exec`, `tcp`, `sql` or `capture`.
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
//! `${VAR}` and `${VAR:-default}` take values from the environment (and
//! from captures, once made) anywhere in a string.
//!
//! `http` steps speak HTTPS to `https://` URLs, checking the server's
//! certificate against the system's CA certificates, or as the scenario's
//! `tls` table says (read when the scenario starts; paths are relative to
//! the working directory):
//!
//! ```toml
//! tls = { ca = "${CERTS}/ca.pem" }   # or insecure = true; server_name = "git.test"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    #[serde(default)]
    pub mode: Option<String>,
}

/// One step, with where it is written.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// 1-based line of the step's table in the file (0 when built in code).
    pub line: usize,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    Fault(FaultStep),
    Http(HttpStep),
    WaitUntil(WaitStep),
    Sleep(Duration),
    Exec(ExecStep),
    Tcp(TcpStep),
    Sql(SqlStep),
    Capture(CaptureStep),
}

/// Switch faults on one proxy: exactly one of the operations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    pub proxy: String,
    /// Attach one toxic (Toxiproxy's JSON shape).
    #[serde(default)]
    pub add: Option<serde_json::Value>,
    /// Remove the toxic of this name.
    #[serde(default)]
    pub remove: Option<String>,
    /// Replace the whole chain with these toxics, in one step.
    #[serde(default)]
    pub replace: Option<Vec<serde_json::Value>>,
    /// Remove every toxic.
    #[serde(default)]
    pub clear: Option<bool>,
    /// Enable (`true`) or disable (`false`: connections refused, open ones
    /// closed) the proxy.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A Postgres bounce on a proxy in postgres mode, in one step: every
    /// session terminated with 57P01, new sessions refused with 57P03 for
    /// this long (e.g. "5s"), then the proxy's chain as it was before.
    #[serde(default, with = "opt_duration")]
    pub bounce: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sent with `Content-Type: application/json`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// How long the whole exchange may take before it counts as failed.
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: HttpExpect,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// The status, or a comparison such as "< 500".
    #[serde(default)]
    pub status: Option<Check>,
    /// Header name to a check of its value.
    #[serde(default)]
    pub headers: BTreeMap<String, Check>,
    /// JSON pointer ("/a/0/b") or path ("$.a[0].b") to a check of the value.
    #[serde(default)]
    pub json: BTreeMap<String, Check>,
    /// Text the body must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// An upper bound on the response time.
    #[serde(default, with = "opt_duration")]
    pub within: Option<Duration>,
}

/// Repeat a check until it holds or time runs out.
#[derive(Debug, Clone)]
pub struct WaitStep {
    pub within: Duration,
    pub every: Duration,
    /// The check; each attempt is bounded by `every` (at least 1 s), so a
    /// hanging connection is a failed attempt, not a stall.
    pub check: Box<Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    /// A shell command (`sh -c`).
    pub command: String,
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: ExecExpect,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecExpect {
    /// The exit code (default: 0).
    #[serde(default)]
    pub code: Option<Check>,
    #[serde(default)]
    pub stdout: Option<Check>,
    #[serde(default)]
    pub stderr: Option<Check>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpStep {
    /// host:port.
    pub address: String,
    /// `true`: a connection must be made; `false`: it must not be.
    pub connects: bool,
    #[serde(default, with = "opt_duration")]
    pub within: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// A libpq-style connection string or URL.
    pub connect: String,
    pub query: String,
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: SqlExpect,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlExpect {
    /// The first column of the first row, as text.
    #[serde(default)]
    pub value: Option<Check>,
    #[serde(default)]
    pub rows: Option<Check>,
    /// The query must fail with this SQLSTATE.
    #[serde(default)]
    pub sqlstate: Option<String>,
}

/// Run a step and keep one of its values as `${name}` for later steps.
#[derive(Debug, Clone)]
pub struct CaptureStep {
    pub var: String,
    /// What to keep: `status`, `body`, `stdout`, `stderr`, `value` (SQL), or
    /// a JSON pointer/path into an HTTP body.
    pub value: String,
    pub from: Box<Action>,
}

/// An expectation on one value: a literal to equal, or a comparison such as
/// `"< 1.2 * ${baseline}"`, `">= 3"`, `"!= 0"`, `"~ regex"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Check {
    Number(f64),
    Bool(bool),
    Text(String),
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

// --- the file as written --------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    tls: Option<ClientTls>,
    #[serde(default)]
    proxies: BTreeMap<String, ProxyRef>,
    #[serde(default)]
    setup: Vec<toml::Spanned<RawKind>>,
    #[serde(default)]
    steps: Vec<toml::Spanned<RawKind>>,
    #[serde(default)]
    teardown: Vec<toml::Spanned<RawKind>>,
}

/// A step as written: a name and one kind; the checks inside `wait_until`
/// and `capture` are written the same way.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fault: Option<FaultStep>,
    #[serde(default)]
    http: Option<HttpStep>,
    #[serde(default)]
    wait_until: Option<RawWait>,
    #[serde(default, with = "opt_duration")]
    sleep: Option<Duration>,
    #[serde(default)]
    exec: Option<ExecStep>,
    #[serde(default)]
    tcp: Option<TcpStep>,
    #[serde(default)]
    sql: Option<SqlStep>,
    #[serde(default)]
    capture: Option<RawCapture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    #[serde(with = "duration")]
    within: Duration,
    #[serde(default, with = "opt_duration")]
    every: Option<Duration>,
    check: Box<RawKind>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    var: String,
    value: String,
    from: Box<RawKind>,
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
        self.steps.push(Step {
            name: name.to_owned(),
            line: 0,
            action,
        });
        self
    }

    /// Adds a step to `teardown`.
    pub fn teardown(mut self, name: &str, action: Action) -> Self {
        self.teardown.push(Step {
            name: name.to_owned(),
            line: 0,
            action,
        });
        self
    }

    /// Reads and checks a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            file: path.to_owned(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Checks scenario text; `file` names it in messages.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ScenarioError> {
        let invalid = |line: usize, message: String| ScenarioError::Invalid {
            file: file.to_owned(),
            line,
            message,
        };
        let raw: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_owned())
        })?;
        let mut scenario = Scenario {
            name: raw.name.unwrap_or_else(|| {
                file.file_stem()
                    .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
            }),
            file: file.to_owned(),
            seed: raw.seed,
            tls: raw.tls,
            proxies: raw.proxies,
            setup: Vec::new(),
            steps: Vec::new(),
            teardown: Vec::new(),
        };
        let mut captures = Vec::new();
        for (section, raw_steps) in [
            ("setup", raw.setup),
            ("steps", raw.steps),
            ("teardown", raw.teardown),
        ] {
            let mut steps = Vec::new();
            for (i, spanned) in raw_steps.into_iter().enumerate() {
                let line = line_of(text, spanned.span().start);
                let raw = spanned.into_inner();
                let action = action(&raw, section).map_err(|m| invalid(line, m))?;
                check_action(&action, &scenario.proxies, &captures, text)
                    .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?;
                if let Action::Capture(capture) = &action {
                    captures.push(capture.var.clone());
                }
                let name = raw
                    .name
                    .unwrap_or_else(|| format!("{section}[{}] {}", i + 1, action.kind()));
                steps.push(Step { name, line, action });
            }
            match section {
                "setup" => scenario.setup = steps,
                "steps" => scenario.steps = steps,
                _ => scenario.teardown = steps,
            }
        }
        Ok(scenario)
    }
}

impl Action {
    /// The kind's name, as written in files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fault(_) => "fault",
            Self::Http(_) => "http",
            Self::WaitUntil(_) => "wait_until",
            Self::Sleep(_) => "sleep",
            Self::Exec(_) => "exec",
            Self::Tcp(_) => "tcp",
            Self::Sql(_) => "sql",
            Self::Capture(_) => "capture",
        }
    }
}

/// The one kind a table holds.
fn action(raw: &RawKind, section: &str) -> Result<Action, String> {
    let mut kinds = Vec::new();
    if let Some(f) = &raw.fault {
        kinds.push(Action::Fault(f.clone()));
    }
    if let Some(h) = &raw.http {
        kinds.push(Action::Http(h.clone()));
    }
    if let Some(w) = &raw.wait_until {
        let check = action(&w.check, section)?;
        let every = w.every.unwrap_or(Duration::from_millis(500));
        kinds.push(Action::WaitUntil(WaitStep {
            within: w.within,
            every,
            check: Box::new(check),
        }));
    }
    if let Some(d) = raw.sleep {
        kinds.push(Action::Sleep(d));
    }
    if let Some(e) = &raw.exec {
        kinds.push(Action::Exec(e.clone()));
    }
    if let Some(t) = &raw.tcp {
        kinds.push(Action::Tcp(t.clone()));
    }
    if let Some(s) = &raw.sql {
        kinds.push(Action::Sql(s.clone()));
    }
    if let Some(c) = &raw.capture {
        let from = action(&c.from, section)?;
        kinds.push(Action::Capture(CaptureStep {
            var: c.var.clone(),
            value: c.value.clone(),
            from: Box::new(from),
        }));
    }
    match kinds.len() {
        1 => Ok(kinds.pop().unwrap()),
        0 => Err(format!(
            "a step in {section} does nothing: give it one of fault, http, wait_until, sleep, exec, tcp, sql, capture"
        )),
        _ => Err(format!(
            "a step in {section} has {} kinds ({}); write one per step",
            kinds.len(),
            kinds
                .iter()
                .map(Action::kind)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What can be checked before running: proxies declared, one fault
/// operation per step, captures made before use, expressions well formed.
fn check_action(
    action: &Action,
    proxies: &BTreeMap<String, ProxyRef>,
    captures: &[String],
    _text: &str,
) -> Result<(), String> {
    match action {
        Action::Fault(f) => {
            if !proxies.contains_key(&f.proxy) {
                return Err(format!(
                    "fault.proxy: {:?} is not declared under [proxies] (declared: {})",
                    f.proxy,
                    proxies.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let operations = [
                f.add.is_some(),
                f.remove.is_some(),
                f.replace.is_some(),
                f.clear == Some(true),
                f.enabled.is_some(),
                f.bounce.is_some(),
            ];
            match operations.iter().filter(|o| **o).count() {
                1 => {}
                0 => {
                    return Err(
                        "fault: say what to do: add, remove, replace, clear, enabled or bounce"
                            .into(),
                    );
                }
                _ => {
                    return Err(
                        "fault: one of add, remove, replace, clear, enabled, bounce per step"
                            .into(),
                    );
                }
            }
        }
        Action::WaitUntil(w) => {
            if matches!(*w.check, Action::WaitUntil(_) | Action::Sleep(_)) {
                return Err(format!(
                    "wait_until: cannot wait on a {} step",
                    w.check.kind()
                ));
            }
            check_action(&w.check, proxies, captures, _text)?;
        }
        Action::Capture(c) => {
            if matches!(
                *c.from,
                Action::Capture(_)
                    | Action::WaitUntil(_)
                    | Action::Sleep(_)
                    | Action::Fault(_)
                    | Action::Tcp(_)
            ) {
                return Err(format!(
                    "capture: takes a value from an http, exec or sql step, not {}",
                    c.from.kind()
                ));
            }
            check_action(&c.from, proxies, captures, _text)?;
        }
        Action::Http(h) => {
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
                .contains(&h.method.to_ascii_uppercase().as_str())
            {
                return Err(format!("http.method: {:?} is not an HTTP method", h.method));
            }
            if h.json.is_some() && h.body.is_some() {
                return Err("http: give json or body, not both".into());
            }
        }
        Action::Sleep(_) | Action::Exec(_) | Action::Tcp(_) | Action::Sql(_) => {}
    }
    for var in super::vars::references(action) {
        let known = captures.contains(&var) || std::env::var_os(&var).is_some() || var == "SEED";
        if !known && !super::vars::has_default(action, &var) {
            return Err(format!(
                "${{{var}}} is neither set in the environment nor captured by an earlier step"
            ));
        }
    }
    Ok(())
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// Durations as humans write them: "500ms", "1.5s", "2m".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(seconds) = text.strip_suffix('s').and_then(|n| n.parse::<f64>().ok())
        && !text.ends_with("ms")
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Ok(Duration::from_secs_f64(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"500ms\", \"1.5s\", \"2m\"")
    })
}

mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse(text, Path::new("s.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn steps_know_their_line_and_kind() {
        let s = parse(
            "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n[[steps]]\nsleep = \"1s\"\n\n[[steps]]\nname = \"cut\"\nfault = { proxy = \"pg\", clear = true }\n",
        )
        .unwrap();
        assert_eq!(s.steps[0].line, 4);
        assert_eq!(s.steps[0].name, "steps[1] sleep");
        assert_eq!(s.steps[1].name, "cut");
        assert_eq!(s.steps[1].line, 7);
    }

    #[test]
    fn mistakes_name_the_line_and_the_field() {
        let err = parse("[[steps]]\nslep = \"1s\"\n").unwrap_err();
        assert!(err.starts_with("s.toml:"), "{err}");
        assert!(err.contains("slep"), "{err}");
        let err = parse("[[steps]]\nfault = { proxy = \"nope\", clear = true }\n").unwrap_err();
        assert!(
            err.contains("s.toml:1") && err.contains("fault.proxy"),
            "{err}"
        );
        let err = parse("[[steps]]\nsleep = \"later\"\n").unwrap_err();
        assert!(err.contains("s.toml:2") && err.contains("later"), "{err}");
        let err = parse("[[steps]]\nname = \"x\"\n").unwrap_err();
        assert!(err.contains("does nothing"), "{err}");
        let err = parse("[[steps]]\nhttp = { url = \"${NOT_SET_ANYWHERE_42}\" }\n").unwrap_err();
        assert!(err.contains("NOT_SET_ANYWHERE_42"), "{err}");
    }
}
