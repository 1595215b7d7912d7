//! Command-line parsing and the verbs.

mod ctl;
mod health;
mod logging;
mod plugin;
mod run;
mod serve;

pub use logging::init_logging;
pub use serve::toxiproxy_flags;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "faultgate",
    version,
    about = "A fault-injection TCP proxy with WebAssembly fault plugins and a Toxiproxy-compatible control API",
    long_about = "faultgate sits between a system under test and the servers it depends on \
(a git server, Postgres, anything on TCP) and injects faults on command: latency, \
blackholes, resets, bandwidth limits and any fault written as a WebAssembly plugin.\n\n\
Its control API is Toxiproxy's, so every Toxiproxy client drives it unchanged.",
    after_help = "Examples:\n  \
faultgate serve --config proxies.toml\n  \
curl -X POST localhost:8474/proxies -d '{\"name\":\"pg\",\"listen\":\"127.0.0.1:15432\",\"upstream\":\"127.0.0.1:5432\"}'\n  \
curl -X POST localhost:8474/proxies/pg/toxics -d '{\"type\":\"latency\",\"attributes\":{\"latency\":300}}'\n  \
faultgate plugin list\n  \
faultgate toxic add pg -t latency -a latency=300\n  \
faultgate list\n  \
faultgate run compose/scenarios/*.toml --junit report.xml"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxies and the control API until interrupted.
    Serve(serve::ServeArgs),
    /// Run gate scenarios against live proxies; fail when a check fails.
    Run(run::RunArgs),
    /// Inspect fault plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Exit 0 if a faultgate's control API answers /healthz (for container
    /// health checks).
    Health(health::HealthArgs),
    /// The verbs that switch faults by hand against a running faultgate,
    /// as toxiproxy-cli spells them.
    #[command(flatten)]
    Ctl(ctl::CtlCommand),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Runs a verb. `matches` tells where each setting came from (flag or
/// environment), which `serve` needs to let its config file fill the rest.
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let serve = matches
                .subcommand_matches("serve")
                .expect("the serve subcommand was parsed");
            serve::run(args, serve)
        }
        Command::Run(args) => run::run(args),
        Command::Plugin(command) => plugin::run(command),
        Command::Health(args) => health::run(args),
        Command::Ctl(command) => ctl::run(command),
    }
}

/// SIGINT and SIGTERM, for `serve` and `run`. Installed once, before they
/// are awaited, so that no signal is missed between two waits (nor kills
/// the process while it starts).
pub struct Interrupts {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Installs the handlers; inside the runtime.
    pub fn install() -> anyhow::Result<Self> {
        use anyhow::Context;
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM; its name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// `$XDG_CACHE_HOME/faultgate`, else `~/.cache/faultgate`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("faultgate"))
}

/// A plugin host that only reads plugins' descriptions (`plugin list`,
/// `plugin check`, `run --check --plugin`): a few instances are plenty.
pub async fn describing_host() -> anyhow::Result<faultgate::plugin_host::PluginHost> {
    use faultgate::plugin_host::{PluginHost, PluginLimits};
    let limits = PluginLimits {
        max_instances: 16,
        ..PluginLimits::default()
    };
    Ok(PluginHost::new(limits, None).await?)
}

/// `--plugin` values: a plugin file, or a directory of them (`.wasm`
/// components, or `.wat` in the WebAssembly text format).
pub fn plugin_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading plugin directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm" || e == "wat"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}
