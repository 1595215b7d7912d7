//! What a run found: a line per step, a summary, JSON, and JUnit XML.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::outcome::{Done, Failed};
use super::scenario::{Scenario, Step};
use super::trace::Trace;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    /// A check did not hold; the message says what was expected and what
    /// came back.
    Failed(String),
    /// The stack did not answer.
    Unreachable(String),
    /// The control API refused a fault step as bad input: the scenario is
    /// wrong (exit code 2), whatever the system under test does.
    BadScenario(String),
    /// Not run: an earlier step failed, or the run was interrupted.
    Skipped,
}

#[derive(Debug, Clone)]
pub struct StepReport {
    pub section: &'static str,
    pub name: String,
    /// The step's kind, as written in files (`http`, `fault`, ...).
    pub kind: &'static str,
    pub line: usize,
    /// When it started, from the start of the scenario.
    pub started: Duration,
    pub duration: Duration,
    pub outcome: Outcome,
    /// What a passing step reports, e.g. how long a wait took.
    pub note: Option<String>,
    /// Its attempts, fault changes and exchange, for the HTML report
    /// (`None` for a step not run).
    pub trace: Option<Trace>,
}

impl StepReport {
    pub(super) fn of(
        section: &'static str,
        step: &Step,
        (started, duration): (Duration, Duration),
        result: Result<Done, Failed>,
        trace: Trace,
    ) -> Self {
        let (outcome, note) = match result {
            Ok(done) => (Outcome::Passed, done.note),
            Err(Failed::Check(message)) => (Outcome::Failed(message), None),
            Err(Failed::Stack(message)) => (Outcome::Unreachable(message), None),
            Err(Failed::BadScenario(message)) => (Outcome::BadScenario(message), None),
        };
        Self {
            section,
            name: step.name.clone(),
            kind: step.action.kind(),
            line: step.line,
            started,
            duration,
            outcome,
            note,
            trace: Some(trace),
        }
    }

    pub(super) fn skipped(section: &'static str, step: &Step) -> Self {
        Self {
            section,
            name: step.name.clone(),
            kind: step.action.kind(),
            line: step.line,
            started: Duration::ZERO,
            duration: Duration::ZERO,
            outcome: Outcome::Skipped,
            note: None,
            trace: None,
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Passed | Outcome::Skipped)
    }

    /// The live line.
    pub fn line(&self) -> String {
        let (mark, text) = match &self.outcome {
            Outcome::Passed => ("ok  ", self.note.clone().unwrap_or_default()),
            Outcome::Failed(m) | Outcome::Unreachable(m) | Outcome::BadScenario(m) => {
                ("FAIL", first_line(m).to_owned())
            }
            Outcome::Skipped => ("skip", String::new()),
        };
        format!(
            "  {mark} {:>8} {} {}{}",
            format!("{:.2}s", self.duration.as_secs_f64()),
            self.section,
            self.name,
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        )
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    pub file: PathBuf,
    pub steps: Vec<StepReport>,
    pub duration: Duration,
    pub interrupted: bool,
    /// Putting the proxies back failed.
    pub restore_failure: Option<String>,
    /// The faults each proxy had when the run started (proxies the run
    /// created had none).
    pub faults_at_start: Vec<(String, Vec<String>)>,
    /// The scenario's `known_failure` mark: why it is expected to fail.
    pub known_failure: Option<String>,
}

impl ScenarioReport {
    pub(super) fn new(scenario: &Scenario) -> Self {
        Self {
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            steps: Vec::new(),
            duration: Duration::ZERO,
            interrupted: false,
            restore_failure: None,
            faults_at_start: Vec::new(),
            known_failure: scenario.known_failure.clone(),
        }
    }

    /// Marked as a known failure, and a check failed: as expected. An
    /// unreachable stack, a fault the API refused as bad input, an
    /// interrupt or proxies not put back are not.
    pub fn failed_as_known(&self) -> bool {
        self.known_failure.is_some()
            && !self.passed()
            && !self.unreachable()
            && !self.bad_scenario()
            && !self.interrupted
            && self.restore_failure.is_none()
    }

    /// Marked as a known failure, and every step passed.
    pub fn unexpectedly_passed(&self) -> bool {
        self.known_failure.is_some() && self.passed()
    }

    /// What the run's exit code counts: passed, or, for a scenario marked
    /// as a known failure, failed as expected.
    pub fn as_expected(&self) -> bool {
        if self.known_failure.is_some() {
            self.failed_as_known()
        } else {
            self.passed()
        }
    }

    /// Why the scenario did not go as expected (`None` when it did).
    pub fn unexpected(&self) -> Option<String> {
        if self.unexpectedly_passed() {
            return Some(format!(
                "{}: {}: {}",
                self.file.display(),
                UNEXPECTED_PASS,
                self.known_failure.as_deref().unwrap_or_default()
            ));
        }
        if self.as_expected() {
            None
        } else {
            self.failure()
        }
    }

