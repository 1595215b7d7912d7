//! The value parsers of the settings: how each kind of value (an address,
//! a number in a range, a path, one of a set, a duration) is read from a
//! flag or environment variable and from the `[serve]` table, and written
//! back for `--print-config`; and the shapes of settings made of them (one
//! value, maybe none, a list, a switch).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use faultgate::duration;

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

    /// A value of the `[serve]` table: its text, parsed.
    fn read_toml(&self, value: &toml::Value) -> Result<Self::Value, String> {
        self.parse(&self.toml_text(value)?)
    }

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
    fn values() -> Vec<PossibleValue> {
        E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .collect()
    }

    fn names() -> Vec<String> {
        Self::values()
            .iter()
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
        Self::values()
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

/// The one text of a setting of one value: its flag's, its variable's or
/// its default.
fn one_text(texts: &[String]) -> &str {
    texts.last().map_or("", String::as_str)
}

/// A setting with one value, and a default.
pub struct One<S>(pub S);

impl<S: Scalar> Parser for One<S> {
    type Value = S::Value;
    const ARITY: Arity = Arity::One;

    fn read_texts(&self, texts: &[String]) -> Result<S::Value, String> {
        self.0.parse(one_text(texts))
    }

    fn read_toml(&self, value: &toml::Value) -> Result<S::Value, String> {
        self.0.read_toml(value)
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
        self.scalar.parse(one_text(texts)).map(Some)
    }

    fn read_toml(&self, value: &toml::Value) -> Result<Self::Value, String> {
        self.scalar.read_toml(value).map(Some)
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
        items.iter().map(|item| self.0.read_toml(item)).collect()
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
