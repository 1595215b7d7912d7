//! The kinds of step (`fault`, `http`, `wait_until`, `sleep`, `exec`,
//! `tcp`, `sql`, `capture`, `holds`) and the fault operations: what each one's
//! table holds, as serde reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::env_values;
use super::schema_parts::{DurationText, ToxicJson};
use crate::runner::one_of::Shape;

/// What a step does. In a file, a step is a table with an optional `name`
/// and one key naming its kind, whose value is the kind's table:
/// `sleep = "1s"`, `http = { url = "..." }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Fault(FaultStep),
    Http(HttpStep),
    WaitUntil(WaitStep),
    Sleep(
        #[serde(deserialize_with = "env_values::sleep")]
        #[schemars(with = "DurationText")]
        Duration,
    ),
    Exec(ExecStep),
    Tcp(TcpStep),
    Sql(SqlStep),
    Capture(CaptureStep),
    Holds(HoldsStep),
}

/// A step's table: its `name`, and one kind.
pub(super) static STEP: Shape = Shape {
    table: "step",
    choice: "kind",
    fields: &["name"],
};

/// A step as `wait_until.check` and `capture.from` hold it: written as a
/// step is (a `name` there is allowed, and unused).
pub(super) fn nested_step<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Action>, D::Error> {
    STEP.deserialize(d).map(|table| Box::new(table.chosen))
}

/// A step as `wait_until.check`, `holds.check` and `capture.from` hold
/// it, for the schema: a `name` and one kind (no `use`).
pub struct StepTable;

impl JsonSchema for StepTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "nested_step".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        STEP.json_schema::<Action>(
            generator,
            &[],
            "A check: a step written inside another, an optional name and one kind.",
        )
    }
}

/// Switch faults on one proxy.
#[derive(Debug, Clone)]
pub struct FaultStep {
    pub proxy: String,
    pub operation: FaultOperation,
}

/// What a fault step does; in a file, one key beside `proxy`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultOperation {
    /// Attach one toxic (Toxiproxy's JSON shape).
    Add(#[schemars(with = "ToxicJson")] serde_json::Value),
    /// Remove the toxic of this name.
    Remove(String),
    /// Replace the whole chain with these toxics, in one step.
    Replace(#[schemars(with = "Vec<ToxicJson>")] Vec<serde_json::Value>),
    /// Remove every toxic: `clear = true`.
    #[serde(deserialize_with = "only_true")]
    #[schemars(schema_with = "super::schema_parts::clear_schema")]
    Clear,
    /// Enable (`true`) or disable (`false`: connections refused, open ones
    /// closed) the proxy.
    Enabled(bool),
    /// A Postgres bounce on a proxy in postgres mode, in one step: every
    /// session terminated with 57P01, new sessions refused with 57P03 for
    /// this long (e.g. "5s"), then the proxy's chain as it was before.
    Bounce(
        #[serde(deserialize_with = "env_values::bounce")]
        #[schemars(with = "DurationText")]
        Duration,
    ),
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

impl JsonSchema for FaultStep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "fault".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FAULT.json_schema::<FaultOperation>(
            generator,
            &["proxy"],
            "Switch faults on one proxy: its `proxy` and one operation.",
        )
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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "http")]
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
    #[serde(default, deserialize_with = "env_values::http_timeout")]
    #[schemars(with = "DurationText")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: HttpExpect,
}

fn default_method() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "http.expect")]
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
    #[serde(default, deserialize_with = "env_values::http_within")]
    #[schemars(with = "DurationText")]
    pub within: Option<Duration>,
    /// The request must not be answered (no response head) for this long:
    /// the step waits that long and no longer, and passes when nothing
    /// came. A connection that fails before then is an answer too, and
    /// fails the step. Given alone, without the other expectations.
    #[serde(default, deserialize_with = "env_values::http_no_answer_within")]
    #[schemars(with = "DurationText")]
    pub no_answer_within: Option<Duration>,
}

