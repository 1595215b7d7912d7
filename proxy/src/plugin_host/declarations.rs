//! What a plugin declares beyond its attributes: the streams it acts on,
//! the proxy modes it acts in, and the limits it needs beyond the host's
//! defaults. `description` is a record every plugin built against the
//! contract returns, so it cannot grow a field without breaking them; the
//! declarations travel instead as attribute specs with reserved names
//! (`@streams`, `@modes`: text whose default lists the values;
//! `@memory-mib`, `@deadline-ms`: an integer default). A plugin that
//! declares nothing acts on both streams and in every mode its kind works
//! in, under the host's limits, as every plugin did before the
//! declarations existed.

use super::bindings::{AttributeSpec, Direction, Value, ValueType};
use super::engine_config::MEMORY_RESERVATION;
use super::kind::PluginKind;

/// The reserved name of the streams declaration.
pub(super) const STREAMS: &str = "@streams";
/// The reserved name of the modes declaration.
pub(super) const MODES: &str = "@modes";
/// The reserved name of the memory declaration (MiB per instance).
pub(super) const MEMORY_MIB: &str = "@memory-mib";
/// The reserved name of the call deadline declaration (ms per call).
pub(super) const DEADLINE_MS: &str = "@deadline-ms";

/// The most memory a plugin may declare: the address space reserved for
/// each instance's linear memory.
pub const MAX_MEMORY_MIB: u64 = MEMORY_RESERVATION >> 20;
/// The longest call deadline a plugin may declare, as long as the host's
/// own setting may be.
pub const MAX_DEADLINE_MS: u64 = 60_000;

const ALL_STREAMS: [&str; 2] = ["upstream", "downstream"];

/// What a description declares, or what is taken when it declares nothing.
pub(super) struct Declared {
    pub streams: Vec<&'static str>,
    pub modes: Vec<&'static str>,
    /// The memory one instance needs, in MiB, if declared.
    pub memory_mib: Option<u64>,
    /// The time one call needs, in ms, if declared.
    pub deadline_ms: Option<u64>,
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
        memory_mib: None,
        deadline_ms: None,
    };
    for spec in specs.iter().filter(|s| is_declaration(&s.name)) {
        match spec.name.as_str() {
            STREAMS => declared.streams = list(spec, &ALL_STREAMS)?,
            MODES => declared.modes = list(spec, kind_modes(kind))?,
            MEMORY_MIB => declared.memory_mib = Some(number(spec, MAX_MEMORY_MIB)?),
            DEADLINE_MS => declared.deadline_ms = Some(number(spec, MAX_DEADLINE_MS)?),
            other => {
                return Err(format!(
                    "describe() lists {other:?}: names starting with '@' are declarations, \
                     and the known ones are {STREAMS}, {MODES}, {MEMORY_MIB} and {DEADLINE_MS}"
                ));
            }
        }
    }
    Ok(declared)
}

/// A list declaration's values, each one of `allowed`.
fn list(spec: &AttributeSpec, allowed: &[&'static str]) -> Result<Vec<&'static str>, String> {
    let text = match (&spec.type_, &spec.default) {
        (ValueType::Text, Some(Value::Text(text))) => text,
        _ => {
            return Err(format!(
                "describe() declares {}: this declaration is text, its default the \
                 comma-separated values (one of {})",
                spec.name,
                allowed.join(", ")
            ));
        }
    };
    let mut values = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
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
    Ok(values)
}

/// A number declaration's value, from 1 to `max`.
fn number(spec: &AttributeSpec, max: u64) -> Result<u64, String> {
    match (&spec.type_, &spec.default) {
        (ValueType::Integer, Some(Value::Integer(n))) if (1..=max as i64).contains(n) => {
            Ok(*n as u64)
        }
        (ValueType::Integer, Some(Value::Integer(n))) => Err(format!(
            "describe() declares {} {n}; it may be from 1 to {max}",
            spec.name
        )),
        _ => Err(format!(
            "describe() declares {}: this declaration is an integer, its default the \
             value (from 1 to {max})",
            spec.name
        )),
    }
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

    fn integer(name: &str, value: i64) -> AttributeSpec {
        AttributeSpec {
            name: name.into(),
            type_: ValueType::Integer,
            default: Some(Value::Integer(value)),
            summary: String::new(),
        }
    }

    #[test]
    fn limits_are_declared_as_integers_within_what_the_host_allows() {
        let declared = read(&[], PluginKind::Http).unwrap();
        assert_eq!((declared.memory_mib, declared.deadline_ms), (None, None));
        let declared = read(
            &[integer(MEMORY_MIB, 48), integer(DEADLINE_MS, 1000)],
            PluginKind::Http,
        )
        .unwrap();
        assert_eq!(
            (declared.memory_mib, declared.deadline_ms),
            (Some(48), Some(1000))
        );
        let too_much = read(&[integer(MEMORY_MIB, 65)], PluginKind::Tcp)
            .err()
            .unwrap();
        assert!(
            too_much.contains("@memory-mib 65; it may be from 1 to 64"),
            "{too_much}"
        );
        let zero = read(&[integer(DEADLINE_MS, 0)], PluginKind::Tcp)
            .err()
            .unwrap();
        assert!(zero.contains("from 1 to 60000"), "{zero}");
        let as_text = read(&[text(MEMORY_MIB, "48")], PluginKind::Tcp)
            .err()
            .unwrap();
        assert!(as_text.contains("is an integer"), "{as_text}");
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
