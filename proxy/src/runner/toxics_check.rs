//! Checking a scenario's toxics offline (`faultgate run --check`), against
//! the plugins' own descriptions: the toxic types that exist, the
//! attributes each takes and their types, the streams and modes each acts
//! on. What holds `${VAR}` is not known before the run: a type or stream
//! with a variable is not checked, an attribute's name always is, and its
//! value only when it has no variable.

use serde_json::{Map, Value};

use super::scenario::{Action, FaultOperation, Scenario, Step};
use crate::plugin_host::Description;

/// Every mistake in the toxics of `scenario`'s fault steps, one message
/// each, naming the file and line, the step (section, index, name) and the
/// field, and what is accepted there. `plugins` are the known plugins.
pub fn check_toxics(scenario: &Scenario, plugins: &[Description]) -> Vec<String> {
    let mut errors = Vec::new();
    let sections = [
        ("setup", &scenario.setup),
        ("steps", &scenario.steps),
        ("teardown", &scenario.teardown),
    ];
    for (section, steps) in sections {
        for (index, step) in steps.iter().enumerate() {
            // A step without a name is named by its place, already said.
            let unnamed = format!("{section}[{}] {}", index + 1, step.action.kind());
            let name = match step.name == unnamed {
                true => String::new(),
                false => format!(" {:?}", step.name),
            };
            let at = |field: &str, message: String| {
                format!(
                    "{}:{}: {section}[{}]{name}: {field}: {message}",
                    scenario.file.display(),
                    step.line,
                    index + 1,
                )
            };
            for (field, message) in check_step(scenario, step, plugins) {
                errors.push(at(&field, message));
            }
        }
    }
    errors
}

/// The mistakes of one step, as (field, message).
fn check_step(scenario: &Scenario, step: &Step, plugins: &[Description]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut action = &step.action;
    let mut prefix = String::new();
    // A fault step may sit inside a wait_until's or a holds' check, or a
    // capture's from.
    loop {
        match action {
            Action::WaitUntil(w) => {
                prefix.push_str("wait_until.check.");
                action = &w.check;
            }
            Action::Holds(h) => {
                prefix.push_str("holds.check.");
                action = &h.check;
            }
            Action::Capture(c) => {
                prefix.push_str("capture.from.");
                action = &c.from;
            }
            _ => break,
        }
    }
    let Action::Fault(fault) = action else {
        return found;
    };
    let mode = scenario
        .proxies
        .get(&fault.proxy)
        .and_then(|p| p.create.as_ref())
        .and_then(|c| c.mode)
        .map(|m| (fault.proxy.as_str(), m.to_string()));
    let toxics: Vec<(String, &Value)> = match &fault.operation {
        FaultOperation::Add(toxic) => vec![(format!("{prefix}fault.add"), toxic)],
        FaultOperation::Replace(chain) => chain
            .iter()
            .enumerate()
            .map(|(i, toxic)| (format!("{prefix}fault.replace[{}]", i + 1), toxic))
            .collect(),
        _ => Vec::new(),
    };
    for (field, toxic) in toxics {
        check_toxic(&field, toxic, plugins, mode.as_ref(), &mut found);
    }
    found
}

fn has_variable(text: &str) -> bool {
    text.contains("${")
}

