//! Reuse: named templates of steps, with parameters, and files of shared
//! templates and proxies that scenarios include.
//!
//! ```toml
//! include = ["shared/opal.toml"]     # its [templates] and [proxies], beside this file's
//!
//! [templates.put_scope]              # one step (a step's keys) or `steps = [...]`
//! params = ["id", "repo"]
//! http = { method = "PUT", url = "${OPAL}/scopes", json = { scope_id = "${id}", url = "${GIT}/${repo}.git" } }
//!
//! [[steps]]
//! name = "a scope on alpha"
//! use = { template = "put_scope", with = { id = "a", repo = "alpha" } }
//! ```
//!
//! A template's `${param}` (or `${param:-default}`) is replaced where the
//! template is used, before the step is checked, by the `with` value; any
//! other `${VAR}` is left for the run. A string that is only `${param}`
//! takes the value as given, so a table or a number can be passed whole.
//! A template's step may itself `use` another, up to [`DEPTH`] deep; a
//! template that uses itself is refused. An included file holds only
//! `templates` and `proxies`, and includes nothing itself.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, forward_to_deserialize_any};

use super::ProxyRef;
use super::kinds::{Action, STEP};
use crate::runner::one_of::variants;
use crate::runner::vars::REFERENCE;

/// How deep templates may use templates.
pub const DEPTH: usize = 8;

/// A step as written in a file: a kind, or `use` of a template.
pub(super) enum Written {
    Step(Box<Action>),
    Use(UseStep),
}

/// `use = { template = "name", with = { param = value } }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "use")]
pub(super) struct UseStep {
    /// The template's name, under `[templates]` here or in an included file.
    template: String,
    /// The parameters' values; `"${p}"` alone takes a table or number whole.
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    with: toml::Table,
}

/// `use` as a kind of step, for the schema.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only described, never built
enum UseKind {
    Use(UseStep),
}

/// Every kind a step in `setup`, `steps`, `teardown` or a template may
/// have, for the schema: each step kind, and `use`.
pub(super) struct WrittenKinds;

impl JsonSchema for WrittenKinds {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "written_kinds".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut alternatives = Vec::new();
        for schema in [
            Action::json_schema(generator),
            UseKind::json_schema(generator),
        ] {
            match schema.to_value() {
                serde_json::Value::Object(mut table) => match table.remove("oneOf") {
                    Some(serde_json::Value::Array(each)) => alternatives.extend(each),
                    _ => alternatives.push(serde_json::Value::Object(table)),
                },
                other => alternatives.push(other),
            }
        }
        json_schema!({ "oneOf": alternatives })
    }
}

/// A step's table in `setup`, `steps` and `teardown`, for the schema: a
/// `name` and one kind, or `use` of a template.
pub(super) struct WrittenStepTable;

impl JsonSchema for WrittenStepTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "step".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        STEP.json_schema::<WrittenKinds>(
            generator,
            &[],
            "A step: an optional name and one kind, or `use` of a template.",
        )
    }
}

/// A template's table, for the schema: `params`, and one step's keys or
/// `steps`. Its values may hold `${param}` anywhere, so the step it makes
/// is checked where it is used, with that use's values.
pub(super) struct TemplateTable;

impl JsonSchema for TemplateTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "template".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A template: `params`, and one step's keys or `steps`; checked where it is used.",
            "type": "object",
            "properties": {
                "params": { "type": "array", "items": { "type": "string" } },
                "steps": { "type": "array", "items": { "type": "object" } },
            },
        })
    }
}

/// A template, with where it is written.
struct Template {
    params: Vec<String>,
    /// The steps, each a step's table as written.
    steps: Vec<toml::Value>,
    /// Whether it is one step (its name can be the `use` step's).
    single: bool,
    file: PathBuf,
    line: usize,
}

/// Every template a scenario can use: its own and its includes'.
#[derive(Default)]
pub(super) struct Templates {
    by_name: BTreeMap<String, Template>,
}

/// A file a scenario includes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Included {
    #[serde(default)]
    templates: BTreeMap<String, toml::Spanned<toml::Value>>,
    #[serde(default)]
    proxies: BTreeMap<String, ProxyRef>,
    #[serde(default)]
    include: Option<toml::Value>,
}

/// A step a template made: its name (if the template or the use gave one)
/// and what it does.
pub(super) struct Made {
    pub(super) name: Option<String>,
    pub(super) action: Action,
}

