//! The HTML report (`faultgate run --html FILE`): one self-contained file,
//! styles inline and no script, that a browser opens without a network and
//! that prints. For each scenario: its verdict; a timeline on one time axis
//! with each step as a bar, the windows during which each fault was on each
//! proxy shaded behind them, each attempt of a `wait_until` as a tick
//! coloured by its outcome, and the failing step marked; then each step's
//! exchange. A summary of every scenario comes first.
//!
//! The timeline is SVG drawn here (bars, bands, ticks) inside HTML rows, so
//! that labels wrap in a narrow window while the bars keep their places.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::report::{Outcome, ScenarioReport, StepReport};
use super::trace::FaultEffect;

/// A scenario as the report shows it: run, or stopped before its first step.
pub enum Entry<'a> {
    Ran(&'a ScenarioReport),
    /// Could not run at all (exit code 2): the stack was not reachable, or
    /// its TLS settings could not be read.
    NotRun {
        name: String,
        file: String,
        why: String,
    },
}

/// Width of the timeline's coordinate system; the SVGs stretch to fit.
const WIDTH: f64 = 1000.0;

/// One stretch of time during which a fault was on a proxy (or the proxy
/// was disabled).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub proxy: String,
    /// The fault's name, or `(disabled)`.
    pub fault: String,
    pub from: Duration,
    pub to: Duration,
}

/// The name a disabled proxy's window has.
pub const DISABLED: &str = "(disabled)";

/// When each fault was on, from the faults found at the start and every
/// change a step made; what is still on at the end lasts to the end.
pub fn windows(report: &ScenarioReport) -> Vec<Window> {
    let end = scenario_end(report);
    let mut open: BTreeMap<(String, String), Duration> = BTreeMap::new();
    let mut done = Vec::new();
    for (proxy, faults) in &report.faults_at_start {
        for fault in faults {
            open.insert((proxy.clone(), fault.clone()), Duration::ZERO);
        }
    }
    let mut close = |open: &mut BTreeMap<(String, String), Duration>, key: (String, String), at| {
        if let Some(from) = open.remove(&key) {
            done.push(Window {
                proxy: key.0,
                fault: key.1,
                from,
                to: at,
            });
        }
    };
    let changes = report
        .steps
        .iter()
        .filter_map(|s| s.trace.as_ref())
        .flat_map(|t| &t.faults);
    for change in changes {
        let key = |fault: &str| (change.proxy.clone(), fault.to_owned());
        match &change.effect {
            FaultEffect::Added(fault) => {
                open.entry(key(fault)).or_insert(change.at);
            }
            FaultEffect::Removed(fault) => close(&mut open, key(fault), change.at),
            FaultEffect::Chain(faults) => {
                let gone: Vec<_> = open
                    .keys()
                    .filter(|(p, f)| *p == change.proxy && f != DISABLED && !faults.contains(f))
                    .cloned()
                    .collect();
                for k in gone {
                    close(&mut open, k, change.at);
                }
                for fault in faults {
                    open.entry(key(fault)).or_insert(change.at);
                }
            }
            FaultEffect::Enabled(false) => {
                open.entry(key(DISABLED)).or_insert(change.at);
            }
            FaultEffect::Enabled(true) => close(&mut open, key(DISABLED), change.at),
        }
    }
    for key in open.keys().cloned().collect::<Vec<_>>() {
        close(&mut open, key, end);
    }
    done.sort_by_key(|w| w.from);
    done
}

fn scenario_end(report: &ScenarioReport) -> Duration {
    report
        .steps
        .iter()
        .map(|s| s.started + s.duration)
        .fold(report.duration, Duration::max)
}

