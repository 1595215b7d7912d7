//! The settings of `faultgate serve`, each written once, in the list at the
//! end of this file: its type, parser, flag, environment variable, default
//! and help; its `[serve]` key is its name. From that list come the flags
//! (and `--help`), the precedence (a flag, else its environment variable,
//! else the config file's `[serve]` table, else the default), the messages
//! for bad values (naming the setting and where the value came from) and
//! `--print-config`. Adding a setting is adding an entry there.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, ValueEnum};

use faultgate::config::ServeValue;
use faultgate::duration;

use crate::cli::{LogFormat, default_cache_dir};

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

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// `--api ADDR`.
    One,
    /// `--plugin A --plugin B`, or `--plugin A,B` (and so in its
    /// environment variable).
    Many,
    /// `--no-plugin-cache`: no value; there is no environment variable.
    Switch,
}

/// Reads one setting's value from each kind of source.
pub trait Parser {
    type Value;
    const ARITY: Arity;

    /// What a flag or environment variable gave, or the default's text.
    fn read_texts(&self, texts: &[String]) -> Result<Self::Value, String>;

    /// What the `[serve]` table gave.
    fn read_toml(&self, value: &toml::Value) -> Result<Self::Value, String>;

    /// The value when no source gives one and there is no default text.
    fn unset(&self) -> Option<Self::Value> {
        None
    }

    /// The value as `--print-config` writes it.
    fn show(&self, value: &Self::Value) -> String;

    /// The values `--help` lists, for a setting with a fixed set.
    fn possible_values(&self) -> Vec<PossibleValue> {
        Vec::new()
    }
}

/// Reads one value from text; the parsers of whole settings ([`One`],
/// [`Optional`], [`List`]) are made of these.
pub trait Scalar {
    type Value;

    /// The value's text, from the `[serve]` table's value of the right type.
    fn toml_text(&self, value: &toml::Value) -> Result<String, String>;

    fn parse(&self, text: &str) -> Result<Self::Value, String>;

    fn show(&self, value: &Self::Value) -> String;

    fn possible_values(&self) -> Vec<PossibleValue> {
        Vec::new()
    }
}

/// The message for a `[serve]` value of the wrong type.
fn wrong_type(value: &toml::Value, wanted: &str) -> String {
    let kind = match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    };
    format!("{value} is {kind}, not {wanted}")
}

fn toml_string(value: &toml::Value, wanted: &str) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        other => Err(wrong_type(other, wanted)),
    }
}

// --- the scalars -----------------------------------------------------------

/// A socket address: `127.0.0.1:8474`.
pub struct Address;

impl Scalar for Address {
    type Value = SocketAddr;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        toml_string(value, "an address such as \"127.0.0.1:8474\"")
    }

    fn parse(&self, text: &str) -> Result<SocketAddr, String> {
        text.parse()
            .map_err(|_| format!("{text:?} is not an address such as 127.0.0.1:8474"))
    }

    fn show(&self, value: &SocketAddr) -> String {
        format!("{:?}", value.to_string())
    }
}

/// A whole number in `min..=max`.
pub struct Number<T> {
    pub min: T,
    pub max: T,
}

impl<T> Scalar for Number<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    type Value = T;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        match value {
            toml::Value::Integer(n) => Ok(n.to_string()),
            other => Err(wrong_type(other, "a whole number")),
        }
    }

    fn parse(&self, text: &str) -> Result<T, String> {
        let Ok(n) = text.trim().parse::<T>() else {
            return Err(format!("{text:?} is not a whole number"));
        };
        if n < self.min || n > self.max {
            return Err(format!("{n} is not in {}..={}", self.min, self.max));
        }
        Ok(n)
    }

    fn show(&self, value: &T) -> String {
        value.to_string()
    }
}

/// A path to a file or a directory.
pub struct FilePath;

impl Scalar for FilePath {
    type Value = PathBuf;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        toml_string(value, "a path")
    }

    fn parse(&self, text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }

    fn show(&self, value: &PathBuf) -> String {
        format!("{:?}", value.display().to_string())
    }
}

/// One of the values of a clap `ValueEnum`, in any case.
pub struct Choice<E>(PhantomData<E>);

impl<E> Choice<E> {
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E: ValueEnum> Choice<E> {
    fn names() -> Vec<String> {
        E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_owned())
            .collect()
    }
}

