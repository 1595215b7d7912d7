//! `faultgate serve`.

mod settings;
pub mod toxiproxy_flags;

use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use tokio_util::sync::CancellationToken;

use faultgate::plugin_host::{PluginHost, PluginLimits};
use faultgate::registry::{ApiListen, Registry};
use faultgate::{api, clock, config};

use super::{Interrupts, init_logging, plugin_files};
use settings::{FileTable, Settings};

#[derive(Args)]
pub struct ServeArgs {
    /// Proxies to create at start-up: a faultgate TOML file or a Toxiproxy JSON file.
    #[arg(long, short, env = "FAULTGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Every setting's flag.
    #[command(flatten)]
    setting_flags: SettingFlags,

    /// Print the settings in effect, each with where it came from (flag,
    /// environment, config file's [serve] table, or default), and exit.
    #[arg(long)]
    print_config: bool,
}

/// The settings' flags, as the list in [`settings`] describes them; their
/// values are read by [`Settings::resolve`], which needs the config file.
pub struct SettingFlags;

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Self)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for SettingFlags {
    fn augment_args(command: Command) -> Command {
        command.args(settings::args())
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

pub fn run(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let table = match &args.config {
        Some(path) => config::load_serve(path)?,
        None => Default::default(),
    };
    let file = args.config.as_deref().map(|path| FileTable {
        path,
        values: &table,
    });
    let (settings, shown) =
        Settings::resolve(|setting| settings::given(matches, setting), file.as_ref())?;
    if args.print_config {
        print!("{}", settings::print_config(&shown, args.config.as_deref()));
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(settings.log_format);
    clock::start();
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args.config, settings))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Option<PathBuf>, settings: Settings) -> anyhow::Result<()> {
    // First, so that a signal during start-up is seen (once ready) rather
    // than killing the process.
    let mut interrupts = Interrupts::install()?;
    let limits = PluginLimits {
        memory_bytes: (settings.plugin_memory_mib << 20) as usize,
        call_deadline: Duration::from_millis(settings.plugin_deadline_ms),
        max_instances: settings.max_plugin_instances,
    };
    let cache = (!settings.no_plugin_cache)
        .then(|| settings.plugin_cache.clone())
        .flatten();
    let host = Arc::new(
        PluginHost::new(limits, cache)
            .await
            .context("starting the plugin host")?,
    );
    for file in plugin_files(&settings.plugins)? {
        let plugin = host.load_file(&file).await?;
        tracing::info!(plugin = plugin.name(), file = %file.display(), "plugin loaded");
    }

    let seed = settings.seed.unwrap_or_else(fresh_seed);
    tracing::info!(
        seed,
        "random decisions use this seed (pass --seed {seed} to replay them)"
    );
    let api_listen = if settings.allow_non_loopback_listen {
        ApiListen::Anywhere
    } else {
        ApiListen::LoopbackOnly
    };
    let registry =
        Arc::new(Registry::new(host, seed, api_listen).with_strict_toxics(settings.strict_toxics));

    if let Some(path) = &config {
        for spec in config::load(path)? {
            let name = spec.name.clone().unwrap_or_default();
            registry
                .create_from_config_file(spec)
                .await
                .with_context(|| format!("config file {}: proxy {name:?}", path.display()))?;
        }
    }

    let listener = tokio::net::TcpListener::bind(settings.api)
        .await
        .with_context(|| format!("control API: cannot listen on {}", settings.api))?;
    let server = api::server(
        listener,
        registry.clone(),
        api::Limits {
            max_connections: settings.max_api_connections as usize,
            header_timeout: settings.api_header_timeout,
            idle_timeout: settings.api_idle_timeout,
        },
    );
    tracing::info!(api = %server.local_addr()?, "control API ready");
    let stop = CancellationToken::new();
    let api = server.run(stop.clone());
    tokio::pin!(api);
    tokio::select! {
        signal = interrupts.next() => tracing::info!(signal, "shutting down"),
        _ = &mut api => anyhow::bail!("the control API stopped"),
    }
    shut_down(&registry, stop, api, settings.shutdown_grace, interrupts).await;
    tracing::info!("stopped");
    Ok(())
}

/// After the first signal: stops the proxies and the API accepting, waits
/// up to `grace` (or a second signal) for open connections to finish, the
/// API's requests being answered included, then closes what is left.
async fn shut_down(
    registry: &Registry,
    stop: CancellationToken,
    mut api: Pin<&mut impl Future<Output = ()>>,
    grace: Duration,
    mut interrupts: Interrupts,
) {
    let deadline = tokio::time::Instant::now() + grace;
    // The API stops accepting and closes its connections not answering a
    // request; the proxies stop accepting.
    stop.cancel();
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
    if open() > 0 {
        tracing::info!(
            connections = open(),
            ?grace,
            "waiting for open connections to finish"
        );
    }
    let finished = async {
        api.as_mut().await;
        while open() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let all_finished = tokio::select! {
        _ = finished => true,
        _ = tokio::time::sleep_until(deadline) => false,
        _ = interrupts.next() => {
            tracing::info!("second signal: not waiting any longer");
            false
        }
    };
    if !all_finished {
        tracing::info!(
            connections = open(),
            "closing the connections still open (and the control API's)"
        );
    }
    // A proxy made by a request answered during the wait stops too. The
    // API's connections close when the caller drops its future.
    for proxy in registry.list().await {
        proxy.stop_listening().await;
        proxy.close_connections();
    }
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
