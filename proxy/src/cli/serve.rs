//! `faultgate serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};

use faultgate::config::ServeSettings;
use faultgate::plugin_host::{PluginHost, PluginLimits};
use faultgate::registry::Registry;
use faultgate::{api, clock, config};

use super::{LogFormat, default_cache_dir, init_logging, plugin_files};

#[derive(Args)]
pub struct ServeArgs {
    /// Proxies to create at start-up: a faultgate TOML file or a Toxiproxy JSON file.
    #[arg(long, short, env = "FAULTGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address of the control API.
    #[arg(
        long,
        env = "FAULTGATE_API",
        default_value = "127.0.0.1:8474",
        value_name = "ADDR"
    )]
    api: SocketAddr,

    /// Seed of every random decision (toxicity, jitter...). The same seed
    /// replays the same decisions. Without it a seed is picked and logged.
    #[arg(long, env = "FAULTGATE_SEED", value_name = "N")]
    seed: Option<u64>,

    /// Load a fault plugin (a .wasm component, or .wat text), or every one in
    /// a directory.
    /// Repeatable. A plugin with a built-in's name replaces it.
    #[arg(
        long = "plugin",
        env = "FAULTGATE_PLUGINS",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    plugins: Vec<PathBuf>,

    /// Memory one plugin instance may use, in MiB.
    #[arg(long, env = "FAULTGATE_PLUGIN_MEMORY_MIB", default_value_t = 16, value_name = "MIB",
          value_parser = plugin_memory_mib())]
    plugin_memory_mib: u64,

    /// Time one plugin call may take, in milliseconds.
    #[arg(long, env = "FAULTGATE_PLUGIN_DEADLINE_MS", default_value_t = 100, value_name = "MS",
          value_parser = plugin_deadline_ms())]
    plugin_deadline_ms: u64,

    /// Plugin instances alive at once (one per connection and fault in use).
    #[arg(long, env = "FAULTGATE_MAX_PLUGIN_INSTANCES", default_value_t = 10_000, value_name = "N",
          value_parser = max_plugin_instances())]
    max_plugin_instances: u32,

    /// Where compiled plugins are kept between runs, keyed by content hash
    /// [default: $XDG_CACHE_HOME/faultgate, else ~/.cache/faultgate].
    #[arg(long, env = "FAULTGATE_PLUGIN_CACHE", value_name = "DIR")]
    plugin_cache: Option<PathBuf>,

    /// Compile plugins at every start instead of caching them.
    #[arg(long, conflicts_with = "plugin_cache")]
    no_plugin_cache: bool,

    /// Log format.
    #[arg(long, env = "FAULTGATE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// On SIGTERM or SIGINT: stop accepting, let open connections finish for
    /// this long (e.g. "10s", "500ms"; "0s" closes them at once), then close
    /// the rest. A second signal cuts the wait short.
    #[arg(long, env = "FAULTGATE_SHUTDOWN_GRACE", default_value = "10s", value_name = "DURATION",
          value_parser = parse_grace)]
    shutdown_grace: Duration,

    /// Print the settings in effect, each with where it came from (flag,
    /// environment, config file's [serve] table, or default), and exit.
    #[arg(long)]
    print_config: bool,
}

// The numeric settings' ranges, one parser each for the flag, its
// environment variable and the config file alike.

fn plugin_memory_mib() -> impl TypedValueParser<Value = u64> {
    clap::value_parser!(u64).range(1..=64)
}

fn plugin_deadline_ms() -> impl TypedValueParser<Value = u64> {
    clap::value_parser!(u64).range(1..=60_000)
}

fn max_plugin_instances() -> impl TypedValueParser<Value = u32> {
    clap::value_parser!(u32).range(16..)
}

/// A config file's value, checked by the same parser as its flag; the
/// error is the parser's reason, e.g. "0 is not in 1..=64".
fn parse_file_value<P: TypedValueParser>(
    parser: P,
    value: impl ToString,
) -> Result<P::Value, String> {
    let text = value.to_string();
    parser
        .parse_ref(
            &clap::Command::new("faultgate"),
            None,
            std::ffi::OsStr::new(&text),
        )
        .map_err(|e| {
            std::error::Error::source(&e).map_or_else(|| e.kind().to_string(), ToString::to_string)
        })
}

/// Where a setting's value came from.
enum Source {
    Flag,
    Env(&'static str),
    File,
    Default,
}

/// The settings, each with its source, as `--print-config` shows them.
struct Resolved {
    lines: Vec<(String, String, Source)>,
}

impl ServeArgs {
    /// Fills every setting that neither a flag nor the environment gave
    /// from the config file's `[serve]` table. Errors name the setting and
    /// the file.
    fn resolve(&mut self, matches: &ArgMatches) -> anyhow::Result<Resolved> {
        let file = match &self.config {
            Some(path) => config::load_serve(path)?,
            None => ServeSettings::default(),
        };
        let path = self
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let source = |id: &str, env: &'static str, in_file: bool| match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env(env),
            _ if in_file => Source::File,
            _ => Source::Default,
        };
        let bad = |key: &str, problem: String| anyhow::anyhow!("serve.{key} in {path}: {problem}");
        let mut lines = Vec::new();

