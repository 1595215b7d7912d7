//! The proxy verbs: `list`, `inspect`, `create`, `delete`, `toggle`.

use clap::Args;
use serde_json::{Value, json};

use super::output::{TOXIC_HEADER, enabled, table, text, toxic_rows};
use super::{Api, Outcome, Target, segment};

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The proxy.
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct NameArgs {
    /// The proxy.
    name: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct CreateArgs {
    /// The new proxy's name.
    name: String,
    /// Where it listens (host:port; port 0 picks a free one).
    #[arg(short, long, value_name = "ADDR")]
    listen: String,
    /// Where it sends its connections (host:port).
    #[arg(short, long, value_name = "ADDR")]
    upstream: String,
    /// What it carries: tcp (bytes), http (requests, for HTTP faults) or
    /// postgres (messages, for Postgres faults) [the API's default: tcp].
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    #[command(flatten)]
    target: Target,
}

pub(super) async fn list(args: ListArgs) -> Outcome {
    let api = Api::new(&args.target);
    let proxies = api.call("GET", "/proxies", None).await?;
    api.answer(&proxies, || list_text(&proxies));
    Ok(())
}

/// Each proxy on a line, its faults on the lines under it.
fn list_text(proxies: &Value) -> String {
    let Some(proxies) = proxies.as_object().filter(|p| !p.is_empty()) else {
        return "no proxies (create one with `faultgate create NAME -l ADDR -u ADDR`)\n".to_owned();
    };
    let header = ["NAME", "LISTEN", "UPSTREAM", "MODE", "ENABLED", "TOXICS"];
    let rows: Vec<Vec<String>> = proxies
        .values()
        .map(|p| {
            let count = p["toxics"].as_array().map_or(0, Vec::len);
            vec![
                text(&p["name"]),
                text(&p["listen"]),
                text(&p["upstream"]),
                text(&p["mode"]),
                enabled(&p["enabled"]).to_owned(),
                if count == 0 {
                    "none".to_owned()
                } else {
                    count.to_string()
                },
            ]
        })
        .collect();
    // The proxies' table, split after each row to put its faults under it.
    let lines = table("", &header, &rows);
    let mut lines = lines.lines();
    let mut out = format!("{}\n", lines.next().unwrap_or_default());
    for (proxy, line) in proxies.values().zip(lines) {
        out.push_str(line);
        out.push('\n');
        let toxics = proxy["toxics"].as_array().cloned().unwrap_or_default();
        if !toxics.is_empty() {
            out.push_str(&table("    ", &TOXIC_HEADER, &toxic_rows(&toxics)));
        }
    }
    out
}

pub(super) async fn inspect(args: InspectArgs) -> Outcome {
    let api = Api::new(&args.target);
    let proxy = api
        .call("GET", &format!("/proxies/{}", segment(&args.name)), None)
        .await?;
    api.answer(&proxy, || inspect_text(&proxy));
    Ok(())
}

fn inspect_text(proxy: &Value) -> String {
    let mut out = format!(
        "name:      {}\nlisten:    {}\nupstream:  {}\nmode:      {}\nenabled:   {}\n",
        text(&proxy["name"]),
        text(&proxy["listen"]),
        text(&proxy["upstream"]),
        text(&proxy["mode"]),
        enabled(&proxy["enabled"]),
    );
    let toxics = proxy["toxics"].as_array().cloned().unwrap_or_default();
    for stream in ["upstream", "downstream"] {
        let on: Vec<&Value> = toxics.iter().filter(|t| t["stream"] == stream).collect();
        if on.is_empty() {
            out.push_str(&format!("\n{stream} toxics: none\n"));
        } else {
            out.push_str(&format!("\n{stream} toxics:\n"));
            out.push_str(&table("  ", &TOXIC_HEADER, &toxic_rows(on)));
        }
    }
    out
}

pub(super) async fn create(args: CreateArgs) -> Outcome {
    let api = Api::new(&args.target);
    let mut body = json!({
        "name": args.name,
        "listen": args.listen,
        "upstream": args.upstream,
    });
    if let Some(mode) = &args.mode {
        body["mode"] = json!(mode);
    }
    let proxy = api.call("POST", "/proxies", Some(&body)).await?;
    api.answer(&proxy, || {
        format!(
            "created proxy {}: listening on {}, upstream {}, mode {}\n",
            text(&proxy["name"]),
            text(&proxy["listen"]),
            text(&proxy["upstream"]),
            text(&proxy["mode"]),
        )
    });
    Ok(())
}

pub(super) async fn delete(args: NameArgs) -> Outcome {
    let api = Api::new(&args.target);
    let answer = api
        .call("DELETE", &format!("/proxies/{}", segment(&args.name)), None)
        .await?;
    if !api.json || !answer.is_null() {
        api.answer(&answer, || format!("deleted proxy {}\n", args.name));
    }
    Ok(())
}

pub(super) async fn toggle(args: NameArgs) -> Outcome {
    let api = Api::new(&args.target);
    let path = format!("/proxies/{}", segment(&args.name));
    let proxy = api.call("GET", &path, None).await?;
    let now = !proxy["enabled"].as_bool().unwrap_or(false);
    let proxy = api
        .call("POST", &path, Some(&json!({ "enabled": now })))
        .await?;
    api.answer(&proxy, || {
        format!(
            "proxy {} is now {}\n",
            text(&proxy["name"]),
            enabled(&proxy["enabled"])
        )
    });
    Ok(())
}