    /// "PASSED", "FAILED", "KNOWN FAILURE", "UNEXPECTEDLY PASSED".
    pub fn verdict_word(&self) -> &'static str {
        if self.failed_as_known() {
            "KNOWN FAILURE"
        } else if self.unexpectedly_passed() {
            "UNEXPECTEDLY PASSED"
        } else if self.passed() {
            "PASSED"
        } else {
            "FAILED"
        }
    }

    pub fn passed(&self) -> bool {
        !self.interrupted && self.restore_failure.is_none() && self.steps.iter().all(|s| s.passed())
    }

    /// Whether a failure was the stack not answering (exit code 2).
    pub fn unreachable(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Unreachable(_)))
    }

    /// Whether a fault step was refused as bad input (exit code 2).
    pub fn bad_scenario(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::BadScenario(_)))
    }

    /// The first failure: where, which step, what was expected and found.
    pub fn failure(&self) -> Option<String> {
        let step = self.steps.iter().find(|s| !s.passed()).map(|s| {
            let message = match &s.outcome {
                Outcome::Failed(m) | Outcome::Unreachable(m) | Outcome::BadScenario(m) => {
                    m.as_str()
                }
                _ => "",
            };
            format!(
                "{}:{}: {} step {:?}: {message}",
                self.file.display(),
                s.line,
                s.section,
                s.name
            )
        });
        step.or_else(|| self.restore_failure.clone())
            .or_else(|| self.interrupted.then(|| "interrupted".to_owned()))
    }

    pub fn summary_line(&self) -> String {
        let ran = self
            .steps
            .iter()
            .filter(|s| s.outcome != Outcome::Skipped)
            .count();
        let failed = self.steps.iter().filter(|s| !s.passed()).count();
        let mut line = format!(
            "{} {} ({} steps run, {} failed, {:.2}s)",
            self.verdict_word(),
            self.name,
            ran,
            failed,
            self.duration.as_secs_f64()
        );
        if let Some(why) = &self.known_failure {
            if self.unexpectedly_passed() {
                line.push_str(&format!(": {UNEXPECTED_PASS}"));
            }
            line.push_str(&format!(" [known failure: {why}]"));
        }
        line
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "file": self.file.display().to_string(),
            "passed": self.passed(),
            "known_failure": self.known_failure,
            "as_expected": self.as_expected(),
            "verdict": self.verdict_word(),
            "seconds": self.duration.as_secs_f64(),
            "failure": self.failure(),
            "steps": self.steps.iter().map(|s| json!({
                "section": s.section,
                "name": s.name,
                "line": s.line,
                "seconds": s.duration.as_secs_f64(),
                "outcome": match &s.outcome {
                    Outcome::Passed => "passed",
                    Outcome::Failed(_) => "failed",
                    Outcome::Unreachable(_) => "unreachable",
                    Outcome::BadScenario(_) => "bad scenario",
                    Outcome::Skipped => "skipped",
                },
                "message": match &s.outcome {
                    Outcome::Failed(m) | Outcome::Unreachable(m) | Outcome::BadScenario(m) => {
                        Some(m.clone())
                    }
                    _ => None,
                },
                "note": s.note,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A JUnit XML report: one testsuite, one testcase per scenario.
pub fn junit(reports: &[ScenarioReport]) -> String {
    let failures = reports.iter().filter(|r| !r.as_expected()).count();
    let skipped = reports.iter().filter(|r| r.failed_as_known()).count();
    let seconds: f64 = reports.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"faultgate\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{seconds:.3}\">\n",
        reports.len()
    );
    for report in reports {
        xml.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
            escape(&report.file.display().to_string()),
            escape(&report.name),
            report.duration.as_secs_f64()
        ));
        if report.failed_as_known() {
            // CI tools show a skipped case with its message, apart from
            // passes and failures.
            let failure = report.failure().unwrap_or_default();
            xml.push_str(&format!(
                "    <skipped message=\"{}\">{}</skipped>\n",
                escape(&format!(
                    "KNOWN FAILURE: {}",
                    report.known_failure.as_deref().unwrap_or_default()
                )),
                escape(&format!("failed as expected: {failure}"))
            ));
        } else if let Some(failure) = report.unexpected() {
            xml.push_str(&format!(
                "    <failure message=\"{}\">{}</failure>\n",
                escape(first_line(&failure)),
                escape(&failure)
            ));
        }
        let log: String = report.steps.iter().map(|s| s.line() + "\n").collect();
        xml.push_str(&format!("    <system-out>{}</system-out>\n", escape(&log)));
        xml.push_str("  </testcase>\n");
    }
    xml.push_str("</testsuite>\n");
    xml
}

/// What a scenario marked as a known failure that passed is told.
pub const UNEXPECTED_PASS: &str =
    "passed but is marked as a known failure (fixed? remove the mark)";

fn escape(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