        let src = source("api", "FAULTGATE_API", file.api.is_some());
        if let (Source::File, Some(api)) = (&src, &file.api) {
            self.api = api.parse().map_err(|_| {
                bad(
                    "api",
                    format!("{api:?} is not an address such as 127.0.0.1:8474"),
                )
            })?;
        }
        lines.push(("api".into(), format!("{:?}", self.api.to_string()), src));

        let src = source("seed", "FAULTGATE_SEED", file.seed.is_some());
        if let Source::File = src {
            self.seed = file.seed;
        }
        let seed = self
            .seed
            .map_or("(picked at start, and logged)".to_owned(), |s| {
                s.to_string()
            });
        lines.push(("seed".into(), seed, src));

        let src = source("plugins", "FAULTGATE_PLUGINS", file.plugins.is_some());
        if let (Source::File, Some(plugins)) = (&src, &file.plugins) {
            self.plugins = plugins.clone();
        }
        let shown: Vec<String> = self
            .plugins
            .iter()
            .map(|p| format!("{:?}", p.display().to_string()))
            .collect();
        lines.push(("plugins".into(), format!("[{}]", shown.join(", ")), src));

        let src = source(
            "plugin_memory_mib",
            "FAULTGATE_PLUGIN_MEMORY_MIB",
            file.plugin_memory_mib.is_some(),
        );
        if let (Source::File, Some(v)) = (&src, file.plugin_memory_mib) {
            self.plugin_memory_mib = parse_file_value(plugin_memory_mib(), v)
                .map_err(|e| bad("plugin_memory_mib", e))?;
        }
        lines.push((
            "plugin_memory_mib".into(),
            self.plugin_memory_mib.to_string(),
            src,
        ));

        let src = source(
            "plugin_deadline_ms",
            "FAULTGATE_PLUGIN_DEADLINE_MS",
            file.plugin_deadline_ms.is_some(),
        );
        if let (Source::File, Some(v)) = (&src, file.plugin_deadline_ms) {
            self.plugin_deadline_ms = parse_file_value(plugin_deadline_ms(), v)
                .map_err(|e| bad("plugin_deadline_ms", e))?;
        }
        lines.push((
            "plugin_deadline_ms".into(),
            self.plugin_deadline_ms.to_string(),
            src,
        ));

        let src = source(
            "max_plugin_instances",
            "FAULTGATE_MAX_PLUGIN_INSTANCES",
            file.max_plugin_instances.is_some(),
        );
        if let (Source::File, Some(v)) = (&src, file.max_plugin_instances) {
            self.max_plugin_instances = parse_file_value(max_plugin_instances(), v)
                .map_err(|e| bad("max_plugin_instances", e))?;
        }
        lines.push((
            "max_plugin_instances".into(),
            self.max_plugin_instances.to_string(),
            src,
        ));

        let src = source(
            "plugin_cache",
            "FAULTGATE_PLUGIN_CACHE",
            file.plugin_cache.is_some(),
        );
        if let (Source::File, Some(dir)) = (&src, &file.plugin_cache) {
            self.plugin_cache = Some(dir.clone());
        }
        let cache = self
            .plugin_cache
            .clone()
            .or_else(default_cache_dir)
            .map_or("(none)".to_owned(), |d| {
                format!("{:?}", d.display().to_string())
            });
        lines.push(("plugin_cache".into(), cache, src));

        let src = source("no_plugin_cache", "", file.no_plugin_cache.is_some());
        if let (Source::File, Some(v)) = (&src, file.no_plugin_cache) {
            self.no_plugin_cache = v;
        }
        lines.push((
            "no_plugin_cache".into(),
            self.no_plugin_cache.to_string(),
            src,
        ));

        let src = source(
            "log_format",
            "FAULTGATE_LOG_FORMAT",
            file.log_format.is_some(),
        );
        if let (Source::File, Some(v)) = (&src, &file.log_format) {
            self.log_format = LogFormat::from_str(v, true).map_err(|_| {
                bad(
                    "log_format",
                    format!("{v:?}: expected \"text\" or \"json\""),
                )
            })?;
        }
        let format = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        lines.push(("log_format".into(), format!("{format:?}"), src));

