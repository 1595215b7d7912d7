//! The scenario format's JSON Schema (draft-07, which Taplo and Even
//! Better TOML read), generated from the types that read a file, so it
//! says what the reader takes: `faultgate run --schema` prints it.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::file::File;

/// The schema of a scenario file, as JSON.
pub fn json_schema() -> Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<File>()
        .to_value();
    schema["description"] = "A faultgate scenario: proxies, then setup, steps and teardown. \
                             The reference: docs/scenarios.md."
        .into();
    without_null(&mut schema);
    schema
}

/// TOML has no null: an optional field is one left out. Rust's `Option`
/// makes the generator allow null beside the value; that is taken out, so
/// an editor offers only what a file can hold.
fn without_null(schema: &mut Value) {
    let null = serde_json::json!({ "type": "null" });
    match schema {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                alternatives.retain(|a| *a != null);
                if let [only] = alternatives.as_slice() {
                    let only = only.clone();
                    map.remove("anyOf");
                    map.insert("allOf".into(), Value::Array(vec![only]));
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}
