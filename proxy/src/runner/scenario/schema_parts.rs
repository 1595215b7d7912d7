//! Pieces of the scenario schema that serde's types do not say by
//! themselves: values read by hand-written readers (durations, the seed,
//! `clear = true`, a proxy's mode) and the toxic given to the control API.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A duration as a scenario writes it, for the schema.
pub struct DurationText;

impl JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: \"500ms\", \"1.5s\", \"2m\", \"1m 30s\"; \
                            ${VAR} and ${VAR:-default} from the environment.",
            "examples": ["500ms", "2s", "${DOWN_FOR:-5s}"],
        })
    }
}

/// The seed, for the schema: a number, or a string with variables.
pub(super) fn seed_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Exported to the steps as ${SEED}; a whole number, or a string \
                        that expands to one from the environment.",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string" },
        ],
    })
}

/// `clear = true`: the only value it takes.
pub(super) fn clear_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Remove every toxic: only `true`.",
        "const": true,
    })
}

/// A proxy's mode, as the control API spells it.
pub(super) fn mode_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "What the proxy understands of its traffic (default tcp).",
        "enum": ["tcp", "http", "postgres"],
    })
}

/// A toxic as the control API takes it (Toxiproxy's JSON shape); the API
/// checks the type and its attributes, so other keys are its concern.
pub struct ToxicJson;

impl JsonSchema for ToxicJson {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "toxic".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A toxic, as the control API takes it.",
            "type": "object",
            "required": ["type"],
            "properties": {
                "name": { "type": "string", "description": "Default: TYPE_STREAM, e.g. latency_downstream." },
                "type": { "type": "string", "description": "The toxic type, e.g. latency, http_blackhole, pg_error." },
                "stream": { "type": "string", "description": "downstream (the default) or upstream." },
                "toxicity": { "type": "number", "minimum": 0, "maximum": 1, "description": "The share of connections or requests it acts on; default 1." },
                "every": { "type": "integer", "minimum": 1, "description": "Act on every N-th connection or request in place of toxicity." },
                "clients": { "type": "array", "items": { "type": "string" }, "description": "Act only on clients from these addresses or CIDR ranges." },
                "attributes": { "type": "object", "description": "The type's attributes." },
            },
        })
    }
}
