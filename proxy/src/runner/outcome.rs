//! What carrying out a step comes to: done, with what it produced, or
//! failed, and why; and the words a failure message is made of.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::scenario::Check;

/// What a step that held produced: a note for the report, and values a
/// `capture` can keep.
#[derive(Debug, Default)]
pub struct Done {
    pub note: Option<String>,
    pub values: BTreeMap<String, String>,
    pub json: Option<Value>,
}

/// Why a step failed.
#[derive(Debug)]
pub enum Failed {
    /// A check did not hold: what was expected, what came back.
    Check(String),
    /// The stack is not there (a control API did not answer).
    Stack(String),
    /// The control API refused a fault step as bad input (400, 404, 409):
    /// the scenario is wrong, not the system under test (exit code 2).
    BadScenario(String),
}

impl From<String> for Failed {
    fn from(message: String) -> Self {
        Self::Check(message)
    }
}

/// A check in words: `200`, `< 500`.
pub(super) fn check_words(check: &Check) -> String {
    match check {
        Check::Number(n) => plain(&json!(n)).trim_end_matches(".0").to_owned(),
        Check::Bool(b) => b.to_string(),
        Check::Text(t) => t.clone(),
    }
}

/// A JSON value as a person reads it: a string without its quotes.
pub(super) fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}