/// Repeat a check until it holds or time runs out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "wait_until")]
pub struct WaitStep {
    #[serde(deserialize_with = "env_values::wait_within")]
    #[schemars(with = "DurationText")]
    pub within: Duration,
    /// How long to wait between attempts (default 500 ms).
    #[serde(default = "default_every", deserialize_with = "env_values::wait_every")]
    #[schemars(with = "DurationText", default = "default_every_text")]
    pub every: Duration,
    /// The check; each attempt is bounded by `every` (at least 1 s), so a
    /// hanging connection is a failed attempt, not a stall.
    #[serde(deserialize_with = "nested_step")]
    #[schemars(with = "StepTable")]
    pub check: Box<Action>,
}

fn default_every() -> Duration {
    Duration::from_millis(500)
}

/// The default of `every` as it is written, for the schema.
fn default_every_text() -> &'static str {
    "500ms"
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "exec")]
pub struct ExecStep {
    /// A shell command (`sh -c`).
    pub command: String,
    #[serde(default, deserialize_with = "env_values::exec_timeout")]
    #[schemars(with = "DurationText")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: ExecExpect,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "exec.expect")]
pub struct ExecExpect {
    /// The exit code (default: 0).
    #[serde(default)]
    pub code: Option<Check>,
    #[serde(default)]
    pub stdout: Option<Check>,
    #[serde(default)]
    pub stderr: Option<Check>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "tcp")]
pub struct TcpStep {
    /// host:port.
    pub address: String,
    /// `true`: a connection must be made; `false`: it must not be.
    pub connects: bool,
    #[serde(default, deserialize_with = "env_values::tcp_within")]
    #[schemars(with = "DurationText")]
    pub within: Option<Duration>,
    /// With `connects = false`: how the connection must fail, `refused`
    /// or `timeout` (no answer within `within`).
    #[serde(default)]
    pub failure: Option<TcpFailure>,
}

/// How a TCP connection is not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TcpFailure {
    /// The peer answers with a reset (nothing listens, or a disabled proxy).
    Refused,
    /// No answer at all within `within` (a dropped SYN).
    Timeout,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "sql")]
pub struct SqlStep {
    /// A libpq-style connection string or URL.
    pub connect: String,
    pub query: String,
    #[serde(default, deserialize_with = "env_values::sql_timeout")]
    #[schemars(with = "DurationText")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub expect: SqlExpect,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "sql.expect")]
pub struct SqlExpect {
    /// The first column of the first row, as text.
    #[serde(default)]
    pub value: Option<Check>,
    #[serde(default)]
    pub rows: Option<Check>,
    /// The query must fail with this SQLSTATE.
    #[serde(default)]
    pub sqlstate: Option<String>,
    /// The query must fail with an error whose message meets this check
    /// (e.g. `"~ does not exist"`); with `sqlstate`, both must hold.
    #[serde(default)]
    pub error: Option<Check>,
}

/// Run a step and keep one of its values as `${name}` for later steps.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "capture")]
pub struct CaptureStep {
    pub var: String,
    /// What to keep: `status`, `body`, `stdout`, `stderr`, `value` (SQL), or
    /// a JSON pointer/path into an HTTP body.
    pub value: String,
    #[serde(deserialize_with = "nested_step")]
    #[schemars(with = "StepTable")]
    pub from: Box<Action>,
}

/// An expectation on one value: a literal to equal, or a comparison such as
/// `"< 1.2 * ${baseline}"`, `">= 3"`, `"!= 0"`, `"~ regex"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "check")]
pub enum Check {
    Number(f64),
    Bool(bool),
    Text(String),
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
            Self::Holds(_) => "holds",
        }
    }
}

/// Repeat a check every `every` for `for`; the first miss fails the step.
/// The inverse of `wait_until`:
///
/// ```toml
/// [[steps]]
/// holds = { for = "10s", every = "1s", check = { http = { url = "${OPAL}/healthcheck", expect = { within = "1s" } } } }
/// ```
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
        default = "default_holds_every",
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

fn default_holds_every() -> Duration {
    Duration::from_secs(1)
}