/// The whole report.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(64 << 10);
    let written = humantime::format_rfc3339_seconds(SystemTime::now());
    let passed = entries
        .iter()
        .filter(|e| matches!(e, Entry::Ran(r) if r.as_expected()))
        .count();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>faultgate run: {passed} of {} passed</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>faultgate run</h1><p class=\"quiet\">{passed} of {} scenarios passed · written {written}</p></header>\n",
        entries.len(),
        entries.len()
    );
    summary(&mut out, entries);
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Ran(report) => scenario(&mut out, index, report),
            Entry::NotRun { name, file, why } => not_run(&mut out, index, name, file, why),
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn summary(out: &mut String, entries: &[Entry]) {
    out.push_str("<section class=\"summary\"><h2>Summary</h2><table><thead><tr><th>scenario</th><th>verdict</th><th>time</th><th>why</th></tr></thead><tbody>\n");
    for (index, entry) in entries.iter().enumerate() {
        let (name, verdict, class, time, why) = match entry {
            Entry::Ran(r) => (
                r.name.as_str(),
                verdict(r),
                verdict_class(r),
                seconds(r.duration),
                r.unexpected().or_else(|| known_why(r)).unwrap_or_default(),
            ),
            Entry::NotRun { name, why, .. } => (
                name.as_str(),
                "NOT RUN",
                "fail",
                "-".to_owned(),
                why.clone(),
            ),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td><a href=\"#s{index}\">{}</a></td><td><span class=\"verdict {class}\">{verdict}</span></td><td>{time}</td><td>{}</td></tr>",
            esc(name),
            esc(first_line(&why))
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// The verdict's colour: a known failure is neither a pass nor a failure.
fn verdict_class(report: &ScenarioReport) -> &'static str {
    if report.failed_as_known() {
        "known"
    } else if report.as_expected() {
        "pass"
    } else {
        "fail"
    }
}

/// For a known failure: the mark's reason and the failure it expects.
fn known_why(report: &ScenarioReport) -> Option<String> {
    report.failed_as_known().then(|| {
        format!(
            "known failure ({}): {}",
            report.known_failure.as_deref().unwrap_or_default(),
            report.failure().unwrap_or_default()
        )
    })
}

fn verdict(report: &ScenarioReport) -> &'static str {
    if report.known_failure.is_some() && !report.unreachable() && !report.interrupted {
        report.verdict_word()
    } else if report.passed() {
        "PASSED"
    } else if report.unreachable() {
        "UNREACHABLE"
    } else if report.bad_scenario() {
        "BAD SCENARIO"
    } else if report.interrupted {
        "INTERRUPTED"
    } else {
        "FAILED"
    }
}

fn not_run(out: &mut String, index: usize, name: &str, file: &str, why: &str) {
    let _ = writeln!(
        out,
        "<section class=\"scenario\" id=\"s{index}\" data-verdict=\"not-run\"><h2><span class=\"verdict fail\">NOT RUN</span> {}</h2><p class=\"quiet\">{}</p><p class=\"why\">The scenario stopped before its first step (exit code 2): {}</p></section>",
        esc(name),
        esc(file),
        esc(why)
    );
}

fn scenario(out: &mut String, index: usize, report: &ScenarioReport) {
    let class = verdict_class(report);
    let _ = writeln!(
        out,
        "<section class=\"scenario\" id=\"s{index}\" data-verdict=\"{}\"><h2><span class=\"verdict {class}\">{}</span> {}</h2><p class=\"quiet\">{} · {}</p>",
        verdict(report).to_ascii_lowercase().replace(' ', "-"),
        verdict(report),
        esc(&report.name),
        esc(&report.file.display().to_string()),
        esc(&report.summary_line())
    );
    if let Some(failure) = report.unexpected().or_else(|| known_why(report)) {
        let _ = writeln!(out, "<pre class=\"why\">{}</pre>", esc(&failure));
    }
    let windows = windows(report);
    timeline(out, index, report, &windows);
    out.push_str("<h3>Steps</h3>\n");
    let failing = failing_step(report);
    for (i, step) in report.steps.iter().enumerate() {
        step_detail(out, index, i, step, Some(i) == failing);
    }
    out.push_str("</section>\n");
}

fn failing_step(report: &ScenarioReport) -> Option<usize> {
    report.steps.iter().position(|s| !s.passed())
}

/// Where a time falls on the timeline, 0 to [`WIDTH`].
struct Scale {
    end: f64,
}

impl Scale {
    fn x(&self, at: Duration) -> f64 {
        (at.as_secs_f64() / self.end * WIDTH).clamp(0.0, WIDTH)
    }
    fn percent(&self, at: Duration) -> f64 {
        self.x(at) / WIDTH * 100.0
    }
}

fn timeline(out: &mut String, index: usize, report: &ScenarioReport, windows: &[Window]) {
    let end = scenario_end(report).max(Duration::from_millis(1));
    let scale = Scale {
        end: end.as_secs_f64(),
    };
    let lanes: Vec<(String, String)> = {
        let mut lanes = Vec::new();
        for w in windows {
            let key = (w.proxy.clone(), w.fault.clone());
            if !lanes.contains(&key) {
                lanes.push(key);
            }
        }
        lanes
    };
    let lane_of = |w: &Window| {
        lanes
            .iter()
            .position(|(p, f)| *p == w.proxy && *f == w.fault)
            .unwrap_or(0)
    };
    let mut bands = String::new();
    for w in windows {
        let (x0, x1) = (scale.x(w.from), scale.x(w.to));
        let _ = write!(
            bands,
            "<rect class=\"band c{}\" x=\"{x0:.1}\" y=\"0\" width=\"{:.1}\" height=\"20\"/>",
            lane_of(w) % PALETTE,
            (x1 - x0).max(1.0)
        );
    }

    out.push_str("<div class=\"timeline\" role=\"figure\" aria-label=\"timeline\">\n");
    // The axis.
    out.push_str(
        "<div class=\"row axis\"><div class=\"label\">time</div><div class=\"track ticks\">",
    );
    let tick = tick_step(end);
    let mut at = Duration::ZERO;
    while at <= end {
        let _ = write!(
            out,
            "<span style=\"left:{:.2}%\">{}</span>",
            scale.percent(at),
            seconds(at)
        );
        at += tick;
    }
    out.push_str("</div></div>\n");
    // One lane per fault.
    for (lane, (proxy, fault)) in lanes.iter().enumerate() {
        let _ = write!(
            out,
            "<div class=\"row fault\" data-proxy=\"{}\" data-fault=\"{}\"><div class=\"label\"><span class=\"swatch c{}\"></span>{} / {}</div><svg class=\"track\" viewBox=\"0 0 {WIDTH} 20\" preserveAspectRatio=\"none\">",
            esc(proxy),
            esc(fault),
            lane % PALETTE,
            esc(proxy),
            esc(fault)
        );
        for w in windows
            .iter()
            .filter(|w| w.proxy == *proxy && w.fault == *fault)
        {
            let (x0, x1) = (scale.x(w.from), scale.x(w.to));
            let _ = write!(
                out,
                "<rect class=\"window c{}\" data-from=\"{:.3}\" data-to=\"{:.3}\" x=\"{x0:.1}\" y=\"3\" width=\"{:.1}\" height=\"14\"><title>{} on {}: {} to {}</title></rect>",
                lane % PALETTE,
                w.from.as_secs_f64(),
                w.to.as_secs_f64(),
                (x1 - x0).max(1.0),
                esc(fault),
                esc(proxy),
                seconds(w.from),
                seconds(w.to)
            );
        }
        out.push_str("</svg></div>\n");
    }
    // One row per step.
    let failing = failing_step(report);
    for (i, step) in report.steps.iter().enumerate() {
        let state = outcome_class(&step.outcome);
        let marked = Some(i) == failing;
        let _ = write!(
            out,
            "<div class=\"row step {state}{}\" data-step=\"{i}\" data-outcome=\"{state}\"><div class=\"label\">{}<a href=\"#step-s{index}-{i}\">{} <span class=\"kind\">{}</span></a> <span class=\"quiet\">{}</span></div><svg class=\"track\" viewBox=\"0 0 {WIDTH} 20\" preserveAspectRatio=\"none\">{bands}",
            if marked { " failing" } else { "" },
            if marked {
                "<strong class=\"mark\">✗ failed here</strong> "
            } else {
                ""
            },
            esc(&step.name),
            step.kind,
            step.section
        );
        if step.outcome != Outcome::Skipped {
            let (x0, x1) = (scale.x(step.started), scale.x(step.started + step.duration));
            let _ = write!(
                out,
                "<rect class=\"bar {state}\" data-from=\"{:.3}\" data-to=\"{:.3}\" x=\"{x0:.1}\" y=\"5\" width=\"{:.1}\" height=\"10\"><title>{}: {} to {}</title></rect>",
                step.started.as_secs_f64(),
                (step.started + step.duration).as_secs_f64(),
                (x1 - x0).max(2.0),
                esc(&step.name),
                seconds(step.started),
                seconds(step.started + step.duration)
            );
        }
        for attempt in step.trace.iter().flat_map(|t| &t.attempts) {
            let x = scale.x(attempt.at);
            let class = if attempt.passed { "passed" } else { "failed" };
            let _ = write!(
                out,
                "<rect class=\"attempt {class}\" x=\"{:.1}\" y=\"1\" width=\"3\" height=\"18\"><title>attempt at {}: {}</title></rect>",
                (x - 1.5).max(0.0),
                seconds(attempt.at),
                esc(attempt.message.as_deref().map_or("held", first_line))
            );
        }
        out.push_str("</svg></div>\n");
    }
    out.push_str("</div>\n");
    if !lanes.is_empty() {
        out.push_str("<p class=\"legend quiet\">Shaded: when each fault was on (one colour per fault). Ticks: each attempt of a repeated check, green when it held, red when it did not.</p>\n");
    }
}

fn step_detail(out: &mut String, scenario: usize, i: usize, step: &StepReport, failing: bool) {
    let state = outcome_class(&step.outcome);
    let _ = write!(
        out,
        "<article class=\"detail {state}{}\" id=\"step-s{scenario}-{i}\"><h4><span class=\"verdict {state}\">{}</span> {} <span class=\"kind\">{}</span> <span class=\"quiet\">{} · line {} · {} at {}</span></h4>",
        if failing { " failing" } else { "" },
        state.to_ascii_uppercase(),
        esc(&step.name),
        step.kind,
        step.section,
        step.line,
        seconds(step.duration),
        seconds(step.started)
    );
    out.push_str("<dl>");
    let mut item = |term: &str, text: &str| {
        if !text.is_empty() {
            let _ = write!(out, "<dt>{term}</dt><dd><pre>{}</pre></dd>", esc(text));
        }
    };
    match &step.outcome {
        Outcome::Failed(m) => item("failed", m),
        Outcome::Unreachable(m) => item("unreachable", m),
        Outcome::BadScenario(m) => item("bad scenario", m),
        Outcome::Skipped => item(
            "not run",
            "an earlier step failed, or the run was interrupted",
        ),
        Outcome::Passed => {}
    }
    if let Some(note) = &step.note {
        item("note", note);
    }
    if let Some(trace) = &step.trace {
        let d = &trace.detail;
        item("sent", d.sent.as_deref().unwrap_or_default());
        item("expected", d.expected.as_deref().unwrap_or_default());
        item("got", d.got.as_deref().unwrap_or_default());
        item("body", d.body.as_deref().unwrap_or_default());
        if !trace.attempts.is_empty() {
            let failed = trace.attempts.iter().filter(|a| !a.passed).count();
            let lines: Vec<String> = trace
                .attempts
                .iter()
                .map(|a| {
                    format!(
                        "{} {} ({}){}",
                        seconds(a.at),
                        if a.passed { "held" } else { "did not hold" },
                        seconds(a.took),
                        a.message
                            .as_deref()
                            .map(|m| format!(": {}", first_line(m)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            item(
                &format!("attempts ({}, {failed} did not hold)", trace.attempts.len()),
                &lines.join("\n"),
            );
        }
        for change in &trace.faults {
            let what = match &change.effect {
                FaultEffect::Added(f) => format!("{f} on"),
                FaultEffect::Removed(f) => format!("{f} off"),
                FaultEffect::Chain(fs) if fs.is_empty() => "no faults".to_owned(),
                FaultEffect::Chain(fs) => format!("exactly {} on", fs.join(", ")),
                FaultEffect::Enabled(true) => "enabled".to_owned(),
                FaultEffect::Enabled(false) => "disabled".to_owned(),
            };
            item(
                "fault change",
                &format!("{} proxy {}: {what}", seconds(change.at), change.proxy),
            );
        }
    }
    out.push_str("</dl></article>\n");
}

fn outcome_class(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed(_) => "failed",
        Outcome::Unreachable(_) => "unreachable",
        Outcome::BadScenario(_) => "failed",
        Outcome::Skipped => "skipped",
    }
}

/// A step between axis labels that gives at most about eight of them.
fn tick_step(end: Duration) -> Duration {
    const STEPS_MS: [u64; 16] = [
        10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
        300_000, 600_000,
    ];
    let end_ms = end.as_millis() as u64;
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| end_ms / s <= 8)
        .unwrap_or(end_ms.div_ceil(8).max(1));
    Duration::from_millis(step)
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2}s")
    } else {
        format!("{s:.1}s")
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Text made safe inside HTML elements and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// How many fault colours there are (`.c0` to `.c5`).
const PALETTE: usize = 6;

const STYLE: &str = include_str!("html.css");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::trace::{FaultChange, Trace};
    use std::path::PathBuf;
    use std::time::Instant;

    fn step(name: &str, started: u64, took: u64, faults: Vec<(u64, FaultEffect)>) -> StepReport {
        let mut trace = Trace::new(Instant::now());
        trace.faults = faults
            .into_iter()
            .map(|(at, effect)| FaultChange {
                at: Duration::from_millis(at),
                proxy: "api".into(),
                effect,
            })
            .collect();
        StepReport {
            section: "steps",
            name: name.into(),
            kind: "fault",
            line: 1,
            started: Duration::from_millis(started),
            duration: Duration::from_millis(took),
            outcome: Outcome::Passed,
            note: None,
            trace: Some(trace),
        }
    }

    fn report(steps: Vec<StepReport>, at_start: Vec<&str>) -> ScenarioReport {
        ScenarioReport {
            name: "s".into(),
            file: PathBuf::from("s.toml"),
            steps,
            duration: Duration::from_millis(5000),
            interrupted: false,
            restore_failure: None,
            faults_at_start: vec![("api".into(), at_start.into_iter().map(Into::into).collect())],
            known_failure: None,
        }
    }

    fn spans(report: &ScenarioReport) -> Vec<(String, u64, u64)> {
        windows(report)
            .into_iter()
            .map(|w| (w.fault, w.from.as_millis() as u64, w.to.as_millis() as u64))
            .collect()
    }

    #[test]
    fn a_fault_is_on_from_its_add_to_its_remove_and_what_stays_on_lasts_to_the_end() {
        let r = report(
            vec![
                step("on", 100, 10, vec![(110, FaultEffect::Added("lag".into()))]),
                step(
                    "off",
                    2000,
                    10,
                    vec![(2010, FaultEffect::Removed("lag".into()))],
                ),
                step("cut", 3000, 10, vec![(3010, FaultEffect::Enabled(false))]),
            ],
            vec!["old"],
        );
        assert_eq!(
            spans(&r),
            [
                ("old".to_owned(), 0, 5000),
                ("lag".to_owned(), 110, 2010),
                (DISABLED.to_owned(), 3010, 5000)
            ]
        );
    }

    #[test]
    fn a_replaced_chain_ends_the_faults_it_leaves_out_and_keeps_the_others() {
        let r = report(
            vec![
                step(
                    "both",
                    0,
                    10,
                    vec![(10, FaultEffect::Chain(vec!["a".into(), "b".into()]))],
                ),
                step(
                    "only b",
                    1000,
                    10,
                    vec![(1010, FaultEffect::Chain(vec!["b".into()]))],
                ),
                step("clear", 2000, 10, vec![(2010, FaultEffect::Chain(vec![]))]),
            ],
            vec![],
        );
        assert_eq!(
            spans(&r),
            [("a".to_owned(), 10, 1010), ("b".to_owned(), 10, 2010)]
        );
    }

    #[test]
    fn names_from_the_scenario_are_escaped() {
        let mut r = report(vec![step("<script>x</script>", 0, 10, vec![])], vec![]);
        r.name = "a & <b>".into();
        let page = render(&[Entry::Ran(&r)]);
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("a &amp; &lt;b&gt;"));
    }
}