impl<E: ValueEnum> Scalar for Choice<E> {
    type Value = E;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        toml_string(value, &format!("one of {}", Self::names().join(", ")))
    }

    fn parse(&self, text: &str) -> Result<E, String> {
        E::from_str(text, true)
            .map_err(|_| format!("{text:?} is not one of {}", Self::names().join(", ")))
    }

    fn show(&self, value: &E) -> String {
        let name = value
            .to_possible_value()
            .map(|p| p.get_name().to_owned())
            .unwrap_or_default();
        format!("{name:?}")
    }

    fn possible_values(&self) -> Vec<PossibleValue> {
        E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .collect()
    }
}

/// A duration: "10s", "500ms" (see [`faultgate::duration`]).
pub struct Span;

impl Scalar for Span {
    type Value = Duration;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        toml_string(value, "a duration such as \"10s\"")
    }

    fn parse(&self, text: &str) -> Result<Duration, String> {
        duration::parse(text).map_err(|e| e.to_string())
    }

    fn show(&self, value: &Duration) -> String {
        format!("{:?}", duration::show(*value))
    }
}

// --- the shapes of settings ------------------------------------------------

/// A setting with one value, and a default.
pub struct One<S>(pub S);

impl<S: Scalar> Parser for One<S> {
    type Value = S::Value;
    const ARITY: Arity = Arity::One;

    fn read_texts(&self, texts: &[String]) -> Result<S::Value, String> {
        let text = texts.last().map_or("", String::as_str);
        self.0.parse(text)
    }

    fn read_toml(&self, value: &toml::Value) -> Result<S::Value, String> {
        self.0.parse(&self.0.toml_text(value)?)
    }

    fn show(&self, value: &S::Value) -> String {
        self.0.show(value)
    }

    fn possible_values(&self) -> Vec<PossibleValue> {
        self.0.possible_values()
    }
}

/// A setting that may have no value: `unset` says what then (it may work
/// one out), `none` how `--print-config` shows the lack of one.
pub struct Optional<S: Scalar> {
    pub scalar: S,
    pub unset: fn() -> Option<S::Value>,
    pub none: &'static str,
}

impl<S: Scalar> Optional<S> {
    /// No value unless one is given.
    pub fn new(scalar: S, none: &'static str) -> Self {
        Self {
            scalar,
            unset: || None,
            none,
        }
    }
}

impl<S: Scalar> Parser for Optional<S> {
    type Value = Option<S::Value>;
    const ARITY: Arity = Arity::One;

    fn read_texts(&self, texts: &[String]) -> Result<Self::Value, String> {
        One(&self.scalar).read_texts(texts).map(Some)
    }

    fn read_toml(&self, value: &toml::Value) -> Result<Self::Value, String> {
        One(&self.scalar).read_toml(value).map(Some)
    }

    fn unset(&self) -> Option<Self::Value> {
        Some((self.unset)())
    }

    fn show(&self, value: &Self::Value) -> String {
        value
            .as_ref()
            .map_or_else(|| self.none.to_owned(), |v| self.scalar.show(v))
    }
}

impl<S: Scalar> Scalar for &S {
    type Value = S::Value;

    fn toml_text(&self, value: &toml::Value) -> Result<String, String> {
        (**self).toml_text(value)
    }

    fn parse(&self, text: &str) -> Result<S::Value, String> {
        (**self).parse(text)
    }

    fn show(&self, value: &S::Value) -> String {
        (**self).show(value)
    }

    fn possible_values(&self) -> Vec<PossibleValue> {
        (**self).possible_values()
    }
}

/// A setting of any number of values (none by default); in the `[serve]`
/// table, an array.
pub struct List<S>(pub S);

impl<S: Scalar> Parser for List<S> {
    type Value = Vec<S::Value>;
    const ARITY: Arity = Arity::Many;

    fn read_texts(&self, texts: &[String]) -> Result<Self::Value, String> {
        texts.iter().map(|t| self.0.parse(t)).collect()
    }

    fn read_toml(&self, value: &toml::Value) -> Result<Self::Value, String> {
        let toml::Value::Array(items) = value else {
            return Err(wrong_type(value, "an array"));
        };
        items
            .iter()
            .map(|item| self.0.parse(&self.0.toml_text(item)?))
            .collect()
    }

    fn unset(&self) -> Option<Self::Value> {
        Some(Vec::new())
    }