impl Templates {
    /// Adds the templates written in `file` (`text` is its text, for lines).
    pub(super) fn add(
        &mut self,
        written: BTreeMap<String, toml::Spanned<toml::Value>>,
        file: &Path,
        text: &str,
    ) -> Result<(), (usize, String)> {
        for (name, spanned) in written {
            let line = super::line_of(text, spanned.span().start);
            if let Some(other) = self.by_name.get(&name) {
                return Err((
                    line,
                    format!(
                        "template {name:?} is already defined at {}:{}",
                        other.file.display(),
                        other.line
                    ),
                ));
            }
            let template = Template::read(spanned.into_inner(), file, line)
                .map_err(|m| (line, format!("template {name:?}: {m}")))?;
            self.by_name.insert(name, template);
        }
        Ok(())
    }

    /// Reads the files `include` names (relative to `file`'s directory):
    /// their templates are added here, their proxies to `proxies`.
    pub(super) fn include(
        &mut self,
        include: &[String],
        file: &Path,
        proxies: &mut BTreeMap<String, ProxyRef>,
    ) -> Result<(), String> {
        let dir = file.parent().unwrap_or(Path::new("."));
        for name in include {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("include {name:?}: {}: {e}", path.display()))?;
            let included: Included = toml::from_str(&text).map_err(|e| {
                let line = e.span().map_or(1, |s| super::line_of(&text, s.start));
                format!("{}:{line}: {}", path.display(), e.message())
            })?;
            if included.include.is_some() {
                return Err(format!(
                    "{}: an included file cannot include others (only scenarios include)",
                    path.display()
                ));
            }
            self.add(included.templates, &path, &text)
                .map_err(|(line, m)| format!("{}:{line}: {m}", path.display()))?;
            for (proxy, declared) in included.proxies {
                if proxies.contains_key(&proxy) {
                    return Err(format!(
                        "{}: proxy {proxy:?} is declared here and in the scenario (or an earlier include)",
                        path.display()
                    ));
                }
                proxies.insert(proxy, declared);
            }
        }
        Ok(())
    }

    /// The steps `used` stands for, its parameters put in. `name` is the
    /// `use` step's own name.
    pub(super) fn expand(&self, used: &UseStep, name: Option<String>) -> Result<Vec<Made>, String> {
        let mut made = Vec::new();
        self.expand_into(used, name, &mut Vec::new(), &mut made)?;
        Ok(made)
    }

    fn expand_into(
        &self,
        used: &UseStep,
        name: Option<String>,
        stack: &mut Vec<String>,
        made: &mut Vec<Made>,
    ) -> Result<(), String> {
        let Some(template) = self.by_name.get(&used.template) else {
            return Err(format!(
                "use: there is no template {:?} (defined: {})",
                used.template,
                if self.by_name.is_empty() {
                    "none".to_owned()
                } else {
                    self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ));
        };
        if stack.contains(&used.template) {
            stack.push(used.template.clone());
            return Err(format!(
                "template {:?} uses itself ({})",
                used.template,
                stack.join(" -> ")
            ));
        }
        if stack.len() >= DEPTH {
            return Err(format!(
                "templates nest deeper than {DEPTH} ({} -> {})",
                stack.join(" -> "),
                used.template
            ));
        }
        let place = format!(
            "template {:?} ({}:{})",
            used.template,
            template.file.display(),
            template.line
        );
        for given in used.with.keys() {
            if !template.params.contains(given) {
                return Err(format!(
                    "{place}: has no parameter {given:?} (its parameters: {})",
                    if template.params.is_empty() {
                        "none".to_owned()
                    } else {
                        template.params.join(", ")
                    }
                ));
            }
        }
        stack.push(used.template.clone());
        let count = template.steps.len();
        for (i, step) in template.steps.iter().enumerate() {
            let step = substitute(step, &template.params, &used.with)
                .map_err(|m| format!("{place}: {m}"))?;
            let written = NamedWritten::deserialize(step)
                .map_err(|e| format!("{place}: step {}: {}", i + 1, e.message()))?;
            let own = match (&name, template.single) {
                (Some(name), true) => Some(name.clone()),
                (_, _) if written.name.is_some() => written.name,
                (Some(name), false) => Some(format!("{name} ({}/{count})", i + 1)),
                (None, _) => None,
            };
            match written.kind {
                Written::Step(action) => made.push(Made {
                    name: own,
                    action: *action,
                }),
                Written::Use(inner) => self
                    .expand_into(&inner, own, stack, made)
                    .map_err(|m| format!("{place}: {m}"))?,
            }
        }
        stack.pop();
        Ok(())
    }
}

