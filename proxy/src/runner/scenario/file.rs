//! The scenario file as written, read into a [`Scenario`] and checked.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::before_run::check_action;
use super::env_values::{self, expand_from_environment};
use super::kinds::{Action, STEP};
use super::numbers::check_numbers;
use super::templates::{Made, TemplateTable, Templates, Written, WrittenStepTable};
use super::{ProxyRef, Scenario, ScenarioError, Step, line_of};
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
    #[schemars(with = "Vec<WrittenStepTable>")]
    setup: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<WrittenStepTable>")]
    steps: Vec<toml::Spanned<NamedStep>>,
    #[serde(default)]
    #[schemars(with = "Vec<WrittenStepTable>")]
    teardown: Vec<toml::Spanned<NamedStep>>,
    /// The system under test is known to fail this scenario: why, or an
    /// issue link. A failed check is then expected; a pass fails the run.
    #[serde(default)]
    known_failure: Option<String>,
    /// Files whose `templates` and `proxies` this scenario uses, relative
    /// to its own directory.
    #[serde(default)]
    include: Vec<String>,
    /// Named steps (or lists of steps) with parameters, for `use`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, TemplateTable>")]
    templates: BTreeMap<String, toml::Spanned<toml::Value>>,
}

/// A step's table: a name, maybe, and what it does.
pub(super) struct NamedStep {
    pub(super) name: Option<String>,
    pub(super) kind: Written,
}

impl<'de> Deserialize<'de> for NamedStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = STEP.deserialize(d)?;
        Ok(Self {
            name: table.fields.remove("name"),
            kind: table.chosen,
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
        let mut raw: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            invalid(line, e.message().to_owned())
        })?;
        let mut templates = Templates::default();
        templates
            .add(std::mem::take(&mut raw.templates), file, text)
            .map_err(|(line, m)| invalid(line, m))?;
        templates
            .include(&raw.include, file, &mut raw.proxies)
            .map_err(|m| invalid(1, m))?;
        // A capture is known to the steps after it, in its section and the
        // ones after.
        let mut captures = Vec::new();
        let mut read = |section: &str, written: Vec<toml::Spanned<NamedStep>>| {
            let mut steps = Vec::new();
            for (i, spanned) in written.into_iter().enumerate() {
                let line = line_of(text, spanned.span().start);
                let NamedStep { name, kind } = spanned.into_inner();
                let made = match kind {
                    Written::Step(action) => vec![Made {
                        name,
                        action: *action,
                    }],
                    Written::Use(used) => templates
                        .expand(&used, name)
                        .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?,
                };
                for Made { name, action } in made {
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
            known_failure: raw.known_failure,
        })
    }
}
