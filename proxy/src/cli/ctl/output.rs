//! Text for a terminal: columns aligned to their widest cell, and values
//! of the API's JSON as a person reads them.

use serde_json::Value;

/// Rows under a header, each column as wide as its widest cell, two
/// spaces apart, every line starting with `indent`.
pub fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = indent.to_owned();
        for (i, cell) in cells.into_iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                text.push_str(&" ".repeat(pad));
            }
        }
        text.truncate(text.trim_end().len());
        text + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A JSON value as text: strings without quotes, nothing as `-`.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

pub fn enabled(value: &Value) -> &'static str {
    if value.as_bool().unwrap_or(false) {
        "enabled"
    } else {
        "disabled"
    }
}

/// A toxic's attributes: `latency=300 jitter=0`, or `-` for none.
pub fn attributes(toxic: &Value) -> String {
    let words: Vec<String> = toxic["attributes"]
        .as_object()
        .map(|a| a.iter().map(|(k, v)| format!("{k}={}", text(v))).collect())
        .unwrap_or_default();
    if words.is_empty() {
        "-".to_owned()
    } else {
        words.join(" ")
    }
}

/// How often a toxic applies: its toxicity, or `every N`.
pub fn applies(toxic: &Value) -> String {
    match toxic.get("every").filter(|e| !e.is_null()) {
        Some(every) => format!("every {}", text(every)),
        None => text(&toxic["toxicity"]),
    }
}

/// One row per toxic: name, type, stream, toxicity, attributes.
pub fn toxic_rows<'a>(toxics: impl IntoIterator<Item = &'a Value>) -> Vec<Vec<String>> {
    toxics
        .into_iter()
        .map(|t| {
            vec![
                text(&t["name"]),
                text(&t["type"]),
                text(&t["stream"]),
                applies(t),
                attributes(t),
            ]
        })
        .collect()
}

pub const TOXIC_HEADER: [&str; 5] = ["TOXIC", "TYPE", "STREAM", "TOXICITY", "ATTRIBUTES"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_under_their_header() {
        let out = table(
            "  ",
            &["NAME", "LISTEN"],
            &[
                vec!["pg".into(), "127.0.0.1:1".into()],
                vec!["git-server".into(), "-".into()],
            ],
        );
        assert_eq!(
            out,
            "  NAME        LISTEN\n  pg          127.0.0.1:1\n  git-server  -\n"
        );
    }
}
