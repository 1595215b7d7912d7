//! The scenario file as written, read into a [`Scenario`] and checked.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer};

use super::before_run::check_action;
use super::kinds::{Action, STEP};
use super::templates::{Made, Templates, Written};
use super::{ProxyRef, Scenario, ScenarioError, Step};
use crate::tls::ClientTls;

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
    #[serde(default)]
    known_failure: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
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
                        .map_err(|m| invalid(line, format!("{section}[{}]: {m}", i + 1)))?;
                    if let Action::Capture(capture) = &action {
                        captures.push(capture.var.clone());
                    }
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

/// 1-based line of byte offset `at`.
pub(super) fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}
