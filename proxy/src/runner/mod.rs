//! The scenario runner: `faultgate run`, and the same as a Rust library.
//!
//! A scenario (see [`scenario`] for the file format) names the proxies it
//! uses, switches faults on them through their control API, and checks how
//! the system under test behaves. The runner never touches a proxy any
//! other way, so it drives a sidecar in a compose stack exactly as it drives
//! a local `faultgate serve`.
//!
//! A run: the proxies' chains and enabled states are recorded (proxies the
//! scenario asks to create are created); `setup` and `steps` run in order,
//! stopping at the first failure; `teardown` always runs, even after a
//! failure or an interrupt; then every proxy is put back as it was found
//! (created ones are deleted).
//!
//! As a library:
//!
//! ```no_run
//! # async fn example() {
//! use faultgate::runner::{Runner, Scenario};
//! let scenario = Scenario::from_file("gate.toml".as_ref()).unwrap();
//! let report = Runner::new().run(&scenario).await.unwrap();
//! assert!(report.passed(), "{}", report.failure().unwrap_or_default());
//! # }
//! ```

pub mod client;
pub mod expect;
mod holds;
pub mod html;
mod negative;
mod one_of;
mod one_of_schema;
mod outcome;
pub mod report;
pub mod scenario;
pub mod steps;
pub mod toxics_check;
pub mod trace;
pub mod vars;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use client::{ControlFailure, HttpClient};
use outcome::Failed;
pub use report::{Outcome, ScenarioReport, StepReport};
pub use scenario::{Action, Scenario, ScenarioError, Step};
use steps::Context;
use trace::Trace;
use vars::Vars;

use crate::tls::ClientTls;

/// Why a scenario could not be run at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{file}: the stack is not reachable: {message}")]
    Stack { file: String, message: String },
    #[error("{file}: {message}")]
    Tls { file: String, message: String },
}

/// Runs scenarios.
#[derive(Clone, Default)]
pub struct Runner {
    client: HttpClient,
    interrupt: CancellationToken,
    live: bool,
}

/// A proxy as found before the run, to put it back after.
struct Found {
    name: String,
    api: String,
    /// `None`: the run created it, and deletes it.
    state: Option<(Value, bool)>,
}

