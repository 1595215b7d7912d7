//! `${VAR}` and `${VAR:-default}` in scenario strings: values from the
//! environment, and from captures made by earlier steps.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

pub(crate) static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}").unwrap());

/// The values a run has: captures first, then the environment.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    captured: BTreeMap<String, String>,
}

impl Vars {
    pub fn set(&mut self, name: &str, value: String) {
        self.captured.insert(name.to_owned(), value);
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.captured
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    }

    /// `text` with every reference replaced; an unset one without a
    /// default is an error naming it.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut missing = None;
        let expanded = REFERENCE.replace_all(text, |caps: &regex::Captures| {
            let name = &caps[1];
            match (self.get(name), caps.get(3)) {
                (Some(value), _) => value,
                (None, Some(default)) => default.as_str().to_owned(),
                (None, None) => {
                    missing.get_or_insert_with(|| name.to_owned());
                    String::new()
                }
            }
        });
        match missing {
            Some(name) => Err(format!("${{{name}}} is not set")),
            None => Ok(expanded.into_owned()),
        }
    }

    /// Expands every string inside a JSON value.
    pub fn expand_json(&self, value: &serde_json::Value) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match value {
            Value::String(s) => Value::String(self.expand(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.expand_json(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.expand_json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
}

/// A part of a scenario whose strings may refer to variables: a step, or
/// something inside one. The step types say which of their strings are
/// expanded when they run; checking a scenario visits those.
pub trait Strings {
    /// Calls `each` with every string that is expanded when this runs.
    fn each_string(&self, each: &mut dyn FnMut(&str));
}

impl Strings for String {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        each(self);
    }
}

impl<T: Strings> Strings for Option<T> {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        if let Some(inner) = self {
            inner.each_string(each);
        }
    }
}

impl<T: Strings> Strings for Vec<T> {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        for item in self {
            item.each_string(each);
        }
    }
}

impl<T: Strings + ?Sized> Strings for Box<T> {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        (**self).each_string(each);
    }
}

/// The values of a map; its keys (header names, JSON paths) are taken as
/// written.
impl<K, V: Strings> Strings for BTreeMap<K, V> {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        for value in self.values() {
            value.each_string(each);
        }
    }
}

/// The strings in a JSON value, as [`Vars::expand_json`] expands them.
impl Strings for serde_json::Value {
    fn each_string(&self, each: &mut dyn FnMut(&str)) {
        use serde_json::Value;
        match self {
            Value::String(s) => each(s),
            Value::Array(items) => items.iter().for_each(|v| v.each_string(each)),
            Value::Object(map) => map.values().for_each(|v| v.each_string(each)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// One `${NAME}` or `${NAME:-default}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub default: Option<String>,
}

/// The references in `item`'s strings, in order.
pub fn references(item: &(impl Strings + ?Sized)) -> Vec<Reference> {
    let mut found = Vec::new();
    item.each_string(&mut |text| {
        for c in REFERENCE.captures_iter(text) {
            found.push(Reference {
                name: c[1].to_owned(),
                default: c.get(3).map(|d| d.as_str().to_owned()),
            });
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_environment_and_defaults() {
        let mut vars = Vars::default();
        vars.set("base", "12".into());
        assert_eq!(vars.expand("x${base}y").unwrap(), "x12y");
        assert_eq!(
            vars.expand("${UNSET_FOR_SURE_7:-http://a}").unwrap(),
            "http://a"
        );
        assert_eq!(
            vars.expand("${PATH}").unwrap(),
            std::env::var("PATH").unwrap()
        );
        assert!(
            vars.expand("${UNSET_FOR_SURE_7}")
                .unwrap_err()
                .contains("UNSET_FOR_SURE_7")
        );
    }

    #[test]
    fn references_are_found_in_json_values_not_keys() {
        let json = serde_json::json!({
            "${KEY_NOT_EXPANDED}": ["${A}", { "b": "x ${B:-2} y" }, 3, null],
        });
        assert_eq!(
            references(&json),
            [
                Reference {
                    name: "A".into(),
                    default: None
                },
                Reference {
                    name: "B".into(),
                    default: Some("2".into())
                },
            ]
        );
    }
}