    fn show(&self, value: &Self::Value) -> String {
        let shown: Vec<String> = value.iter().map(|v| self.0.show(v)).collect();
        format!("[{}]", shown.join(", "))
    }
}

/// A flag without a value; `true` or `false` in the `[serve]` table.
pub struct Switch;

impl Parser for Switch {
    type Value = bool;
    const ARITY: Arity = Arity::Switch;

    fn read_texts(&self, _texts: &[String]) -> Result<bool, String> {
        Ok(true)
    }

    fn read_toml(&self, value: &toml::Value) -> Result<bool, String> {
        match value {
            toml::Value::Boolean(on) => Ok(*on),
            other => Err(wrong_type(other, "true or false")),
        }
    }

    fn unset(&self) -> Option<bool> {
        Some(false)
    }

    fn show(&self, value: &bool) -> String {
        value.to_string()
    }
}

// --- from the list to clap, and back ---------------------------------------

/// Hands clap's values over as text, for the setting's parser to read; it
/// tells clap the possible values, for `--help`, without checking them.
#[derive(Clone)]
struct AsText(Vec<PossibleValue>);

impl TypedValueParser for AsText {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(command, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        (!self.0.is_empty()).then(|| Box::new(self.0.iter().cloned()) as Box<_>)
    }
}

/// A doc comment as clap's derive makes help of it: the lines of a
/// paragraph joined; the first paragraph without its final period is the
/// short help, all of them the long one (when there are more).
fn help_of(doc: &[&str]) -> (String, Option<String>) {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in doc
        .iter()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
    {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    let mut short = paragraphs.first().cloned().unwrap_or_default();
    if short.ends_with('.') && !short.ends_with("..") {
        short.pop();
    }
    let long = (paragraphs.len() > 1).then(|| paragraphs.join("\n\n"));
    (short, long)
}

/// The clap argument of a setting.
pub fn arg<P: Parser>(setting: &Setting, parser: &P) -> Arg {
    let (help, long_help) = help_of(setting.doc);
    let mut arg = Arg::new(setting.key).long(setting.flag).help(help);
    if let Some(long) = long_help {
        arg = arg.long_help(long);
    }
    arg = match P::ARITY {
        Arity::Switch => {
            // clap would read "false" from a variable as a bool, which
            // `Switch` does not see.
            assert!(
                setting.env.is_none(),
                "--{}: a switch has no environment variable",
                setting.flag
            );
            arg.action(ArgAction::SetTrue)
        }
        Arity::One => arg
            .action(ArgAction::Set)
            .value_parser(AsText(parser.possible_values())),
        Arity::Many => arg
            .action(ArgAction::Append)
            .value_delimiter(',')
            .value_parser(AsText(parser.possible_values())),
    };
    if let Some(name) = setting.value_name {
        arg = arg.value_name(name);
    }
    if let Some(env) = setting.env {
        arg = arg.env(env);
    }
    if let Some(default) = setting.default {
        arg = arg.default_value(default);
    }
    if let Some(other) = setting.conflicts_with {
        arg = arg.conflicts_with(other);
    }
    arg
}

/// What the flag or the environment gave for a setting, if either did.
pub fn given(matches: &ArgMatches, setting: &Setting) -> Option<Given> {
    let source = match matches.value_source(setting.key)? {
        ValueSource::CommandLine => Source::Flag,
        ValueSource::EnvVariable => Source::Env(setting.env?),
        _ => return None,
    };
    // A switch has no text: clap holds a bool for it.
    let texts = matches
        .try_get_many::<String>(setting.key)
        .ok()
        .flatten()
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    Some(Given { texts, source })
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
fn check_keys(file: &FileTable, keys: &[&str]) -> anyhow::Result<()> {
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

/// Writes, from one list, the settings' struct, their descriptions, their
/// clap arguments and their resolution.
macro_rules! serve_settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty = $parser:expr,
            flag $flag:literal
            $(, env $env:literal)?
            $(, value $value_name:literal)?
            $(, default $default:literal)?
            $(, conflicts_with $conflict:literal)?;
    )+) => {
        /// The settings in effect.
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                pub $key: $ty,
            )+
        }

        /// Each setting's description, under its name.
        struct Descriptions {
            $($key: Setting,)+
        }

        fn descriptions() -> Descriptions {
            Descriptions {
                $(
                    $key: Setting {
                        key: stringify!($key),
                        flag: $flag,
                        env: None $(.or(Some($env)))?,
                        value_name: None $(.or(Some($value_name)))?,
                        default: None $(.or(Some($default)))?,
                        doc: &[$($doc),+],
                        conflicts_with: None $(.or(Some($conflict)))?,
                    },
                )+
            }
        }

        /// The names of the settings, which are their `[serve]` keys.
        pub const KEYS: &[&str] = &[$(stringify!($key)),+];

        /// The settings' clap arguments.
        pub fn args() -> Vec<Arg> {
            let described = descriptions();
            vec![$(arg(&described.$key, &$parser)),+]
        }

        impl Settings {
            /// Every setting by precedence; `given` says what its flag or
            /// environment variable gave. Also the lines of
            /// `--print-config`, in the list's order.
            pub fn resolve(
                given: impl Fn(&Setting) -> Option<Given>,
                file: Option<&FileTable>,
            ) -> anyhow::Result<(Self, Vec<Shown>)> {
                if let Some(file) = file {
                    check_keys(file, KEYS)?;
                }
                let described = descriptions();
                let mut shown = Vec::new();
                let settings = Self {
                    $(
                        $key: {
                            let setting = &described.$key;
                            let (value, line) = resolve(setting, &$parser, given(setting), file)?;
                            shown.push(line);
                            value
                        },
                    )+
                };
                Ok((settings, shown))
            }
        }
    };
}

