//! `toxic add|update|remove`: a proxy's faults, with toxiproxy-cli's flags
//! (`-t`, `-n`, `-a key=value`, `--tox`, `-u`/`-d`).

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::output::{applies, attributes, text};
use super::{Api, EXIT_CODES, Failure, Outcome, Target, segment};

#[derive(Subcommand)]
pub enum ToxicCommand {
    /// Attach a fault to a proxy.
    #[command(visible_aliases = ["a"], after_help = EXIT_CODES)]
    Add(AddArgs),
    /// Change a fault's toxicity or attributes (those not given stay).
    #[command(visible_aliases = ["u"], after_help = EXIT_CODES)]
    Update(UpdateArgs),
    /// Remove a fault from a proxy.
    #[command(visible_aliases = ["r"], aliases = ["delete", "d"], after_help = EXIT_CODES)]
    Remove(RemoveArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The proxy.
    proxy: String,
    /// The fault's type: a plugin's name (`faultgate plugins` lists them).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    kind: String,
    /// The fault's name [default: TYPE_STREAM, as Toxiproxy names it].
    #[arg(short = 'n', long, visible_alias = "toxicName", value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    values: Values,
    /// Act on the data toward the upstream (client to server).
    #[arg(short = 'u', long, conflicts_with = "downstream")]
    upstream: bool,
    /// Act on the data toward the client (server to client): the default.
    #[arg(short = 'd', long)]
    downstream: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// The proxy.
    proxy: String,
    /// The fault to change.
    #[arg(short = 'n', long, visible_alias = "toxicName", value_name = "NAME")]
    name: String,
    #[command(flatten)]
    values: Values,
    #[command(flatten)]
    target: Target,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// The proxy.
    proxy: String,
    /// The fault to remove.
    #[arg(short = 'n', long, visible_alias = "toxicName", value_name = "NAME")]
    name: String,
    #[command(flatten)]
    target: Target,
}

/// What a fault does, as `add` and `update` take it.
#[derive(Args)]
struct Values {
    /// An attribute, as key=value; repeat for more. A value that reads as a
    /// number is sent as one, true and false as booleans, anything else as
    /// a string.
    #[arg(short = 'a', long = "attribute", value_name = "KEY=VALUE", value_parser = attribute)]
    attributes: Vec<(String, Value)>,
    /// The chance, from 0 to 1, that the fault applies to a connection (or
    /// HTTP request) [add's default: 1].
    #[arg(short = 'o', long, visible_alias = "tox", value_name = "FLOAT", value_parser = toxicity)]
    toxicity: Option<f64>,
    /// Apply to every Nth connection (or request) instead of by chance.
    #[arg(long, value_name = "N")]
    every: Option<u64>,
}

impl Values {
    /// The body's fields these give, into `body`.
    fn into_body(self, body: &mut Map<String, Value>) {
        if !self.attributes.is_empty() {
            body.insert(
                "attributes".into(),
                Value::Object(self.attributes.into_iter().collect()),
            );
        }
        if let Some(toxicity) = self.toxicity {
            body.insert("toxicity".into(), json!(toxicity));
        }
        if let Some(every) = self.every {
            body.insert("every".into(), json!(every));
        }
    }
}

/// `key=value` into the JSON value the API expects.
fn attribute(raw: &str) -> Result<(String, Value), String> {
    let (key, value) = raw
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("{raw:?} is not key=value"))?;
    let value = match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => value
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
            })
            .unwrap_or_else(|| Value::String(value.to_owned())),
    };
    Ok((key.to_owned(), value))
}

fn toxicity(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|t| (0.0..=1.0).contains(t))
        .ok_or_else(|| format!("{raw:?} is not a toxicity: a number from 0 to 1"))
}

pub(super) async fn run(command: ToxicCommand) -> Outcome {
    match command {
        ToxicCommand::Add(args) => add(args).await,
        ToxicCommand::Update(args) => update(args).await,
        ToxicCommand::Remove(args) => remove(args).await,
    }
}

async fn add(args: AddArgs) -> Outcome {
    let api = Api::new(&args.target);
    let stream = if args.upstream {
        "upstream"
    } else {
        "downstream"
    };
    let mut body = Map::new();
    body.insert("type".into(), json!(args.kind));
    body.insert("stream".into(), json!(stream));
    if let Some(name) = &args.name {
        body.insert("name".into(), json!(name));
    }
    args.values.into_body(&mut body);
    let path = format!("/proxies/{}/toxics", segment(&args.proxy));
    let toxic = api.call("POST", &path, Some(&Value::Object(body))).await?;
    api.answer(&toxic, || {
        format!(
            "added {} {} toxic {} on proxy {}: toxicity {}, {}\n",
            text(&toxic["stream"]),
            text(&toxic["type"]),
            text(&toxic["name"]),
            args.proxy,
            applies(&toxic),
            attributes(&toxic)
        )
    });
    Ok(())
}

async fn update(args: UpdateArgs) -> Outcome {
    let api = Api::new(&args.target);
    let mut body = Map::new();
    args.values.into_body(&mut body);
    if body.is_empty() {
        return Err(Failure::Unusable(
            "nothing to update: give -a KEY=VALUE, --toxicity or --every".into(),
        ));
    }
    let path = format!(
        "/proxies/{}/toxics/{}",
        segment(&args.proxy),
        segment(&args.name)
    );
    let toxic = api.call("POST", &path, Some(&Value::Object(body))).await?;
    api.answer(&toxic, || {
        format!(
            "updated toxic {} on proxy {}: toxicity {}, {}\n",
            text(&toxic["name"]),
            args.proxy,
            applies(&toxic),
            attributes(&toxic)
        )
    });
    Ok(())
}

async fn remove(args: RemoveArgs) -> Outcome {
    let api = Api::new(&args.target);
    let path = format!(
        "/proxies/{}/toxics/{}",
        segment(&args.proxy),
        segment(&args.name)
    );
    let answer = api.call("DELETE", &path, None).await?;
    if !api.json || !answer.is_null() {
        api.answer(&answer, || {
            format!("removed toxic {} from proxy {}\n", args.name, args.proxy)
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_keep_their_json_kind() {
        assert_eq!(
            attribute("latency=300").unwrap(),
            ("latency".into(), json!(300))
        );
        assert_eq!(attribute("rate=0.5").unwrap(), ("rate".into(), json!(0.5)));
        assert_eq!(
            attribute("once=true").unwrap(),
            ("once".into(), json!(true))
        );
        assert_eq!(
            attribute("path_prefix=/git/a=b").unwrap(),
            ("path_prefix".into(), json!("/git/a=b"))
        );
        assert_eq!(attribute("body=").unwrap(), ("body".into(), json!("")));
        assert!(attribute("latency").unwrap_err().contains("key=value"));
        assert!(attribute("=3").is_err());
    }

    #[test]
    fn toxicity_is_a_number_from_0_to_1() {
        assert_eq!(toxicity("0.25"), Ok(0.25));
        assert!(toxicity("1.5").is_err());
        assert!(toxicity("half").is_err());
    }
}
