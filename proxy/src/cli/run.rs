//! `faultgate run`: gate scenarios in CI.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use faultgate::runner::toxics_check::check_toxics;
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
Step kinds: fault, http, wait_until, holds, sleep, exec, tcp, sql, capture, and\n\
`use = { template = \"name\", with = { param = \"value\" } }` of a top-level\n\
`[templates.name]` (here or in a file named by `include = [\"shared.toml\"]`).\n\
`holds = { for = \"10s\", every = \"1s\", check = { ... } }` must keep passing;\n\
`http.expect.no_answer_within = \"2s\"` passes on a hang; `sql.expect.error`,\n\
`exec.expect.code = \"!= 0\"` and `tcp.failure = \"refused\"` expect a failure. `${VAR}` and\n\
`${VAR:-default}` come from the environment and from captures. Teardown always runs,\n\
and every proxy is put back as it was found. `http` steps check https:// servers\n\
against the system's CA certificates, or as a top-level `tls = { ca = \"ca.pem\" }`\n\
(or `insecure = true`) says.\n\n\
Timeouts: an `http` step waits at most its `timeout` (default 30s) for an answer,\n\
or its `expect.within` when that is shorter (the answer could no longer pass).\n\
`exec` times out after 60s, `sql` after 30s, `tcp` after 2s; `wait_until` tries\n\
every 500ms, each try bounded by `every` (at least 1s). `fault.bounce` blocks for\n\
its whole duration. Teardown steps run with the faults still in place; then the\n\
proxies are put back.\n\n\
A top-level `known_failure = \"why\"` marks a scenario the system under test is\n\
known to fail: a failed check then counts as expected (KNOWN FAILURE), and a pass\n\
fails the run (fixed? remove the mark).\n\n\
Every step kind and field, with types and defaults: docs/scenarios.md.\n\
`--schema` prints the format's JSON Schema (draft-07) for editors.\n\n\
Exit codes: 0 every scenario passed (or failed as known); 1 a check failed, or a\n\
known failure passed; 2 a bad scenario file, a fault the control API refused as bad\n\
input (400, 404, 409), or an unreachable stack.")]
pub struct RunArgs {
    /// Scenario files (TOML).
    #[arg(required_unless_present = "schema", value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Check the files without running: syntax, fields, proxies, variables,
    /// and each fault's toxic type, attributes (names; values without
    /// `${VAR}`), stream and mode against the plugins' own descriptions.
    #[arg(long)]
    check: bool,

    /// With --check: also know the toxic types of these plugins (.wasm
    /// files or directories of them), besides the built-in ones; repeatable.
    #[arg(long = "plugin", value_name = "PATH", requires = "check")]
    plugins: Vec<PathBuf>,

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
        let errors = check_toxics_offline(&scenarios, &args.plugins)?;
        if !errors.is_empty() {
            for error in &errors {
                eprintln!("error: {error}");
            }
            return Ok(ExitCode::from(2));
        }
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
        // A fault the control API refused as bad input: exit 2, as a bad file.
        let mut bad_scenario = false;
        // Scenarios that could not run at all, by their place in `scenarios`.
        let mut not_run: Vec<(usize, String)> = Vec::new();
        for (index, scenario) in scenarios.iter().enumerate() {
            if runner.interrupt().is_cancelled() {
                break;
            }
            match runner.run(scenario).await {
                Ok(report) => {
                    unreachable |= report.unreachable();
                    bad_scenario |= report.bad_scenario();
                    if let Some(failure) = report.unexpected() {
                        eprintln!("\n{failure}\n");
                    } else if report.failed_as_known() {
                        eprintln!(
                            "\nKNOWN FAILURE ({}), failed as expected: {}\n",
                            report.known_failure.as_deref().unwrap_or_default(),
                            report.failure().unwrap_or_default()
                        );
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

        let passed = reports
            .iter()
            .filter(|r| r.passed() && r.known_failure.is_none())
            .count();
        let known = reports.iter().filter(|r| r.failed_as_known()).count();
        eprintln!(
            "\n{passed} of {} scenarios passed{}{}",
            scenarios.len(),
            if known > 0 {
                format!(", {known} failed as known")
            } else {
                String::new()
            },
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
        Ok(if unreachable || bad_scenario {
            ExitCode::from(2)
        } else if passed + known == scenarios.len() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// Every mistake in the scenarios' toxics, against the built-in plugins and
/// those given with `--plugin`, loaded by the plugin host `serve` uses.
fn check_toxics_offline(
    scenarios: &[Scenario],
    plugins: &[PathBuf],
) -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let host = super::describing_host().await?;
        for file in super::plugin_files(plugins)? {
            host.load_file(&file)
                .await
                .with_context(|| format!("--plugin {}", file.display()))?;
        }
        let descriptions: Vec<_> = host
            .list()
            .iter()
            .map(|p| p.description().clone())
            .collect();
        Ok(scenarios
            .iter()
            .flat_map(|s| check_toxics(s, &descriptions))
            .collect())
    })
}
