//! A one-of table's JSON Schema: the enum's own schema (one alternative per
//! choice, each a table with exactly that key), with the table's other keys
//! added to every alternative. So a table with no choice, two choices or
//! an unknown key matches no alternative, as [`Shape`]'s reader refuses it.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

use super::one_of::Shape;

impl Shape {
    /// The schema of a table of this shape whose choices are the variants
    /// of `E`; `required` lists the fields that must be given (`proxy`).
    pub fn json_schema<E: JsonSchema>(
        &self,
        generator: &mut SchemaGenerator,
        required: &[&str],
        description: &str,
    ) -> Schema {
        let choices = E::json_schema(generator);
        let mut alternatives = Vec::new();
        for mut alternative in choice_alternatives(choices.to_value()) {
            if let Some(table) = alternative.as_object_mut() {
                let properties = table
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                for field in self.fields {
                    properties[*field] = json_schema!({ "type": "string" }).to_value();
                }
                if let Some(Value::Array(needed)) = table.get_mut("required") {
                    needed.extend(required.iter().map(|f| Value::from(*f)));
                }
            }
            alternatives.push(alternative);
        }
        json_schema!({
            "description": description,
            "type": "object",
            "oneOf": alternatives,
        })
    }
}

/// An externally tagged enum's alternatives: each `{ "choice": ... }`
/// table. Unit variants would be plain strings; every choice here has a
/// value, so there are none.
fn choice_alternatives(enum_schema: Value) -> Vec<Value> {
    match enum_schema {
        Value::Object(mut schema) => match schema.remove("oneOf").or(schema.remove("anyOf")) {
            Some(Value::Array(alternatives)) => alternatives,
            _ => vec![Value::Object(schema)],
        },
        other => vec![other],
    }
}
