//! `faultgate run`: gate scenarios in CI.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use faultgate::runner::{Runner, Scenario, ScenarioReport, html, report};

use super::Interrupts;

#[derive(Args)]
#[command(after_help = "A scenario (TOML):\n\n  \
name = \"a blackholed repository does not block a healthy one\"\n\n  \
[proxies.gitea]\n  \
api = \"${FAULTGATE_API:-http://127.0.0.1:8474}\"\n\n  \
[[steps]]\n  \
fault = { proxy = \"gitea\", add = { type = \"http_blackhole\", attributes = { path_prefix = \"/org/a.git/\" } } }\n\n  \
[[steps]]\n  \
wait_until = { within = \"30s\", every = \"1s\", check = { http = { url = \"${OPAL}/healthcheck\" } } }\n\n\
Step kinds: fault, http, wait_until, sleep, exec, tcp, sql, capture; `${VAR}` and\n\
`${VAR:-default}` come from the environment and from captures. Teardown always runs,\n\
and every proxy is put back as it was found. `http` steps check https:// servers\n\
against the system's CA certificates, or as a top-level `tls = { ca = \"ca.pem\" }`\n\
(or `insecure = true`) says.\n\n\
Timeouts: an `http` step waits at most its `timeout` (default 30s) for an answer,\n\
and that is what stops it against a hang; `expect.within` only judges the answer\n\
once it came. `exec` times out after 60s, `sql` after 30s, `tcp` after 2s;\n\
`wait_until` tries every 500ms, each try bounded by `every` (at least 1s).\n\
`fault.bounce` blocks for its whole duration. Teardown steps run with the\n\
faults still in place; then the proxies are put back.\n\n\
Every step kind and field, with types and defaults: docs/scenarios.md.\n\
`--schema` prints the format's JSON Schema (draft-07) for editors.\n\n\
Exit codes: 0 every scenario passed; 1 a check failed; 2 a bad scenario file or\n\
an unreachable stack.")]
pub struct RunArgs {
    /// Scenario files (TOML).
    #[arg(required_unless_present = "schema", value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Check the files (syntax, fields, proxies, variables) without running.
    #[arg(long)]
    check: bool,

    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Write an HTML report here: one self-contained file with each
    /// scenario's verdict, a timeline of its steps and faults, and each
    /// step's exchange.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Print the results as JSON on stdout (the live lines go to stderr).
    #[arg(long)]
    json: bool,

    /// Print the scenario format's JSON Schema (draft-07) and exit, for
    /// editors that check TOML against one (Taplo, Even Better TOML).
    #[arg(long, conflicts_with_all = ["files", "check", "junit", "html", "json"])]
    schema: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.schema {
        let schema = faultgate::runner::scenario::json_schema();
        println!("{}", serde_json::to_string_pretty(&schema)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut scenarios = Vec::new();
    let mut bad = false;
    for file in &args.files {
        match Scenario::from_file(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(error) => {
                eprintln!("error: {error}");
                bad = true;
            }
        }
    }
    if bad {
        return Ok(ExitCode::from(2));
    }
    if args.check {
        for scenario in &scenarios {
            println!(
                "{}: ok ({} setup, {} steps, {} teardown)",
                scenario.file.display(),
                scenario.setup.len(),
                scenario.steps.len(),
                scenario.teardown.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let runner = Runner::new().live(true);
        let interrupt = runner.interrupt();
        let mut interrupts = Interrupts::install()?;
        tokio::spawn(async move {
            let signal = interrupts.next().await;
            eprintln!("interrupted ({signal}): stopping the step, running teardown");
            interrupt.cancel();
        });

        let mut reports: Vec<ScenarioReport> = Vec::new();
        let mut unreachable = false;
        // Scenarios that could not run at all, by their place in `scenarios`.
        let mut not_run: Vec<(usize, String)> = Vec::new();
        for (index, scenario) in scenarios.iter().enumerate() {
            if runner.interrupt().is_cancelled() {
                break;
            }
            match runner.run(scenario).await {
                Ok(report) => {
                    unreachable |= report.unreachable();
                    if let Some(failure) = report.failure().filter(|_| !report.passed()) {
                        eprintln!("\n{failure}\n");
                    }
                    reports.push(report);
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    not_run.push((index, error.to_string()));
                    unreachable = true;
                }
            }
        }

        let passed = reports.iter().filter(|r| r.passed()).count();
        eprintln!(
            "\n{passed} of {} scenarios passed{}",
            scenarios.len(),
            if runner.interrupt().is_cancelled() {
                " (interrupted)"
            } else {
                ""
            }
        );
        if let Some(path) = &args.junit {
            std::fs::write(path, report::junit(&reports))
                .with_context(|| format!("writing the JUnit report {}", path.display()))?;
        }
        if let Some(path) = &args.html {
            let mut ran = reports.iter();
            let entries: Vec<html::Entry> = scenarios
                .iter()
                .enumerate()
                .map_while(|(index, scenario)| {
                    match not_run.iter().find(|(i, _)| *i == index) {
                        Some((_, why)) => Some(html::Entry::NotRun {
                            name: scenario.name.clone(),
                            file: scenario.file.display().to_string(),
                            why: why.clone(),
                        }),
                        // None once an interrupt stopped the run before it.
                        None => ran.next().map(html::Entry::Ran),
                    }
                })
                .collect();
            std::fs::write(path, html::render(&entries))
                .with_context(|| format!("writing the HTML report {}", path.display()))?;
        }
        if args.json {
            let all: Vec<_> = reports.iter().map(ScenarioReport::to_json).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Ok(if unreachable {
            ExitCode::from(2)
        } else if passed == scenarios.len() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