serve_settings! {
    /// Address of the control API.
    api: SocketAddr = One(Address),
        flag "api", env "FAULTGATE_API", value "ADDR", default "127.0.0.1:8474";

    /// Seed of every random decision (toxicity, jitter...). The same seed
    /// replays the same decisions. Without it a seed is picked and logged.
    seed: Option<u64> = Optional::new(Number { min: 0, max: u64::MAX }, "(picked at start, and logged)"),
        flag "seed", env "FAULTGATE_SEED", value "N";

    /// Load a fault plugin (a .wasm component, or .wat text), or every one in
    /// a directory.
    /// Repeatable. A plugin with a built-in's name replaces it.
    plugins: Vec<PathBuf> = List(FilePath),
        flag "plugin", env "FAULTGATE_PLUGINS", value "PATH";

    /// Memory one plugin instance may use, in MiB.
    plugin_memory_mib: u64 = One(Number { min: 1, max: 64 }),
        flag "plugin-memory-mib", env "FAULTGATE_PLUGIN_MEMORY_MIB", value "MIB", default "16";

    /// Time one plugin call may take, in milliseconds.
    plugin_deadline_ms: u64 = One(Number { min: 1, max: 60_000 }),
        flag "plugin-deadline-ms", env "FAULTGATE_PLUGIN_DEADLINE_MS", value "MS", default "100";

    /// Plugin instances alive at once (one per connection and fault in use).
    max_plugin_instances: u32 = One(Number { min: 16, max: u32::MAX }),
        flag "max-plugin-instances", env "FAULTGATE_MAX_PLUGIN_INSTANCES", value "N", default "10000";

    /// Where compiled plugins are kept between runs, keyed by content hash
    /// [default: $XDG_CACHE_HOME/faultgate, else ~/.cache/faultgate].
    plugin_cache: Option<PathBuf> = Optional { scalar: FilePath, unset: default_cache_dir, none: "(none)" },
        flag "plugin-cache", env "FAULTGATE_PLUGIN_CACHE", value "DIR";

    /// Compile plugins at every start instead of caching them.
    no_plugin_cache: bool = Switch,
        flag "no-plugin-cache", conflicts_with "plugin_cache";

    /// Log format.
    log_format: LogFormat = One(Choice::<LogFormat>::new()),
        flag "log-format", env "FAULTGATE_LOG_FORMAT", value "LOG_FORMAT", default "text";

    /// On SIGTERM or SIGINT: stop accepting, let open connections finish for
    /// this long (e.g. "10s", "500ms"; "0s" closes them at once), then close
    /// the rest. A second signal cuts the wait short.
    shutdown_grace: Duration = One(Span),
        flag "shutdown-grace", env "FAULTGATE_SHUTDOWN_GRACE", value "DURATION", default "10s";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[serve]` table read from a real file, as `serve` reads it.
    struct File {
        _dir: tempfile::TempDir,
        path: PathBuf,
        values: BTreeMap<String, ServeValue>,
    }

    impl File {
        fn new(text: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.toml");
            std::fs::write(&path, text).unwrap();
            let values = faultgate::config::load_serve(&path).unwrap();
            Self {
                _dir: dir,
                path,
                values,
            }
        }

        fn table(&self) -> FileTable<'_> {
            FileTable {
                path: &self.path,
                values: &self.values,
            }
        }
    }

    /// The settings' flags parsed by clap from `argv`, without the
    /// environment variables (the test's own environment must not count).
    fn flags(argv: &[&str]) -> ArgMatches {
        clap::Command::new("serve")
            .args(args().into_iter().map(|a| a.env(None)))
            .try_get_matches_from(std::iter::once("serve").chain(argv.iter().copied()))
            .unwrap()
    }

    fn env(var: &'static str, text: &str) -> Option<Given> {
        Some(Given {
            texts: vec![text.to_owned()],
            source: Source::Env(var),
        })
    }

    fn source_of(shown: &[Shown], key: &str) -> Source {
        shown.iter().find(|s| s.key == key).unwrap().source
    }

    #[test]
    fn with_nothing_given_every_setting_has_its_default() {
        let (settings, shown) = Settings::resolve(|_| None, None).unwrap();
        assert_eq!(settings.api, "127.0.0.1:8474".parse().unwrap());
        assert_eq!(settings.seed, None);
        assert!(settings.plugins.is_empty());
        assert_eq!(settings.plugin_memory_mib, 16);
        assert_eq!(settings.plugin_deadline_ms, 100);
        assert_eq!(settings.max_plugin_instances, 10_000);
        assert_eq!(settings.plugin_cache, default_cache_dir());
        assert!(!settings.no_plugin_cache);
        assert!(matches!(settings.log_format, LogFormat::Text));
        assert_eq!(settings.shutdown_grace, Duration::from_secs(10));
        let keys: Vec<&str> = shown.iter().map(|s| s.key).collect();
        assert_eq!(keys, KEYS);
        assert!(shown.iter().all(|s| s.source == Source::Default));
        assert_eq!(shown[1].value, "(picked at start, and logged)");
    }

    #[test]
    fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
        let file = File::new(
            "[serve]\napi = \"127.0.0.1:9001\"\nseed = 1\nshutdown_grace = \"3s\"\nplugins = [\"x\"]\nlog_format = \"json\"\nno_plugin_cache = false\n",
        );
        let matches = flags(&[
            "--api",
            "127.0.0.1:9003",
            "--plugin",
            "a,b",
            "--no-plugin-cache",
        ]);
        let given = |setting: &Setting| match setting.key {
            // What clap gives for a variable that is set and no flag.
            "seed" => env("FAULTGATE_SEED", "7"),
            _ => given(&matches, setting),
        };
        let (settings, shown) = Settings::resolve(given, Some(&file.table())).unwrap();
        assert_eq!(settings.api, "127.0.0.1:9003".parse().unwrap());
        assert_eq!(source_of(&shown, "api"), Source::Flag);
        assert_eq!(settings.seed, Some(7));
        assert_eq!(source_of(&shown, "seed"), Source::Env("FAULTGATE_SEED"));
        assert_eq!(settings.plugins, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(source_of(&shown, "plugins"), Source::Flag);
        assert!(settings.no_plugin_cache);
        assert_eq!(source_of(&shown, "no_plugin_cache"), Source::Flag);
        assert_eq!(settings.shutdown_grace, Duration::from_secs(3));
        assert_eq!(source_of(&shown, "shutdown_grace"), Source::File);
        assert!(matches!(settings.log_format, LogFormat::Json));
        assert_eq!(source_of(&shown, "plugin_memory_mib"), Source::Default);

        let text = print_config(&shown, Some(&file.path));
        assert!(
            text.contains(&format!(
                "{:<44} # flag --plugin\n",
                "plugins = [\"a\", \"b\"]"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{:<44} # config file {}\n",
                "shutdown_grace = \"3s\"",
                file.path.display()
            )),
            "{text}"
        );
        assert!(text.contains("seed = 7 "), "{text}");
    }

    /// The message for a bad value of one setting given one way.
    fn refused(file: &str, given: impl Fn(&Setting) -> Option<Given>) -> String {
        let file = File::new(file);
        match Settings::resolve(given, Some(&file.table())) {
            Ok(_) => panic!("accepted"),
            Err(e) => e
                .to_string()
                .replace(&file.path.display().to_string(), "f.toml"),
        }
    }

    #[test]
    fn a_bad_value_names_the_setting_and_where_it_came_from() {
        let flag = |argv: &'static [&'static str]| {
            let matches = flags(argv);
            move |setting: &Setting| given(&matches, setting)
        };
        // Address, from a flag.
        assert_eq!(
            refused("", flag(&["--api", "nowhere"])),
            "--api: \"nowhere\" is not an address such as 127.0.0.1:8474"
        );
        // A number, from the environment; and from the file, out of range.
        assert_eq!(
            refused("", |s: &Setting| (s.key == "seed")
                .then(|| env("FAULTGATE_SEED", "soon"))
                .flatten()),
            "environment variable FAULTGATE_SEED, for --seed: \"soon\" is not a whole number"
        );
        assert_eq!(
            refused("[serve]\n\nplugin_memory_mib = 500\n", |_| None),
            "serve.plugin_memory_mib in f.toml:3: 500 is not in 1..=64"
        );
        assert_eq!(
            refused("[serve]\nmax_plugin_instances = \"16\"\n", |_| None),
            "serve.max_plugin_instances in f.toml:2: \"16\" is a string, not a whole number"
        );
        // A list, from the file.
        assert_eq!(
            refused("[serve]\nplugins = [\"a\", 3]\n", |_| None),
            "serve.plugins in f.toml:2: 3 is an integer, not a path"
        );
        assert_eq!(
            refused("[serve]\nplugins = \"a\"\n", |_| None),
            "serve.plugins in f.toml:2: \"a\" is a string, not an array"
        );
        // An optional path, from the file.
        assert_eq!(
            refused("[serve]\nplugin_cache = 3\n", |_| None),
            "serve.plugin_cache in f.toml:2: 3 is an integer, not a path"
        );
        // A switch, from the file.
        assert_eq!(
            refused("[serve]\nno_plugin_cache = \"yes\"\n", |_| None),
            "serve.no_plugin_cache in f.toml:2: \"yes\" is a string, not true or false"
        );
        // A choice, from the environment and from the file.
        assert_eq!(
            refused("", |s: &Setting| (s.key == "log_format")
                .then(|| env("FAULTGATE_LOG_FORMAT", "xml"))
                .flatten()),
            "environment variable FAULTGATE_LOG_FORMAT, for --log-format: \"xml\" is not one of text, json"
        );
        assert_eq!(
            refused("[serve]\nlog_format = \"xml\"\n", |_| None),
            "serve.log_format in f.toml:2: \"xml\" is not one of text, json"
        );
        // A duration, from a flag and from the file.
        let error = refused("", flag(&["--shutdown-grace", "later"]));
        assert!(
            error.starts_with("--shutdown-grace: \"later\" is not a duration"),
            "{error}"
        );
        let error = refused("[serve]\nshutdown_grace = \"later\"\n", |_| None);
        assert!(
            error.starts_with("serve.shutdown_grace in f.toml:2: \"later\" is not a duration"),
            "{error}"
        );
    }

    #[test]
    fn the_file_is_checked_even_where_a_flag_overrides_it() {
        let matches = flags(&["--api", "127.0.0.1:1"]);
        assert_eq!(
            refused("[serve]\napi = \"nowhere\"\n", |s| given(&matches, s)),
            "serve.api in f.toml:2: \"nowhere\" is not an address such as 127.0.0.1:8474"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_settings() {
        assert_eq!(
            refused("[serve]\napi = \"127.0.0.1:1\"\napi_port = 1\n", |_| None),
            format!(
                "serve.api_port in f.toml:3: not a setting of faultgate serve (the settings: {})",
                KEYS.join(", ")
            )
        );
    }

    #[test]
    fn help_is_made_of_the_doc_comment_as_clap_makes_it() {
        assert_eq!(
            help_of(&[" One line", " and the next."]),
            ("One line and the next".to_owned(), None)
        );
        assert_eq!(
            help_of(&[" Summary.", "", " More", " words."]),
            (
                "Summary".to_owned(),
                Some("Summary.\n\nMore words.".to_owned())
            )
        );
        assert_eq!(help_of(&[" Wait..."]).0, "Wait...");
    }
}
