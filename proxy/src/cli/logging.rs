//! Where logs go and how a line is written.
//!
//! Values in log lines are often chosen by a client (a proxy's or a toxic's
//! name, an upstream address): in the text format, one that holds a space,
//! a quote, an `=` or a line break is written quoted and escaped, so no
//! value can split a line or pass for another field. Strings are quoted
//! always, as the default text format does. JSON lines are escaped by JSON.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use super::LogFormat;

/// Sends logs to stdout. `RUST_LOG` refines the level (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => builder.fmt_fields(LineSafeFields).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// An event's fields as the default text format writes them (the message,
/// then `name=value`), each value that could be misread quoted.
struct LineSafeFields;

impl<'writer> FormatFields<'writer> for LineSafeFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut line = Line {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut line);
        line.result
    }
}

struct Line<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Line<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{}", without_breaks(value))
        } else {
            let name = field.name().trim_start_matches("r#");
            write!(self.writer, "{separator}{name}={value}")
        };
    }
}

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, value);
        } else {
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.write(field, &text);
        } else {
            self.write(field, &quoted_if_needed(text));
        }
    }
}

/// A value as it is, or quoted and escaped if it could be misread. A value
/// already quoted (a string's `Debug`, every quote in it escaped) reads as
/// one value, and is written as it is.
fn quoted_if_needed(text: String) -> String {
    if already_quoted(&text) {
        return text;
    }
    let misreadable = text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if misreadable {
        format!("{text:?}")
    } else {
        text
    }
}

/// Whether `text` is one quoted string: a quote, then characters with
/// every quote and backslash escaped and no control character, then a
/// quote.
fn already_quoted(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return false,
            '"' => return false,
            c if c.is_control() => return false,
            _ => {}
        }
    }
    true
}

/// A message with its line breaks and other control characters escaped, so
/// that it stays on its line.
fn without_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_could_be_misread_are_quoted() {
        assert_eq!(quoted_if_needed("p1".into()), "p1");
        assert_eq!(quoted_if_needed("127.0.0.1:80".into()), "127.0.0.1:80");
        assert_eq!(
            quoted_if_needed("x\"} 1\nfaultgate_injected 1".into()),
            r#""x\"} 1\nfaultgate_injected 1""#
        );
        assert_eq!(quoted_if_needed("a b".into()), r#""a b""#);
        assert_eq!(quoted_if_needed("k=v".into()), r#""k=v""#);
        assert_eq!(quoted_if_needed(String::new()), r#""""#);
        // A string's Debug is quoted already; a text that only looks
        // quoted is not.
        assert_eq!(quoted_if_needed(r#""p q""#.into()), r#""p q""#);
        assert_eq!(
            quoted_if_needed(r#""a" b="c""#.into()),
            r#""\"a\" b=\"c\"""#
        );
        assert_eq!(quoted_if_needed(r#""a\""#.into()), r#""\"a\\\"""#);
    }

    #[test]
    fn messages_stay_on_their_line() {
        assert_eq!(without_breaks("one line"), "one line");
        assert_eq!(without_breaks("two\nlines"), "two\\nlines");
    }
}
