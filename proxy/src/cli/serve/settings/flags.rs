//! From the list to clap, and back: each setting's flag (with its
//! environment variable, `--help` text and possible values), and what
//! clap read for it.

use clap::builder::{PossibleValue, TypedValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};

use super::parsers::{Arity, Parser};
use super::precedence::{Given, Setting, Source};

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

#[cfg(test)]
mod tests {
    use super::*;

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
