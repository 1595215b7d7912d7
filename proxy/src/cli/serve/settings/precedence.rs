//! A setting's value by precedence (a flag, else its environment variable,
//! else the config file's `[serve]` table, else the default), the messages
//! for bad values, naming the setting and where the value came from, and
//! `--print-config`, which shows each value with its source.

use std::collections::BTreeMap;
use std::path::Path;

use faultgate::config::ServeValue;

use super::parsers::Parser;

/// One setting, as the list describes it.
pub struct Setting {
    /// Its name, and its key in the `[serve]` table.
    pub key: &'static str,
    /// Its flag, without the dashes.
    pub flag: &'static str,
    pub env: Option<&'static str>,
    /// The placeholder of its value in `--help`.
    pub value_name: Option<&'static str>,
    /// The default, as text read by the setting's parser.
    pub default: Option<&'static str>,
    /// Its doc comment's lines: the help.
    pub doc: &'static [&'static str],
    pub conflicts_with: Option<&'static str>,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

/// What a flag or its environment variable gave (clap reads both, and
/// says which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub texts: Vec<String>,
    pub source: Source,
}

/// The config file's `[serve]` table, and the file's name for messages.
pub struct FileTable<'a> {
    pub path: &'a Path,
    pub values: &'a BTreeMap<String, ServeValue>,
}

/// One line of `--print-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub key: &'static str,
    pub flag: &'static str,
    pub value: String,
    pub source: Source,
}

/// One setting's value, by precedence: what the flag or environment gave,
/// else the `[serve]` table's, else the default. Errors name the setting
/// and where its value came from.
pub fn resolve<P: Parser>(
    setting: &Setting,
    parser: &P,
    given: Option<Given>,
    file: Option<&FileTable>,
) -> anyhow::Result<(P::Value, Shown)> {
    // The file's value is checked even when a flag or the environment
    // overrides it: a config file is strict, so a mistake in it shows.
    let in_file = match file.and_then(|f| f.values.get(setting.key).map(|v| (f, v))) {
        None => None,
        Some((file, entry)) => Some(parser.read_toml(&entry.value).map_err(|problem| {
            anyhow::anyhow!(
                "serve.{} in {}:{}: {problem}",
                setting.key,
                file.path.display(),
                entry.line
            )
        })?),
    };
    let (value, source) = match (given, in_file) {
        (Some(given), _) => {
            let value = parser.read_texts(&given.texts).map_err(|problem| {
                let origin = match given.source {
                    Source::Env(var) => {
                        format!("environment variable {var}, for --{}", setting.flag)
                    }
                    _ => format!("--{}", setting.flag),
                };
                anyhow::anyhow!("{origin}: {problem}")
            })?;
            (value, given.source)
        }
        (None, Some(value)) => (value, Source::File),
        (None, None) => {
            let value = match setting.default {
                Some(text) => parser.read_texts(&[text.to_owned()]).map_err(|problem| {
                    anyhow::anyhow!("the default of --{}: {problem}", setting.flag)
                })?,
                None => parser.unset().ok_or_else(|| {
                    anyhow::anyhow!("--{} has no default and was not given", setting.flag)
                })?,
            };
            (value, Source::Default)
        }
    };
    let shown = Shown {
        key: setting.key,
        flag: setting.flag,
        value: parser.show(&value),
        source,
    };
    Ok((value, shown))
}

/// Refuses `[serve]` keys that are no setting's, naming the settings.
pub fn check_keys(file: &FileTable, keys: &[&str]) -> anyhow::Result<()> {
    match file
        .values
        .iter()
        .find(|(key, _)| !keys.contains(&key.as_str()))
    {
        None => Ok(()),
        Some((key, entry)) => Err(anyhow::anyhow!(
            "serve.{key} in {}:{}: not a setting of faultgate serve (the settings: {})",
            file.path.display(),
            entry.line,
            keys.join(", ")
        )),
    }
}

/// `--print-config`'s text.
pub fn print_config(shown: &[Shown], config: Option<&Path>) -> String {
    let mut out = String::from(
        "# faultgate serve: the settings in effect, and where each came from\n\
         # (flags win over environment variables, which win over the config file)\n\
         [serve]\n",
    );
    for line in shown {
        let from = match line.source {
            Source::Flag => format!("flag --{}", line.flag),
            Source::Env(var) => format!("environment {var}"),
            Source::File => format!(
                "config file {}",
                config.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            Source::Default => "default".to_owned(),
        };
        let setting = format!("{} = {}", line.key, line.value);
        out.push_str(&format!("{setting:<44} # {from}\n"));
    }
    out
}
