//! The `faultgate` command: `serve` runs the proxies and their control API,
//! `run` runs gate scenarios against them, `plugin` writes and inspects
//! fault plugins.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("faultgate: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