/// One toxic, as the fault step writes it (Toxiproxy's JSON shape).
fn check_toxic(
    field: &str,
    toxic: &Value,
    plugins: &[Description],
    mode: Option<&(&str, String)>,
    found: &mut Vec<(String, String)>,
) {
    let Some(toxic) = toxic.as_object() else {
        found.push((
            field.to_owned(),
            format!("expected a toxic (a table with type, stream, attributes), got {toxic}"),
        ));
        return;
    };
    let kind = match toxic.get("type") {
        Some(Value::String(kind)) if has_variable(kind) => return,
        Some(Value::String(kind)) => kind,
        None => {
            found.push((
                format!("{field}.type"),
                "missing: every toxic has a type".into(),
            ));
            return;
        }
        Some(other) => {
            found.push((
                format!("{field}.type"),
                format!("expected a toxic type's name, got {other}"),
            ));
            return;
        }
    };
    let Some(plugin) = plugins.iter().find(|p| p.name == *kind) else {
        let mut known: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
        known.sort_unstable();
        found.push((
            format!("{field}.type"),
            format!(
                "{kind:?} is not a known toxic type (known: {}; `faultgate run --check \
                 --plugin FILE` adds a plugin's)",
                known.join(", ")
            ),
        ));
        return;
    };
    check_stream(field, toxic, plugin, found);
    if let Some((proxy, mode)) = mode
        && !plugin.acts_in_mode(mode)
    {
        found.push((
            format!("{field}.type"),
            format!(
                "{kind:?} acts on proxies in {} mode only, and proxy {proxy:?} is created in \
                 {mode} mode",
                plugin.modes.join(" or ")
            ),
        ));
    }
    match toxic.get("attributes") {
        None => {}
        Some(Value::Object(attributes)) => check_attributes(field, attributes, plugin, found),
        Some(other) => found.push((
            format!("{field}.attributes"),
            format!("expected a table of attributes, got {other}"),
        )),
    }
}

/// The stream (downstream when not given, as the API takes it) against the
/// streams the plugin acts on.
fn check_stream(
    field: &str,
    toxic: &Map<String, Value>,
    plugin: &Description,
    found: &mut Vec<(String, String)>,
) {
    let stream = match toxic.get("stream") {
        None => "downstream".to_owned(),
        Some(Value::String(s)) if has_variable(s) => return,
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(other) => {
            found.push((
                format!("{field}.stream"),
                format!("expected \"upstream\" or \"downstream\", got {other}"),
            ));
            return;
        }
    };
    if stream != "upstream" && stream != "downstream" {
        found.push((
            format!("{field}.stream"),
            format!("{stream:?} is not a stream; expected \"upstream\" or \"downstream\""),
        ));
    } else if !plugin.streams.contains(&stream.as_str()) {
        let given = if toxic.contains_key("stream") {
            ""
        } else {
            " (the default when no stream is given)"
        };
        found.push((
            format!("{field}.stream"),
            format!(
                "{:?} acts on the {} stream only, not {stream}{given}",
                plugin.name,
                plugin.streams.join(" and ")
            ),
        ));
    }
}

/// Attribute names always; values when they hold no variable.
fn check_attributes(
    field: &str,
    attributes: &Map<String, Value>,
    plugin: &Description,
    found: &mut Vec<(String, String)>,
) {
    let takes = || {
        if plugin.attributes.is_empty() {
            format!("{:?} takes no attributes", plugin.name)
        } else {
            let each: Vec<String> = plugin
                .attributes
                .iter()
                .map(|a| format!("{} ({})", a.name, a.value_type))
                .collect();
            format!("{:?} takes {}", plugin.name, each.join(", "))
        }
    };
    for (name, value) in attributes {
        let at = format!("{field}.attributes.{name}");
        let Some(spec) = plugin.attributes.iter().find(|a| a.name == *name) else {
            found.push((at, format!("not an attribute of this type; {}", takes())));
            continue;
        };
        if let Value::String(text) = value
            && has_variable(text)
        {
            continue;
        }
        let fits = match spec.value_type {
            "integer" => {
                value.as_i64().is_some()
                    || value
                        .as_f64()
                        .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9e15)
            }
            "float" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => value.is_string(),
        };
        if !fits {
            found.push((
                at,
                format!(
                    "expected {} {}, got {value}",
                    if spec.value_type == "integer" {
                        "an"
                    } else {
                        "a"
                    },
                    match spec.value_type {
                        "float" => "number",
                        "text" => "string",
                        other => other,
                    }
                ),
            ));
        }
    }
}
