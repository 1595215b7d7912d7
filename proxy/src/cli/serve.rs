//! `faultgate serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

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
          value_parser = clap::value_parser!(u64).range(1..=64))]
    plugin_memory_mib: u64,

    /// Time one plugin call may take, in milliseconds.
    #[arg(long, env = "FAULTGATE_PLUGIN_DEADLINE_MS", default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    plugin_deadline_ms: u64,

    /// Plugin instances alive at once (one per connection and fault in use).
    #[arg(long, env = "FAULTGATE_MAX_PLUGIN_INSTANCES", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(16..))]
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
}

fn parse_grace(text: &str) -> Result<Duration, String> {
    faultgate::runner::scenario::parse_duration(text)
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
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
