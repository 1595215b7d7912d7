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
//!
//! `${VAR}` and `${VAR:-default}` take values from the environment (and
//! from captures, once made) in every string a step sends or checks: URLs,
//! header values, bodies, commands, queries, addresses, toxics and the
//! expected values. Names are taken as written: `proxy`, `method`, header
//! names, JSON paths, `sqlstate`, and a capture's `var` and `value`.
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

use serde::{Deserialize, Deserializer};

use super::one_of::Shape;
use super::vars::{self, Strings};
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

/// What a step does. In a file, a step is a table with an optional `name`
/// and one key naming its kind, whose value is the kind's table:
/// `sleep = "1s"`, `http = { url = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Fault(FaultStep),
    Http(HttpStep),
    WaitUntil(WaitStep),
    Sleep(#[serde(deserialize_with = "crate::duration::deserialize")] Duration),
    Exec(ExecStep),
    Tcp(TcpStep),
    Sql(SqlStep),
    Capture(CaptureStep),
}

/// A step's table: its `name`, and one kind.
static STEP: Shape = Shape {
    table: "step",
    choice: "kind",
    fields: &["name"],
};

/// A step as `wait_until.check` and `capture.from` hold it: written as a
/// step is (a `name` there is allowed, and unused).
fn nested_step<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Action>, D::Error> {
    STEP.deserialize(d).map(|table| Box::new(table.chosen))
}

/// Switch faults on one proxy.
#[derive(Debug, Clone)]
pub struct FaultStep {
    pub proxy: String,
    pub operation: FaultOperation,
}

/// What a fault step does; in a file, one key beside `proxy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultOperation {
    /// Attach one toxic (Toxiproxy's JSON shape).
    Add(serde_json::Value),
    /// Remove the toxic of this name.
    Remove(String),
    /// Replace the whole chain with these toxics, in one step.
    Replace(Vec<serde_json::Value>),
    /// Remove every toxic: `clear = true`.
    #[serde(deserialize_with = "only_true")]
    Clear,
    /// Enable (`true`) or disable (`false`: connections refused, open ones
    /// closed) the proxy.
    Enabled(bool),
    /// A Postgres bounce on a proxy in postgres mode, in one step: every
    /// session terminated with 57P01, new sessions refused with 57P03 for
    /// this long (e.g. "5s"), then the proxy's chain as it was before.
    Bounce(#[serde(deserialize_with = "crate::duration::deserialize")] Duration),
}

static FAULT: Shape = Shape {
    table: "fault step",
    choice: "operation",
    fields: &["proxy"],
};

impl<'de> Deserialize<'de> for FaultStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = FAULT.deserialize(d)?;
        let proxy = table
            .fields
            .remove("proxy")
            .ok_or_else(|| serde::de::Error::missing_field("proxy"))?;
        Ok(Self {
            proxy,
            operation: table.chosen,
        })
    }
}

/// `clear = true`: `false` would clear nothing.
fn only_true<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    if bool::deserialize(d)? {
        Ok(())
    } else {
        Err(serde::de::Error::custom(
            "clear = false does nothing: write clear = true, or another operation",
        ))
    }
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
    #[serde(default, deserialize_with = "crate::duration::deserialize_option")]
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
    #[serde(default, deserialize_with = "crate::duration::deserialize_option")]
    pub within: Option<Duration>,
}

/// Repeat a check until it holds or time runs out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    #[serde(deserialize_with = "crate::duration::deserialize")]
    pub within: Duration,
    /// How long to wait between attempts (default 500 ms).
    #[serde(
        default = "default_every",
        deserialize_with = "crate::duration::deserialize"
    )]
    pub every: Duration,
    /// The check; each attempt is bounded by `every` (at least 1 s), so a
    /// hanging connection is a failed attempt, not a stall.
    #[serde(deserialize_with = "nested_step")]
    pub check: Box<Action>,
}

