//! `faultgate plugin`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use faultgate::plugin_host::{Plugin, PluginKind};

#[path = "scaffold/mod.rs"]
mod scaffold;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// List the built-in plugins (and any given with --plugin) with their attributes.
    List {
        /// Also load these plugins (.wasm files or directories).
        #[arg(long = "plugin", value_name = "PATH")]
        plugins: Vec<PathBuf>,
    },
    /// Check that a .wasm file is a valid faultgate plugin and show what it describes.
    Check {
        /// The plugin component.
        file: PathBuf,
    },
    /// Write a new plugin (Rust, Python, JavaScript or C), ready to build, with a working example fault.
    New(scaffold::NewArgs),
}

pub fn run(command: PluginCommand) -> anyhow::Result<ExitCode> {
    // These only print: end quietly when the reader goes away
    // (`faultgate plugin list | head`), as Unix tools do, instead of
    // panicking on a broken pipe. `serve` keeps Rust's default.
    // Safety: restores the default disposition of one signal, before any
    // thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let PluginCommand::New(args) = command {
        return scaffold::run(args);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let host = super::describing_host().await?;
        match command {
            PluginCommand::List { plugins } => {
                for file in super::plugin_files(&plugins)? {
                    host.load_file(&file).await?;
                }
                for plugin in host.list() {
                    print_plugin(&plugin);
                }
            }
            PluginCommand::Check { file } => {
                let plugin = host.load_file(&file).await?;
                println!("{}: a valid faultgate plugin\n", file.display());
                print_plugin(&plugin);
            }
            PluginCommand::New(_) => unreachable!("handled above"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_plugin(plugin: &Plugin) {
    let d = plugin.description();
    let kind = match d.kind {
        PluginKind::Tcp => "tcp",
        PluginKind::Http => "http",
        PluginKind::Postgres => "postgres",
    };
    println!("{} {} ({kind} fault): {}", d.name, d.version, d.summary);
    for a in &d.attributes {
        let default = a
            .default
            .as_ref()
            .map_or_else(|| "required".to_owned(), |v| format!("default {v}"));
        println!(
            "    {} ({}, {default}): {}",
            a.name, a.value_type, a.summary
        );
    }
    if d.wants_bytes {
        println!("    (reads the bytes of each chunk)");
    }
    println!(
        "    acts on streams: {}; in modes: {}",
        d.streams.join(", "),
        d.modes.join(", ")
    );
    let needs: Vec<String> = [
        d.memory_mib
            .map(|mib| format!("{mib} MiB of memory per instance")),
        d.deadline_ms.map(|ms| format!("calls of up to {ms} ms")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !needs.is_empty() {
        println!(
            "    needs: {} (faultgate raises its own limits to these for it)",
            needs.join(", ")
        );
    }
    println!();
}