        let src = source(
            "shutdown_grace",
            "FAULTGATE_SHUTDOWN_GRACE",
            file.shutdown_grace.is_some(),
        );
        if let (Source::File, Some(v)) = (&src, &file.shutdown_grace) {
            self.shutdown_grace = parse_grace(v).map_err(|e| bad("shutdown_grace", e))?;
        }
        lines.push((
            "shutdown_grace".into(),
            format!(
                "{:?}",
                humantime::format_duration(self.shutdown_grace).to_string()
            ),
            src,
        ));
        Ok(Resolved { lines })
    }
}

impl Resolved {
    fn print(&self, config: Option<&std::path::Path>) {
        println!("# faultgate serve: the settings in effect, and where each came from");
        println!("# (flags win over environment variables, which win over the config file)");
        println!("[serve]");
        for (key, value, source) in &self.lines {
            let from = match source {
                Source::Flag => format!("flag --{}", key.replace('_', "-")),
                Source::Env(var) => format!("environment {var}"),
                Source::File => format!(
                    "config file {}",
                    config.map(|p| p.display().to_string()).unwrap_or_default()
                ),
                Source::Default => "default".to_owned(),
            };
            println!("{:<44} # {from}", format!("{key} = {value}"));
        }
    }
}

fn parse_grace(text: &str) -> Result<Duration, String> {
    faultgate::runner::scenario::parse_duration(text)
}

pub fn run(mut args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let resolved = args.resolve(matches)?;
    if args.print_config {
        resolved.print(args.config.as_deref());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(args.log_format);
    clock::start();
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let limits = PluginLimits {
        memory_bytes: (args.plugin_memory_mib << 20) as usize,
        call_deadline: Duration::from_millis(args.plugin_deadline_ms),
        max_instances: args.max_plugin_instances,
    };
    let cache = (!args.no_plugin_cache)
        .then(|| args.plugin_cache.clone().or_else(default_cache_dir))
        .flatten();
    let host = Arc::new(
        PluginHost::new(limits, cache)
            .await
            .context("starting the plugin host")?,
    );
    for file in plugin_files(&args.plugins)? {
        let plugin = host.load_file(&file).await?;
        tracing::info!(plugin = plugin.name(), file = %file.display(), "plugin loaded");
    }

    let seed = args.seed.unwrap_or_else(fresh_seed);
    tracing::info!(
        seed,
        "random decisions use this seed (pass --seed {seed} to replay them)"
    );
    let registry = Arc::new(Registry::new(host, seed));

    if let Some(path) = &args.config {
        for spec in config::load(path)? {
            let name = spec.name.clone().unwrap_or_default();
            registry
                .create(spec)
                .await
                .with_context(|| format!("config file {}: proxy {name:?}", path.display()))?;
        }
    }

    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("control API: cannot listen on {}", args.api))?;
    tracing::info!(api = %listener.local_addr()?, "control API ready");
    let (first, second) = signals();
    axum::serve(listener, api::router(registry.clone()))
        .with_graceful_shutdown(first)
        .await
        .context("control API")?;
    drain(&registry, args.shutdown_grace, second).await;
    tracing::info!("stopped");
    Ok(())
}

/// Stops accepting, waits up to `grace` (or a second signal) for open
/// connections to finish, then closes what is left.
async fn drain(registry: &Registry, grace: Duration, second: impl Future<Output = ()>) {
    let proxies = registry.list().await;
    for proxy in &proxies {
        proxy.stop_listening().await;
    }
    let open = || {
        proxies
            .iter()
            .map(|p| p.stats().connections_open.get())
            .sum::<u64>()
    };
    if open() > 0 && !grace.is_zero() {
        tracing::info!(
            connections = open(),
            ?grace,
            "waiting for open connections to finish"
        );
        let finished = async {
            while open() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = finished => {}
            _ = tokio::time::sleep(grace) => {}
            _ = second => tracing::info!("second signal: not waiting any longer"),
        }
    }
    let cut = open();
    if cut > 0 {
        tracing::info!(connections = cut, "closing the connections still open");
    }
    for proxy in &proxies {
        proxy.close_connections();
    }
}

/// Two futures: the first SIGTERM or SIGINT, and the one after it.
fn signals() -> (impl Future<Output = ()>, impl Future<Output = ()>) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = first_tx.send(());
        shutdown_signal().await;
        let _ = second_tx.send(());
    });
    (
        async move {
            let _ = first_rx.await;
        },
        async move {
            if second_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        },
    )
}

/// A proxy holds two sockets per connection: lift the soft limit on open
/// files to the hard limit, as servers do, so the default 1024 does not cap
/// it at 500 connections.
fn raise_open_file_limit() {
    // Safety: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                tracing::debug!("could not raise the open file limit");
            }
        }
    }
}

/// A seed for runs that did not ask for one; it is logged, so they can be
/// replayed.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}