fn default_every() -> Duration {
    Duration::from_millis(500)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    /// A shell command (`sh -c`).
    pub command: String,
    #[serde(default, deserialize_with = "crate::duration::deserialize_option")]
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
    #[serde(default, deserialize_with = "crate::duration::deserialize_option")]
    pub within: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// A libpq-style connection string or URL.
    pub connect: String,
    pub query: String,
    #[serde(default, deserialize_with = "crate::duration::deserialize_option")]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureStep {
    pub var: String,
    /// What to keep: `status`, `body`, `stdout`, `stderr`, `value` (SQL), or
    /// a JSON pointer/path into an HTTP body.
    pub value: String,
    #[serde(deserialize_with = "nested_step")]
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

// --- the strings a step expands when it runs ------------------------------

impl Strings for Action {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        match self {
            Self::Fault(f) => f.each_string(each),
            Self::Http(h) => h.each_string(each),
            Self::WaitUntil(w) => w.check.each_string(each),
            Self::Sleep(_) => {}
            Self::Exec(e) => e.each_string(each),
            Self::Tcp(t) => t.address.each_string(each),
            Self::Sql(s) => s.each_string(each),
            Self::Capture(c) => c.from.each_string(each),
        }
    }
}

/// The proxy is a name under `[proxies]`, taken as written.
impl Strings for FaultStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        match &self.operation {
            FaultOperation::Add(toxic) => toxic.each_string(each),
            FaultOperation::Remove(name) => name.each_string(each),
            FaultOperation::Replace(chain) => chain.each_string(each),
            FaultOperation::Clear | FaultOperation::Enabled(_) | FaultOperation::Bounce(_) => {}
        }
    }
}

/// The method and the header names are taken as written.
impl Strings for HttpStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.url.each_string(each);
        self.headers.each_string(each);
        self.json.each_string(each);
        self.body.each_string(each);
        let e = &self.expect;
        e.status.each_string(each);
        e.headers.each_string(each);
        e.json.each_string(each);
        e.body_contains.each_string(each);
    }
}

impl Strings for ExecStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.command.each_string(each);
        let e = &self.expect;
        e.code.each_string(each);
        e.stdout.each_string(each);
        e.stderr.each_string(each);
    }
}

/// The expected SQLSTATE is a code, taken as written.
impl Strings for SqlStep {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        self.connect.each_string(each);
        self.query.each_string(each);
        self.expect.value.each_string(each);
        self.expect.rows.each_string(each);
    }
}

impl Strings for Check {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        if let Self::Text(text) = self {
            each(text);
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
    setup: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    steps: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    teardown: Vec<toml::Spanned<NamedStep>>,
}

/// A step's table: a name, maybe, and what it does.
struct NamedStep {
    name: Option<String>,
    action: Action,
}

impl<'de> Deserialize<'de> for NamedStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = STEP.deserialize(d)?;
        Ok(Self {
            name: table.fields.remove("name"),
            action: table.chosen,
        })
    }
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
                let NamedStep { name, action } = spanned.into_inner();
                check_action(&action, &scenario.proxies, &captures)
                    .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?;
                if let Action::Capture(capture) = &action {
                    captures.push(capture.var.clone());
                }
                let name =
                    name.unwrap_or_else(|| format!("{section}[{}] {}", i + 1, action.kind()));
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

