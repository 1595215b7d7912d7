//! `${VAR}` and `${VAR:-default}` in scenario strings: values from the
//! environment, and from captures made by earlier steps.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::scenario::Action;

static REFERENCE: LazyLock<Regex> =
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

/// The variables an action refers to.
pub fn references(action: &Action) -> Vec<String> {
    let text = format!("{action:?}");
    REFERENCE
        .captures_iter(&text)
        .map(|c| c[1].to_owned())
        .collect()
}

/// Whether every reference to `var` in the action gives a default.
pub fn has_default(action: &Action, var: &str) -> bool {
    let text = format!("{action:?}");
    REFERENCE
        .captures_iter(&text)
        .filter(|c| &c[1] == var)
        .all(|c| c.get(3).is_some())
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
}
