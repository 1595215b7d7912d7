//! The reference (docs/scenarios.md) against the code: every field of
//! every table in the schema generated from the reader's types is in the
//! reference's table of that name, with a type, a default and an example,
//! and every field the reference lists is one the reader takes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::json_schema;

const REFERENCE: &str = include_str!("../../../../docs/scenarios.md");

/// Table name to its fields, from the schema: the root is `scenario`,
/// each definition with fields is a table of its name. A one-of table's
/// fields are those of all its alternatives.
fn schema_tables() -> BTreeMap<String, BTreeSet<String>> {
    let schema = json_schema();
    let mut tables = BTreeMap::new();
    tables.insert("scenario".to_owned(), fields_of(&schema));
    for (name, definition) in schema["definitions"].as_object().unwrap() {
        let fields = fields_of(definition);
        if !fields.is_empty() {
            tables.insert(name.clone(), fields);
        }
    }
    tables
}

fn fields_of(schema: &Value) -> BTreeSet<String> {
    let mut fields: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema[combinator].as_array().into_iter().flatten() {
            if alternative.get("$ref").is_none() {
                fields.extend(fields_of(alternative));
            }
        }
    }
    fields
}

/// One row of a reference table: its cells after the field's name.
struct Row {
    cells: Vec<String>,
}

/// Table name to its rows by field, from the reference: a heading
/// "### `NAME`" and the first table under it, whose rows start with the
/// field's name in backquotes.
fn reference_tables() -> BTreeMap<String, BTreeMap<String, Row>> {
    let mut tables = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in REFERENCE.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            current = heading
                .trim()
                .strip_prefix('`')
                .and_then(|h| h.strip_suffix('`'))
                .map(str::to_owned);
            if let Some(name) = &current {
                let fresh = tables.insert(name.clone(), BTreeMap::new()).is_none();
                assert!(fresh, "the reference has two tables `{name}`");
            }
            continue;
        }
        let (Some(table), Some(row)) = (&current, line.strip_prefix("| `")) else {
            continue;
        };
        let row = row.trim_end().trim_end_matches('|');
        let cells: Vec<String> = row.split(" | ").map(|c| c.trim().to_owned()).collect();
        let field = cells[0].split('`').next().unwrap().to_owned();
        let rows = tables.get_mut(table).unwrap();
        let fresh = rows
            .insert(
                field.clone(),
                Row {
                    cells: cells[1..].to_vec(),
                },
            )
            .is_none();
        assert!(
            fresh,
            "the reference's table `{table}` lists `{field}` twice"
        );
    }
    tables
}

#[test]
fn the_reference_documents_every_field_of_the_schema() {
    let code = schema_tables();
    let documented = reference_tables();
    let mut missing = Vec::new();
    for (table, fields) in &code {
        for field in fields {
            if !documented.get(table).is_some_and(|t| t.contains_key(field)) {
                missing.push(format!("{table}.{field}"));
            }
        }
    }
    let mut unknown = Vec::new();
    for (table, rows) in &documented {
        for field in rows.keys() {
            if !code.get(table).is_some_and(|f| f.contains(field)) {
                unknown.push(format!("{table}.{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields the code reads and docs/scenarios.md does not list: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "fields docs/scenarios.md lists and the code does not read: {unknown:?}"
    );
}

#[test]
fn every_documented_field_has_a_type_a_default_an_example_and_a_meaning() {
    for (table, rows) in reference_tables() {
        for (field, row) in rows {
            assert!(
                row.cells.len() == 4 && row.cells.iter().all(|c| !c.is_empty()),
                "docs/scenarios.md, table `{table}`, field `{field}`: \
                 give its type, default, example and meaning"
            );
        }
    }
}

#[test]
fn the_walk_finds_the_tables_of_every_step_kind() {
    // The drift test is only as good as its walk: every kind of step and
    // every fault operation must be a field it sees.
    let tables = schema_tables();
    let kinds = super::super::one_of::variants::<super::Action>();
    for kind in kinds {
        assert!(tables["step"].contains(*kind), "step.{kind}");
    }
    for operation in super::super::one_of::variants::<super::FaultOperation>() {
        assert!(tables["fault"].contains(*operation), "fault.{operation}");
    }
    assert!(tables["step"].contains("name") && tables["fault"].contains("proxy"));
    assert!(tables["http.expect"].contains("within"));
}

/// The schema of `field` in the schema's table `table`, with the
/// definitions it refers to.
fn field_schema(schema: &Value, table: &str, field: &str) -> Option<Value> {
    let table_schema = if table == "scenario" {
        schema
    } else {
        &schema["definitions"][table]
    };
    fn find(schema: &Value, field: &str) -> Option<Value> {
        if let Some(found) = schema["properties"].get(field) {
            return Some(found.clone());
        }
        ["oneOf", "anyOf", "allOf"]
            .iter()
            .flat_map(|c| schema[*c].as_array().into_iter().flatten())
            .find_map(|alternative| find(alternative, field))
    }
    let found = find(table_schema, field)?;
    Some(serde_json::json!({
        "definitions": schema["definitions"],
        "allOf": [found],
    }))
}

#[test]
fn every_example_in_the_reference_is_valid_for_its_field() {
    let schema = json_schema();
    let mut checked = 0;
    for (table, rows) in reference_tables() {
        for (field, row) in rows {
            let examples = &row.cells[2];
            // The code spans of the example cell; a table header such as
            // `[[steps]]` shows where the field goes and has no value.
            for example in examples.split('`').skip(1).step_by(2) {
                if example.starts_with('[') {
                    continue;
                }
                let where_ = format!("docs/scenarios.md, `{table}`.`{field}`: {example}");
                let parsed: toml::Table =
                    toml::from_str(example).unwrap_or_else(|e| panic!("{where_}: {e}"));
                let value = parsed
                    .get(&field)
                    .unwrap_or_else(|| panic!("{where_}: the example does not set {field}"));
                let value = serde_json::to_value(value).unwrap();
                let field_schema = field_schema(&schema, &table, &field).unwrap();
                let validator = jsonschema::draft7::new(&field_schema).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{where_}: {errors:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} examples were checked");
}