/// What can be checked before running and is not the file's shape:
/// proxies declared, steps that can be waited on or captured from,
/// captures made before use, methods that exist.
fn check_action(
    action: &Action,
    proxies: &BTreeMap<String, ProxyRef>,
    captures: &[String],
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
        }
        Action::WaitUntil(w) => {
            if matches!(*w.check, Action::WaitUntil(_) | Action::Sleep(_)) {
                return Err(format!(
                    "wait_until: cannot wait on a {} step",
                    w.check.kind()
                ));
            }
            check_action(&w.check, proxies, captures)?;
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
            check_action(&c.from, proxies, captures)?;
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
    let references = vars::references(action);
    for reference in &references {
        let var = &reference.name;
        let known = captures.contains(var) || std::env::var_os(var).is_some() || var == "SEED";
        let always_defaulted = references
            .iter()
            .filter(|r| r.name == *var)
            .all(|r| r.default.is_some());
        if !known && !always_defaulted {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse(text, Path::new("s.toml")).map_err(|e| e.to_string())
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

    const PROXY: &str = "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n";

    #[test]
    fn the_kinds_are_the_enums_own() {
        assert_eq!(
            super::super::one_of::variants::<Action>(),
            [
                "fault",
                "http",
                "wait_until",
                "sleep",
                "exec",
                "tcp",
                "sql",
                "capture"
            ]
        );
        assert_eq!(
            super::super::one_of::variants::<FaultOperation>(),
            ["add", "remove", "replace", "clear", "enabled", "bounce"]
        );
    }

    const KINDS: &str = "one of: fault, http, wait_until, sleep, exec, tcp, sql, capture";
    const OPERATIONS: &str = "one of: add, remove, replace, clear, enabled, bounce";

    #[test]
    fn a_step_without_a_kind_is_refused_at_its_line() {
        let err = parse(&format!(
            "{PROXY}[[steps]]\nsleep = \"1s\"\n\n[[steps]]\nname = \"idle\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:7: this step does nothing: give it one kind, {KINDS}")
        );
        let err = parse("[[steps]]\nwait_until = { within = \"1s\", check = {} }\n").unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:2: this step does nothing: give it one kind, {KINDS}")
        );
    }

    #[test]
    fn a_step_with_two_kinds_is_refused_naming_them() {
        let err = parse(&format!(
            "{PROXY}[[steps]]\nsleep = \"1s\"\nexec = {{ command = \"true\" }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:4: this step has 2 kinds, exec and sleep: give it one, {KINDS}")
        );
        let err = parse(
            "[[steps]]\nname = \"busy\"\nsleep = \"1s\"\ntcp = { address = \"a:1\", connects = true }\nfault = { proxy = \"pg\", clear = true }\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:1: this step has 3 kinds, fault, sleep and tcp: give it one, {KINDS}")
        );
        let err = parse(
            "[[steps]]\ncapture = { var = \"v\", value = \"stdout\", from = { exec = { command = \"true\" }, sql = { connect = \"x\", query = \"y\" } } }\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:2: this step has 2 kinds, exec and sql: give it one, {KINDS}")
        );
    }

    #[test]
    fn an_unknown_kind_is_refused_naming_the_kinds() {
        let err = parse("[[steps]]\nname = \"x\"\nslep = \"1s\"\n").unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:3: unknown field `slep`: a step has `name` and one kind, {KINDS}")
        );
    }

    #[test]
    fn a_fault_step_does_one_operation() {
        let err = parse(&format!(
            "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", add = {{ type = \"latency\" }}, clear = true }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "s.toml:5: this fault step has 2 operations, add and clear: give it one, {OPERATIONS}"
            )
        );
        let err = parse(&format!("{PROXY}[[steps]]\nfault = {{ proxy = \"pg\" }}\n")).unwrap_err();
        assert_eq!(
            err,
            format!("s.toml:5: this fault step does nothing: give it one operation, {OPERATIONS}")
        );
        let err = parse(&format!(
            "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", clear = false }}\n"
        ))
        .unwrap_err();
        assert!(
            err.starts_with("s.toml:5: clear = false does nothing"),
            "{err}"
        );
        let err = parse("[[steps]]\nfault = { enabled = true }\n").unwrap_err();
        assert!(
            err.starts_with("s.toml:2:") && err.contains("`proxy`"),
            "{err}"
        );
    }

    #[test]
    fn fault_operations_read_into_their_variants() {
        let s = parse(&format!(
            "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", bounce = \"1.5s\" }}\n[[steps]]\nfault = {{ enabled = false, proxy = \"pg\" }}\n[[steps]]\nfault = {{ proxy = \"pg\", replace = [{{ type = \"latency\" }}] }}\n"
        ))
        .unwrap();
        let operations: Vec<String> = s
            .steps
            .iter()
            .map(|step| match &step.action {
                Action::Fault(f) => format!("{} {:?}", f.proxy, f.operation),
                other => panic!("not a fault step: {other:?}"),
            })
            .collect();
        assert_eq!(
            operations,
            [
                "pg Bounce(1.5s)",
                "pg Enabled(false)",
                "pg Replace([Object {\"type\": String(\"latency\")}])"
            ]
        );
    }

    /// One step's table, read as a file's step is.
    fn step(text: &str) -> Action {
        toml::from_str::<NamedStep>(text).unwrap().action
    }

    fn names(action: &Action) -> Vec<String> {
        vars::references(action)
            .into_iter()
            .map(|r| match r.default {
                Some(default) => format!("{}:-{default}", r.name),
                None => r.name,
            })
            .collect()
    }

    #[test]
    fn variables_are_found_in_every_expanded_string_of_nested_steps() {
        let wait = step(
            r#"wait_until = { within = "1s", check = { http = { url = "${URL}", method = "POST", headers = { "x-a" = "${HEADER}" }, json = { k = ["${JSON}"] }, expect = { status = "< ${STATUS}", headers = { "x-b" = "${EXPECT_HEADER}" }, json = { "/a" = "${EXPECT_JSON}" }, body_contains = "${CONTAINS:-x}" } } } }"#,
        );
        assert_eq!(
            names(&wait),
            [
                "URL",
                "HEADER",
                "JSON",
                "STATUS",
                "EXPECT_HEADER",
                "EXPECT_JSON",
                "CONTAINS:-x"
            ]
        );
        let capture = step(
            r#"capture = { var = "v", value = "stdout", from = { exec = { command = "echo ${CMD}", expect = { code = "${CODE}", stdout = "~ ${OUT}", stderr = "${ERR}" } } } }"#,
        );
        assert_eq!(names(&capture), ["CMD", "CODE", "OUT", "ERR"]);
        let sql = step(
            r#"capture = { var = "v", value = "value", from = { sql = { connect = "${PG}", query = "SELECT ${N}", expect = { value = "${VALUE}", rows = "${ROWS}", sqlstate = "57P03" } } } }"#,
        );
        assert_eq!(names(&sql), ["PG", "N", "VALUE", "ROWS"]);
        let body = step(r#"http = { url = "u", body = "${BODY}" }"#);
        assert_eq!(names(&body), ["BODY"]);
        let tcp = step(r#"tcp = { address = "${ADDRESS}", connects = true }"#);
        assert_eq!(names(&tcp), ["ADDRESS"]);
        let add = step(
            r#"fault = { proxy = "pg", add = { type = "latency", attributes = { note = "${ADD}" } } }"#,
        );
        assert_eq!(names(&add), ["ADD"]);
        let replace = step(r#"fault = { proxy = "pg", replace = [{ name = "${REPLACE}" }] }"#);
        assert_eq!(names(&replace), ["REPLACE"]);
        let remove = step(r#"fault = { proxy = "pg", remove = "${REMOVE}" }"#);
        assert_eq!(names(&remove), ["REMOVE"]);
    }

    #[test]
    fn a_variable_with_a_default_everywhere_need_not_be_set() {
        parse("[[steps]]\nhttp = { url = \"${UNSET_FOR_SURE_9:-http://a}/${UNSET_FOR_SURE_9:-b}\" }\n")
            .unwrap();
        let err = parse(
            "[[steps]]\nwait_until = { within = \"1s\", check = { http = { url = \"${UNSET_FOR_SURE_9:-http://a}\", body = \"${UNSET_FOR_SURE_9}\" } } }\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("s.toml:1: steps[1]: ${UNSET_FOR_SURE_9} is neither set"),
            "{err}"
        );
    }
}
