//! The scenario file as written, read into a [`Scenario`] and checked.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::before_run::check_action;
use super::env_values::{self, expand_from_environment};
use super::kinds::{Action, STEP, StepTable};
use super::numbers::check_numbers;
use super::{ProxyRef, Scenario, ScenarioError, Step};
use crate::tls::ClientTls;

/// The file as written; also the root of the scenario schema.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "scenario")]
pub(super) struct File {
    /// The scenario's name in reports; by default the file's name.
    #[serde(default, deserialize_with = "env_values::scenario_name")]
    name: Option<String>,
    #[serde(default, deserialize_with = "env_values::seed")]
    #[schemars(schema_with = "super::schema_parts::seed_schema")]
    seed: Option<u64>,
    #[serde(default)]
    tls: Option<ClientTls>,
    #[serde(default)]
    proxies: BTreeMap<String, ProxyRef>,
    #[serde(default)]
    #[schemars(with = "Vec<StepTable>")]
    setup: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<StepTable>")]
    steps: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<StepTable>")]
    teardown: Vec<toml::Spanned<NamedStep>>,
}

/// A step's table: a name, maybe, and what it does.
pub(super) struct NamedStep {
    pub(super) name: Option<String>,
    pub(super) action: Action,
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
        // A capture is known to the steps after it, in its section and the
        // ones after.
        let mut captures = Vec::new();
        let mut read = |section: &str, written: Vec<toml::Spanned<NamedStep>>| {
            let mut steps = Vec::new();
            for (i, spanned) in written.into_iter().enumerate() {
                let line = line_of(text, spanned.span().start);
                let NamedStep { name, action } = spanned.into_inner();
                check_action(&action, &raw.proxies, &captures)
                    .and_then(|()| check_numbers(&action))
                    .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?;
                if let Action::Capture(capture) = &action {
                    captures.push(capture.var.clone());
                }
                let name = name
                    .map(|written| expand_from_environment("name", &written))
                    .transpose()
                    .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?;
                let name =
                    name.unwrap_or_else(|| format!("{section}[{}] {}", i + 1, action.kind()));
                steps.push(Step { name, line, action });
            }
            Ok::<_, ScenarioError>(steps)
        };
        let setup = read("setup", raw.setup)?;
        let steps = read("steps", raw.steps)?;
        let teardown = read("teardown", raw.teardown)?;
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| {
                file.file_stem()
                    .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned())
            }),
            file: file.to_owned(),
            seed: raw.seed,
            tls: raw.tls,
            proxies: raw.proxies,
            setup,
            steps,
            teardown,
        })
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}
