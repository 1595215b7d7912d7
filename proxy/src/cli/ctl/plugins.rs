//! `plugins`: the fault types a running faultgate can attach, each with
//! its attributes, their types and defaults.

use clap::Args;
use serde_json::Value;

use super::output::{table, text};
use super::{Api, Outcome, Target};

#[derive(Args)]
pub struct PluginsArgs {
    #[command(flatten)]
    target: Target,
}

pub(super) async fn list(args: PluginsArgs) -> Outcome {
    let api = Api::new(&args.target);
    let plugins = api.call("GET", "/plugins", None).await?;
    api.answer(&plugins, || plugins_text(&plugins));
    Ok(())
}

fn plugins_text(plugins: &Value) -> String {
    let mut plugins: Vec<&Value> = plugins
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    plugins.sort_by_key(|p| text(&p["name"]));
    let mut out = String::new();
    for plugin in plugins {
        // Streams and modes, where the server says which a plugin acts on.
        let mut facts = vec![text(&plugin["kind"])];
        for key in ["streams", "modes"] {
            if let Some(list) = plugin[key].as_array() {
                let words: Vec<String> = list.iter().map(text).collect();
                facts.push(format!("{key}: {}", words.join(", ")));
            }
        }
        out.push_str(&format!(
            "{} ({}): {}\n",
            text(&plugin["name"]),
            facts.join("; "),
            text(&plugin["summary"])
        ));
        let rows: Vec<Vec<String>> = plugin["attributes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|attribute| {
                        vec![
                            text(&attribute["name"]),
                            text(&attribute["type"]),
                            text(&attribute["default"]),
                            text(&attribute["summary"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if rows.is_empty() {
            out.push_str("    no attributes\n");
        } else {
            out.push_str(&table(
                "    ",
                &["ATTRIBUTE", "TYPE", "DEFAULT", "MEANING"],
                &rows,
            ));
        }
        out.push('\n');
    }
    out
}
