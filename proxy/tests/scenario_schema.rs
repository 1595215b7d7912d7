//! The scenario format as editors and people see it: `faultgate run
//! --schema` (a JSON Schema every shipped scenario passes and bad ones do
//! not, checked with a real validator), and `${VAR}` in durations, names
//! and numbers, read when the file is read and refused with the file, line
//! and field when they do not expand to what the field needs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use faultgate::runner::Scenario;
use serde_json::Value;
use support::faultgate::{run_to_exit, wait_bounded};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The schema as `faultgate run --schema` prints it.
fn printed_schema() -> Value {
    let (code, out) = run_to_exit(&["run", "--schema"]);
    assert_eq!(code, Some(0), "{out}");
    serde_json::from_str(&out).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&printed_schema()).expect("the schema compiles")
}

fn errors(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let table: toml::Table = toml::from_str(toml_text).expect("valid TOML");
    let instance = serde_json::to_value(table).unwrap();
    validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every scenario the repository ships: the test bed's, and the whole
/// scenarios in README.md and docs/scenarios.md (TOML blocks with steps).
fn shipped_scenarios() -> Vec<(String, String)> {
    let root = repository();
    let mut found = Vec::new();
    let dir = root.join("compose/scenarios");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            found.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    for doc in ["README.md", "docs/scenarios.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap();
            if block.contains("[[steps]]") {
                found.push((format!("{doc}, TOML block {}", i + 1), block.to_owned()));
            }
        }
    }
    found
}

#[test]
fn run_schema_prints_a_draft_07_schema_that_is_the_librarys() {
    let schema = printed_schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::meta::validate(&schema).expect("a valid draft-07 schema");
    assert_eq!(schema, faultgate::runner::scenario::json_schema());
    let (code, help) = run_to_exit(&["run", "--help"]);
    assert_eq!(code, Some(0));
    assert!(
        help.contains("docs/scenarios.md") && help.contains("default 30s"),
        "{help}"
    );
}

