//! `faultgate health`: is a faultgate's control API up? For container
//! health checks, where there is no curl.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use faultgate::runner::client::HttpClient;

#[derive(Args)]
pub struct HealthArgs {
    /// The control API to ask.
    #[arg(
        long,
        env = "FAULTGATE_API",
        default_value = "127.0.0.1:8474",
        value_name = "ADDR"
    )]
    api: String,
}

pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    // An API bound to every interface is asked on loopback.
    let address = args.api.replace("0.0.0.0", "127.0.0.1");
    let url = format!("http://{}/healthz", address.trim_start_matches("http://"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(HttpClient::default().send(
        "GET",
        &url,
        &[],
        None,
        Duration::from_secs(5),
    ));
    match answer {
        Ok(answer) if answer.status == 200 => {
            println!("{url}: healthy");
            Ok(ExitCode::SUCCESS)
        }
        Ok(answer) => {
            eprintln!("{url}: answered {}", answer.status);
            Ok(ExitCode::from(1))
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(1))
        }
    }
}
