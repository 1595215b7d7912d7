//! What a plugin declares beyond its attributes: the streams it acts on and
//! the proxy modes it acts in. `description` is a record every plugin built
//! against the contract returns, so it cannot grow a field without breaking
//! them; the declarations travel instead as attribute specs with reserved
//! names (`@streams`, `@modes`), text whose default lists the values. A
//! plugin that declares nothing acts on both streams and in every mode its
//! kind works in, as every plugin did before the declarations existed.

use super::bindings::{AttributeSpec, Direction, Value, ValueType};
use super::kind::PluginKind;

/// The reserved name of the streams declaration.
pub(super) const STREAMS: &str = "@streams";
/// The reserved name of the modes declaration.
pub(super) const MODES: &str = "@modes";

const ALL_STREAMS: [&str; 2] = ["upstream", "downstream"];

/// What a description declares, or what is taken when it declares nothing.
pub(super) struct Declared {
    pub streams: Vec<&'static str>,
    pub modes: Vec<&'static str>,
}

/// Whether an attribute name is a declaration rather than an attribute.
pub(super) fn is_declaration(name: &str) -> bool {
    name.starts_with('@')
}

/// A stream's name, as the API and the declarations write it.
pub(super) fn stream_name(stream: Direction) -> &'static str {
    match stream {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
    }
}

/// The modes a kind of plugin works in.
fn kind_modes(kind: PluginKind) -> &'static [&'static str] {
    match kind {
        PluginKind::Tcp => &["tcp", "http", "postgres"],
        PluginKind::Http => &["http"],
        PluginKind::Postgres => &["postgres"],
    }
}

/// Reads the declarations among a description's attribute specs; an
/// unknown declaration, or a value outside what it may list, is a bad
/// description (the plugin is refused, naming it).
pub(super) fn read(specs: &[AttributeSpec], kind: PluginKind) -> Result<Declared, String> {
    let mut declared = Declared {
        streams: ALL_STREAMS.to_vec(),
        modes: kind_modes(kind).to_vec(),
    };
    for spec in specs.iter().filter(|s| is_declaration(&s.name)) {
        let (slot, allowed): (&mut Vec<&'static str>, &[&'static str]) = match spec.name.as_str() {
            STREAMS => (&mut declared.streams, &ALL_STREAMS),
            MODES => (&mut declared.modes, kind_modes(kind)),
            other => {
                return Err(format!(
                    "describe() lists {other:?}: names starting with '@' are declarations, \
                     and the known ones are {STREAMS} and {MODES}"
                ));
            }
        };
        let list = match (&spec.type_, &spec.default) {
            (ValueType::Text, Some(Value::Text(list))) => list,
            _ => {
                return Err(format!(
                    "describe() declares {}: a declaration is text, its default the \
                     comma-separated values (one of {})",
                    spec.name,
                    allowed.join(", ")
                ));
            }
        };
        let mut values = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some(value) = allowed.iter().find(|a| a.eq_ignore_ascii_case(item)) else {
                return Err(format!(
                    "describe() declares {} {item:?}; it may list {}",
                    spec.name,
                    allowed.join(", ")
                ));
            };
            if !values.contains(value) {
                values.push(*value);
            }
        }
        if values.is_empty() {
            return Err(format!(
                "describe() declares {} empty; it lists at least one of {}",
                spec.name,
                allowed.join(", ")
            ));
        }
        *slot = values;
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, list: &str) -> AttributeSpec {
        AttributeSpec {
            name: name.into(),
            type_: ValueType::Text,
            default: Some(Value::Text(list.into())),
            summary: String::new(),
        }
    }

    #[test]
    fn nothing_declared_is_both_streams_and_every_mode_of_the_kind() {
        let declared = read(&[text("delay", "")], PluginKind::Tcp).unwrap();
        assert_eq!(declared.streams, ["upstream", "downstream"]);
        assert_eq!(declared.modes, ["tcp", "http", "postgres"]);
        let declared = read(&[], PluginKind::Postgres).unwrap();
        assert_eq!(declared.modes, ["postgres"]);
    }

    #[test]
    fn declarations_are_read_and_checked_against_the_kind() {
        let declared = read(
            &[text(STREAMS, "Upstream"), text(MODES, "tcp, postgres")],
            PluginKind::Tcp,
        )
        .unwrap();
        assert_eq!(declared.streams, ["upstream"]);
        assert_eq!(declared.modes, ["tcp", "postgres"]);
        let wrong_mode = read(&[text(MODES, "tcp")], PluginKind::Http).err().unwrap();
        assert!(wrong_mode.contains("it may list http"), "{wrong_mode}");
        let unknown = read(&[text("@stream", "upstream")], PluginKind::Tcp)
            .err()
            .unwrap();
        assert!(unknown.contains("\"@stream\""), "{unknown}");
        let empty = read(&[text(STREAMS, " ")], PluginKind::Tcp).err().unwrap();
        assert!(empty.contains("empty"), "{empty}");
    }
}