#[test]
fn every_shipped_scenario_passes_the_schema_and_the_reader() {
    let validator = validator();
    let shipped = shipped_scenarios();
    assert!(
        shipped.len() >= 5,
        "{:?}",
        shipped.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for (name, text) in shipped {
        let problems = errors(&validator, &text);
        assert!(problems.is_empty(), "{name}: {problems:?}");
        // The reader agrees (the variables they use unset: their
        // defaults, or the ones the test bed sets, are not the point).
        if let Err(e) = Scenario::parse(&text, Path::new(&name)) {
            assert!(e.to_string().contains("is neither set"), "{name}: {e}");
        }
    }
}

#[test]
fn bad_scenarios_are_refused_by_the_schema_as_by_the_reader() {
    let validator = validator();
    let proxy = "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n";
    let bad = [
        ("an unknown top-level field", "nmae = \"x\"\n".to_owned()),
        ("an unknown step kind", "[[steps]]\nslep = \"1s\"\n".to_owned()),
        (
            "an unknown field in http",
            "[[steps]]\nhttp = { url = \"http://127.0.0.1:1/\", expect = { staus = 200 } }\n"
                .to_owned(),
        ),
        (
            "a wrong type",
            "[[steps]]\ntcp = { address = \"127.0.0.1:1\", connects = \"yes\" }\n".to_owned(),
        ),
        ("a duration as a number", "[[steps]]\nsleep = 5\n".to_owned()),
        (
            "two kinds in one step",
            "[[steps]]\nsleep = \"1s\"\ntcp = { address = \"127.0.0.1:1\", connects = true }\n"
                .to_owned(),
        ),
        ("a step that does nothing", "[[steps]]\nname = \"idle\"\n".to_owned()),
        (
            "two operations in one fault step",
            format!("{proxy}[[steps]]\nfault = {{ proxy = \"pg\", clear = true, enabled = false }}\n"),
        ),
        (
            "a fault step without its proxy",
            "[[steps]]\nfault = { clear = true }\n".to_owned(),
        ),
        (
            "clear = false",
            format!("{proxy}[[steps]]\nfault = {{ proxy = \"pg\", clear = false }}\n"),
        ),
        (
            "a nested check with two kinds",
            "[[steps]]\nwait_until = { within = \"1s\", check = { sleep = \"1s\", tcp = { address = \"a:1\", connects = true } } }\n"
                .to_owned(),
        ),
        (
            "an unknown mode",
            "[proxies.pg]\napi = \"http://127.0.0.1:1\"\ncreate = { listen = \"127.0.0.1:0\", upstream = \"127.0.0.1:1\", mode = \"udp\" }\n"
                .to_owned(),
        ),
        ("a negative seed", "seed = -1\n".to_owned()),
    ];
    // What the control API checks, the schema knows too: a toxic without
    // its type is refused in the editor, not only at the step.
    let typeless =
        format!("{proxy}[[steps]]\nfault = {{ proxy = \"pg\", add = {{ name = \"x\" }} }}\n");
    assert!(!errors(&validator, &typeless).is_empty());
    for (what, text) in bad {
        assert!(
            !errors(&validator, &text).is_empty(),
            "the schema took {what}:\n{text}"
        );
        assert!(
            Scenario::parse(&text, Path::new("bad.toml")).is_err(),
            "the reader took {what}:\n{text}"
        );
    }
}

/// `faultgate run --check FILE` with `env` set; its exit code and output.
fn check_with(text: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gate.toml");
    std::fs::write(&file, text).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultgate"));
    command
        .args(["run", "--check"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let (status, out) = wait_bounded(command.spawn().unwrap(), Duration::from_secs(30));
    (status.code(), out)
}

const PROXY: &str = "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n";

/// Each duration field, written as a step whose duration is `${VALUE}`.
fn duration_steps() -> Vec<(&'static str, String)> {
    let v = "${VALUE}";
    vec![
        ("sleep", format!("sleep = \"{v}\"")),
        (
            "fault.bounce",
            format!("fault = {{ proxy = \"pg\", bounce = \"{v}\" }}"),
        ),
        (
            "http.timeout",
            format!("http = {{ url = \"http://127.0.0.1:1/\", timeout = \"{v}\" }}"),
        ),
        (
            "http.expect.within",
            format!("http = {{ url = \"http://127.0.0.1:1/\", expect = {{ within = \"{v}\" }} }}"),
        ),
        (
            "wait_until.within",
            format!(
                "wait_until = {{ within = \"{v}\", check = {{ tcp = {{ address = \"127.0.0.1:1\", connects = true }} }} }}"
            ),
        ),
        (
            "wait_until.every",
            format!(
                "wait_until = {{ within = \"1s\", every = \"{v}\", check = {{ tcp = {{ address = \"127.0.0.1:1\", connects = true }} }} }}"
            ),
        ),
        (
            "exec.timeout",
            format!("exec = {{ command = \"true\", timeout = \"{v}\" }}"),
        ),
        (
            "tcp.within",
            format!("tcp = {{ address = \"127.0.0.1:1\", connects = false, within = \"{v}\" }}"),
        ),
        (
            "sql.timeout",
            format!(
                "sql = {{ connect = \"host=127.0.0.1\", query = \"SELECT 1\", timeout = \"{v}\" }}"
            ),
        ),
    ]
}

#[test]
fn every_duration_field_takes_a_variable_and_names_itself_when_it_is_not_a_duration() {
    for (field, step) in duration_steps() {
        let text =
            format!("{PROXY}[[steps]]\nname = \"first\"\nsleep = \"0s\"\n\n[[steps]]\n{step}\n");
        let (code, out) = check_with(&text, &[("VALUE", "1.5s")]);
        assert_eq!(code, Some(0), "{field} with VALUE=1.5s: {out}");
        let (code, out) = check_with(&text, &[("VALUE", "soon")]);
        assert_eq!(code, Some(2), "{field} with VALUE=soon: {out}");
        assert!(
            out.contains("gate.toml:9:")
                && out.contains(&format!(
                    "{field}: \"${{VALUE}}\" expands to \"soon\" is not a duration"
                )),
            "{field}: {out}"
        );
        let (code, out) = check_with(&text, &[]);
        assert_eq!(code, Some(2), "{field} with VALUE unset: {out}");
        assert!(
            out.contains("gate.toml:9:")
                && out.contains(&format!("{field}: ${{VALUE}} is not set")),
            "{field}: {out}"
        );
        let defaulted = text.replace("${VALUE}", "${VALUE:-250ms}");
        let (code, out) = check_with(&defaulted, &[]);
        assert_eq!(code, Some(0), "{field} defaulted: {out}");
    }
}

#[test]
fn a_capture_in_a_duration_is_refused_as_read_before_the_run() {
    let text = "[[steps]]\ncapture = { var = \"pause\", value = \"stdout\", from = { exec = { command = \"echo 1s\" } } }\n\n[[steps]]\nsleep = \"${pause}\"\n";
    let (code, out) = check_with(text, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("gate.toml:5:")
            && out.contains("sleep: ${pause} is not set")
            && out.contains("captures are not known yet"),
        "{out}"
    );
}

#[test]
fn the_seed_takes_a_variable_and_must_be_a_whole_number() {
    let (code, out) = check_with("seed = \"${SEED_FROM_CI}\"\n", &[("SEED_FROM_CI", "42")]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = check_with(
        "name = \"x\"\nseed = \"${SEED_FROM_CI}\"\n",
        &[("SEED_FROM_CI", "4x2")],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("gate.toml:2:")
            && out.contains(
                "seed: \"${SEED_FROM_CI}\" expands to \"4x2\", which is not a whole number"
            ),
        "{out}"
    );
}

#[test]
fn a_status_or_exit_code_with_a_variable_must_expand_to_a_number_or_a_comparison() {
    let http =
        "[[steps]]\nhttp = { url = \"http://127.0.0.1:1/\", expect = { status = \"${CODE}\" } }\n";
    let exec = "[[steps]]\nexec = { command = \"true\", expect = { code = \"${CODE}\" } }\n";
    for (field, text) in [("http.expect.status", http), ("exec.expect.code", exec)] {
        for good in ["200", "< 500", "!= 0"] {
            let (code, out) = check_with(text, &[("CODE", good)]);
            assert_eq!(code, Some(0), "{field} = {good:?}: {out}");
        }
        let (code, out) = check_with(text, &[("CODE", "OK")]);
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains("gate.toml:1:")
                && out.contains(&format!(
                    "{field}: \"${{CODE}}\" expands to \"OK\", which is not a number"
                )),
            "{out}"
        );
        let (code, out) = check_with(text, &[("CODE", "< lots")]);
        assert_eq!(code, Some(2), "{field} < lots: {out}");
    }
}

#[test]
fn names_are_expanded_and_shown_so_in_the_console_and_the_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("named.toml");
    std::fs::write(
        &file,
        "name = \"gate for ${RELEASE}\"\n\n[[steps]]\nname = \"nap of ${NAP:-10ms} on ${RELEASE}\"\nsleep = \"${NAP:-10ms}\"\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let html = dir.path().join("report.html");
    let child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .arg("run")
        .arg(&file)
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .env("RELEASE", "0.9.9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, out) = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{out}");
    for (what, text) in [
        ("the console", out),
        ("the JUnit report", std::fs::read_to_string(&junit).unwrap()),
        ("the HTML report", std::fs::read_to_string(&html).unwrap()),
    ] {
        assert!(
            text.contains("gate for 0.9.9") && text.contains("nap of 10ms on 0.9.9"),
            "{what}: {text}"
        );
        assert!(!text.contains("${RELEASE}"), "{what}: {text}");
    }
    let (code, out) = check_with("[[steps]]\nname = \"on ${RELEASE}\"\nsleep = \"0s\"\n", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("gate.toml:1:") && out.contains("name: ${RELEASE} is not set"),
        "{out}"
    );
}
