//! Switching faults by hand against a running faultgate: `list`,
//! `inspect`, `create`, `delete`, `toggle`, `toxic add|update|remove` and
//! `plugins`, spelled as `toxiproxy-cli` spells them so its users need
//! nothing new. Every verb is one or two control API calls made with the
//! runner's client; `--json` prints the API's own answer for scripts.

mod output;
mod plugins;
mod proxies;
mod toxics;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use faultgate::runner::client::{ControlFailure, HttpClient};
use serde_json::Value;

/// What every verb's `--help` says of its exit codes.
const EXIT_CODES: &str = "Exit codes: 0 done; 1 the control API refused the request \
(its status and message are printed); 2 bad usage, or the control API could not be reached.";

/// The control API's address when neither a flag nor the environment says.
const DEFAULT_API: &str = "127.0.0.1:8474";

/// The verbs, at the top level of `faultgate` as at `toxiproxy-cli`'s.
#[derive(Subcommand)]
pub enum CtlCommand {
    /// List the proxies of a running faultgate, with their faults.
    #[command(visible_aliases = ["ls"], aliases = ["l", "li"], after_help = EXIT_CODES)]
    List(proxies::ListArgs),
    /// Show one proxy and its faults, upstream and downstream.
    #[command(visible_aliases = ["i"], aliases = ["ins"], after_help = EXIT_CODES)]
    Inspect(proxies::InspectArgs),
    /// Create a proxy.
    #[command(visible_aliases = ["new"], aliases = ["c"], after_help = EXIT_CODES)]
    Create(proxies::CreateArgs),
    /// Delete a proxy (its connections are closed).
    #[command(aliases = ["d"], after_help = EXIT_CODES)]
    Delete(proxies::NameArgs),
    /// Enable a disabled proxy, or disable an enabled one (a disabled proxy
    /// refuses connections and closes its open ones).
    #[command(visible_aliases = ["tog"], after_help = EXIT_CODES)]
    Toggle(proxies::NameArgs),
    /// Add, update or remove a fault ("toxic") on a proxy.
    #[command(subcommand, visible_aliases = ["t"])]
    Toxic(toxics::ToxicCommand),
    /// List the fault types a faultgate can attach, with their attributes
    /// and defaults.
    #[command(after_help = EXIT_CODES)]
    Plugins(plugins::PluginsArgs),
}

/// Which faultgate to ask, and how to answer: every verb takes these.
#[derive(Args, Clone)]
pub struct Target {
    /// The control API: host:port or an http:// URL [default: 127.0.0.1:8474,
    /// or $TOXIPROXY_URL when $FAULTGATE_API is not set]. `--host` is
    /// toxiproxy-cli's spelling.
    #[arg(
        long,
        visible_alias = "host",
        env = "FAULTGATE_API",
        value_name = "ADDR"
    )]
    api: Option<String>,
    /// Print the control API's JSON answer instead of text, for scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(command: CtlCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        match command {
            CtlCommand::List(args) => proxies::list(args).await,
            CtlCommand::Inspect(args) => proxies::inspect(args).await,
            CtlCommand::Create(args) => proxies::create(args).await,
            CtlCommand::Delete(args) => proxies::delete(args).await,
            CtlCommand::Toggle(args) => proxies::toggle(args).await,
            CtlCommand::Toxic(command) => toxics::run(command).await,
            CtlCommand::Plugins(args) => plugins::list(args).await,
        }
    });
    Ok(match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(message)) => {
            eprintln!("faultgate: refused: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Unusable(message)) => {
            eprintln!("faultgate: {message}");
            ExitCode::from(2)
        }
    })
}

/// Why a verb did not do what it was asked.
enum Failure {
    /// The API answered, refusing (exit 1).
    Refused(String),
    /// Bad usage, or no API to ask (exit 2).
    Unusable(String),
}

type Outcome = Result<(), Failure>;

/// A running faultgate's control API.
struct Api {
    /// As the user gave it, for messages.
    address: String,
    /// `http://host:port`, without a trailing slash.
    base: String,
    client: HttpClient,
    json: bool,
}

impl Api {
    fn new(target: &Target) -> Self {
        let address = target
            .api
            .clone()
            .filter(|a| !a.is_empty())
            .or_else(|| {
                std::env::var("TOXIPROXY_URL")
                    .ok()
                    .filter(|a| !a.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_API.to_owned());
        Self {
            base: base_url(&address),
            address,
            client: HttpClient::default(),
            json: target.json,
        }
    }

    /// A call to `path` (which starts with `/`); the API's JSON answer.
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        self.client
            .control(method, &url, body)
            .await
            .map_err(|failure| match failure {
                ControlFailure::Refused { message, .. } => Failure::Refused(message),
                ControlFailure::Unreachable(reason) => Failure::Unusable(format!(
                    "cannot reach faultgate at {}: {}; is `faultgate serve` running?",
                    self.address,
                    last_cause(&reason)
                )),
            })
    }

    /// Prints `answer` as JSON when `--json` was given, else `text()`.
    fn answer(&self, answer: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(answer).unwrap_or_default()
            );
        } else {
            print!("{}", text());
        }
    }
}

/// The base URL of an API given as `host:port`, `http://host:port` or
/// `https://...`. An API bound to every interface is asked on loopback.
fn base_url(address: &str) -> String {
    let address = address.trim().trim_end_matches('/');
    let with_scheme = if address.starts_with("http://") || address.starts_with("https://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    with_scheme.replace("://0.0.0.0", "://127.0.0.1")
}

/// The innermost cause of a client error (`... : tcp connect error:
/// Connection refused (os error 111)` says "Connection refused (os error
/// 111)"): what a person acts on.
fn last_cause(reason: &str) -> &str {
    reason.rsplit(": ").next().unwrap_or(reason)
}

/// A path segment: a proxy's or a toxic's name as the URL carries it.
fn segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_becomes_a_base_url() {
        assert_eq!(base_url("127.0.0.1:8474"), "http://127.0.0.1:8474");
        assert_eq!(base_url("http://localhost:8474/"), "http://localhost:8474");
        assert_eq!(base_url("0.0.0.0:8474"), "http://127.0.0.1:8474");
    }

    #[test]
    fn the_innermost_cause_is_kept() {
        assert_eq!(
            last_cause(
                "http://x/proxies: client error (Connect): tcp connect error: Connection refused (os error 111)"
            ),
            "Connection refused (os error 111)"
        );
    }

    #[test]
    fn names_are_escaped_in_paths() {
        assert_eq!(segment("pg main/1"), "pg%20main%2F1");
        assert_eq!(segment("latency_downstream"), "latency_downstream");
    }
}
