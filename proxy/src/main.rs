//! The `faultgate` command: `serve` runs the proxies and their control API,
//! `run` runs gate scenarios against them, `plugin` writes and inspects
//! fault plugins.

mod cli;

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    // toxiproxy-server's flags become the `serve` that does the same.
    let matches = match cli::Cli::command().try_get_matches_from(cli::toxiproxy_flags::args()) {
        Ok(matches) => matches,
        Err(error) => {
            // clap names the flag; a bad value may have come from the
            // environment instead, so say which variables were set.
            if error.kind() == clap::error::ErrorKind::ValueValidation
                || error.kind() == clap::error::ErrorKind::InvalidValue
            {
                let set: Vec<String> = std::env::vars()
                    .filter(|(k, _)| k.starts_with("FAULTGATE_"))
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                if !set.is_empty() {
                    eprintln!("(set in the environment: {})", set.join(", "));
                }
            }
            error.exit()
        }
    };
    let args = match cli::Cli::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    match cli::run(args, &matches) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("faultgate: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