impl Runner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prints a line to stderr as each step ends.
    pub fn live(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// Cancelling this stops the step running and goes to teardown.
    pub fn interrupt(&self) -> CancellationToken {
        self.interrupt.clone()
    }

    pub async fn run(&self, scenario: &Scenario) -> Result<ScenarioReport, RunError> {
        let started = Instant::now();
        let file = scenario.file.display().to_string();
        let mut vars = Vars::default();
        if let Some(seed) = scenario.seed {
            vars.set("SEED", seed.to_string());
        }
        if self.live {
            eprintln!("scenario {} ({file})", scenario.name);
        }
        let client = self
            .client_for(scenario, &vars)
            .map_err(|message| RunError::Tls {
                file: file.clone(),
                message,
            })?;
        let found = self
            .record_proxies(scenario, &vars)
            .await
            .map_err(|message| RunError::Stack {
                file: file.clone(),
                message,
            })?;

        let mut report = ScenarioReport::new(scenario);
        report.faults_at_start = found
            .iter()
            .map(|f| {
                let names = f
                    .state
                    .as_ref()
                    .and_then(|(chain, _)| chain.as_array())
                    .map(|chain| {
                        chain
                            .iter()
                            .filter_map(|t| t["name"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (f.name.clone(), names)
            })
            .collect();
        let mut failed = false;
        for (section, steps) in [("setup", &scenario.setup), ("steps", &scenario.steps)] {
            for step in steps {
                if failed || self.interrupt.is_cancelled() {
                    report.steps.push(StepReport::skipped(section, step));
                    continue;
                }
                let result = self
                    .step(&client, (section, step), scenario, &mut vars, started, true)
                    .await;
                failed |= !result.passed();
                report.steps.push(result);
            }
        }
        for step in &scenario.teardown {
            // Teardown runs whatever happened, interrupt included.
            let result = self
                .step(
                    &client,
                    ("teardown", step),
                    scenario,
                    &mut vars,
                    started,
                    false,
                )
                .await;
            report.steps.push(result);
        }
        if let Err(problem) = self.restore(&found).await {
            report.restore_failure = Some(problem);
        }
        report.interrupted = self.interrupt.is_cancelled();
        report.duration = started.elapsed();
        if self.live {
            eprintln!("{}", report.summary_line());
        }
        Ok(report)
    }

    /// The client for the scenario's `http` steps: the runner's own, or
    /// one that checks HTTPS servers as the scenario's `tls` says.
    fn client_for(&self, scenario: &Scenario, vars: &Vars) -> Result<HttpClient, String> {
        let Some(spec) = &scenario.tls else {
            return Ok(self.client.clone());
        };
        let expand = |text: &str| vars.expand(text).map_err(|e| format!("tls: {e}"));
        let spec = ClientTls {
            ca: spec
                .ca
                .as_ref()
                .map(|path| expand(&path.to_string_lossy()).map(PathBuf::from))
                .transpose()?,
            insecure: spec.insecure,
            server_name: spec.server_name.as_deref().map(expand).transpose()?,
        };
        HttpClient::with_tls(spec).map_err(|e| e.to_string())
    }

    /// Runs one step; an `interruptible` one stops at an interrupt.
    /// `origin` is the scenario's start, from which the report counts.
    async fn step(
        &self,
        client: &HttpClient,
        (section, step): (&'static str, &Step),
        scenario: &Scenario,
        vars: &mut Vars,
        origin: Instant,
        interruptible: bool,
    ) -> StepReport {
        let interrupt = self.interrupt.clone();
        let started = Instant::now();
        let mut context = Context {
            client,
            proxies: &scenario.proxies,
            vars,
            trace: Trace::new(origin),
        };
        let result = if !interruptible {
            context.run(&step.action).await
        } else {
            tokio::select! {
                result = context.run(&step.action) => result,
                _ = interrupt.cancelled() => Err(Failed::Check("interrupted".into())),
            }
        };
        let times = (started.duration_since(origin), started.elapsed());
        self.finish(section, step, times, result, context.trace)
    }

    fn finish(
        &self,
        section: &'static str,
        step: &Step,
        times: (Duration, Duration),
        result: Result<outcome::Done, Failed>,
        trace: Trace,
    ) -> StepReport {
        let report = StepReport::of(section, step, times, result, trace);
        if self.live {
            eprintln!("{}", report.line());
        }
        report
    }

    /// Records each proxy's chain and enabled state; creates those the
    /// scenario asks for that do not exist.
    async fn record_proxies(&self, scenario: &Scenario, vars: &Vars) -> Result<Vec<Found>, String> {
        let mut found = Vec::new();
        for (name, proxy) in &scenario.proxies {
            let api = vars.expand(&proxy.api)?.trim_end_matches('/').to_owned();
            let url = format!("{api}/proxies/{name}");
            match self.client.control("GET", &url, None).await {
                Ok(shown) => {
                    let chain = shown["toxics"].clone();
                    let enabled = shown["enabled"].as_bool().unwrap_or(true);
                    found.push(Found {
                        name: name.clone(),
                        api,
                        state: Some((chain, enabled)),
                    });
                }
                Err(ControlFailure::Refused { status: 404, .. }) => {
                    let Some(create) = &proxy.create else {
                        return Err(format!(
                            "proxy {name:?} does not exist on {api} (declare `create` to make it)"
                        ));
                    };
                    let mut body = json!({
                        "name": name,
                        "listen": vars.expand(&create.listen)?,
                        "upstream": vars.expand(&create.upstream)?,
                    });
                    if let Some(mode) = &create.mode {
                        body["mode"] = json!(mode);
                    }
                    self.client
                        .control("POST", &format!("{api}/proxies"), Some(&body))
                        .await
                        .map_err(|e| format!("creating proxy {name:?}: {e}"))?;
                    found.push(Found {
                        name: name.clone(),
                        api,
                        state: None,
                    });
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(found)
    }

    /// Puts every proxy back as it was found.
    async fn restore(&self, found: &[Found]) -> Result<(), String> {
        let mut problems = Vec::new();
        for proxy in found {
            let url = format!("{}/proxies/{}", proxy.api, proxy.name);
            let result = match &proxy.state {
                None => self.client.control("DELETE", &url, None).await.map(drop),
                Some((chain, enabled)) => {
                    let put = self
                        .client
                        .control("PUT", &format!("{url}/toxics"), Some(chain))
                        .await;
                    let patch = self
                        .client
                        .control("PATCH", &url, Some(&json!({ "enabled": enabled })))
                        .await;
                    put.and(patch).map(drop)
                }
            };
            if let Err(e) = result {
                problems.push(format!("putting back proxy {:?}: {e}", proxy.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