impl Template {
    /// A template's table: `params`, and a step's keys or `steps`.
    fn read(value: toml::Value, file: &Path, line: usize) -> Result<Self, String> {
        let toml::Value::Table(mut table) = value else {
            return Err("is not a table".into());
        };
        let params = match table.remove("params") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|p| match p {
                    toml::Value::String(s) if is_name(&s) => Ok(s),
                    other => Err(format!(
                        "params: {other} is not a parameter name (letters, digits, _)"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("params: a list of names, e.g. params = [\"id\"]".into()),
        };
        let (steps, single) = match table.remove("steps") {
            Some(toml::Value::Array(steps)) if table.is_empty() => (steps, false),
            Some(toml::Value::Array(_)) => {
                return Err(format!(
                    "has `steps` and {}: give one step's keys, or `steps` alone",
                    table.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            Some(_) => return Err("steps: a list of steps".into()),
            None => (vec![toml::Value::Table(table)], true),
        };
        if steps.is_empty() {
            return Err("has no steps".into());
        }
        Ok(Self {
            params,
            steps,
            single,
            file: file.to_owned(),
            line,
        })
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `value` with each `${param}` of `params` replaced by its argument.
fn substitute(
    value: &toml::Value,
    params: &[String],
    with: &toml::Table,
) -> Result<toml::Value, String> {
    Ok(match value {
        toml::Value::String(text) => {
            // Only `${param}`: the argument as it is, table or number.
            if let Some(caps) = REFERENCE.captures(text)
                && caps[0].len() == text.len()
                && params.iter().any(|p| *p == caps[1])
                && let Some(given) = with.get(&caps[1])
            {
                return Ok(given.clone());
            }
            let mut problem = None;
            let replaced = REFERENCE.replace_all(text, |caps: &regex::Captures| {
                let name = &caps[1];
                if !params.iter().any(|p| p == name) {
                    return caps[0].to_owned();
                }
                match (with.get(name), caps.get(3)) {
                    (Some(toml::Value::String(s)), _) => s.clone(),
                    (Some(v @ (toml::Value::Table(_) | toml::Value::Array(_))), _) => {
                        problem.get_or_insert(format!(
                            "parameter {name:?} is {v}, which can only stand alone in a string (\"${{{name}}}\")"
                        ));
                        String::new()
                    }
                    (Some(other), _) => other.to_string(),
                    (None, Some(default)) => default.as_str().to_owned(),
                    (None, None) => {
                        problem.get_or_insert(format!(
                            "parameter {name:?} is not given (with = {{ {name} = ... }})"
                        ));
                        String::new()
                    }
                }
            });
            if let Some(problem) = problem {
                return Err(problem);
            }
            toml::Value::String(replaced.into_owned())
        }
        toml::Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .map(|v| substitute(v, params, with))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, params, with)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A template's step as written: read as a scenario's steps are.
struct NamedWritten {
    name: Option<String>,
    kind: Written,
}

impl<'de> Deserialize<'de> for NamedWritten {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = super::kinds::STEP.deserialize(d)?;
        Ok(Self {
            name: table.fields.remove("name"),
            kind: table.chosen,
        })
    }
}

/// A step's kinds, and `use`.
fn written_variants() -> &'static [&'static str] {
    static NAMES: OnceLock<&'static [&'static str]> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = variants::<Action>().to_vec();
        names.push("use");
        Box::leak(names.into_boxed_slice())
    })
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_enum("Written", written_variants(), WrittenVisitor)
    }
}

struct WrittenVisitor;

impl<'de> Visitor<'de> for WrittenVisitor {
    type Value = Written;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a step kind or `use`")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Written, A::Error> {
        let (name, content): (String, A::Variant) = data.variant()?;
        if name == "use" {
            return content.newtype_variant::<UseStep>().map(Written::Use);
        }
        Action::deserialize(Kind { name, content }).map(|action| Written::Step(Box::new(action)))
    }
}

/// A kind's name and its content, handed on to [`Action`]'s parser.
struct Kind<C> {
    name: String,
    content: C,
}

impl<'de, C: VariantAccess<'de>> Deserializer<'de> for Kind<C> {
    type Error = C::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, C::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, C: VariantAccess<'de>> EnumAccess<'de> for Kind<C> {
    type Error = C::Error;
    type Variant = C;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, C), C::Error> {
        let name: de::value::StringDeserializer<C::Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, self.content))
    }
}
