//! The scenario format, read from text: kinds, operations, variables and the
//! checks before running, with the messages a mistake gets.

use std::path::Path;

use super::file::NamedStep;
use super::*;
use crate::runner::vars;

fn parse(text: &str) -> Result<Scenario, String> {
    Scenario::parse(text, Path::new("s.toml")).map_err(|e| e.to_string())
}

#[test]
fn steps_know_their_line_and_kind() {
    let s = parse(
        "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n[[steps]]\nsleep = \"1s\"\n\n[[steps]]\nname = \"cut\"\nfault = { proxy = \"pg\", clear = true }\n",
    )
    .unwrap();
    assert_eq!(s.steps[0].line, 4);
    assert_eq!(s.steps[0].name, "steps[1] sleep");
    assert_eq!(s.steps[1].name, "cut");
    assert_eq!(s.steps[1].line, 7);
}

#[test]
fn mistakes_name_the_line_and_the_field() {
    let err = parse("[[steps]]\nslep = \"1s\"\n").unwrap_err();
    assert!(err.starts_with("s.toml:"), "{err}");
    assert!(err.contains("slep"), "{err}");
    let err = parse("[[steps]]\nfault = { proxy = \"nope\", clear = true }\n").unwrap_err();
    assert!(
        err.contains("s.toml:1") && err.contains("fault.proxy"),
        "{err}"
    );
    let err = parse("[[steps]]\nsleep = \"later\"\n").unwrap_err();
    assert!(err.contains("s.toml:2") && err.contains("later"), "{err}");
    let err = parse("[[steps]]\nname = \"x\"\n").unwrap_err();
    assert!(err.contains("does nothing"), "{err}");
    let err = parse("[[steps]]\nhttp = { url = \"${NOT_SET_ANYWHERE_42}\" }\n").unwrap_err();
    assert!(err.contains("NOT_SET_ANYWHERE_42"), "{err}");
}

const PROXY: &str = "[proxies.pg]\napi = \"http://127.0.0.1:1\"\n\n";

#[test]
fn the_kinds_are_the_enums_own() {
    assert_eq!(
        super::super::one_of::variants::<Action>(),
        [
            "fault",
            "http",
            "wait_until",
            "sleep",
            "exec",
            "tcp",
            "sql",
            "capture",
            "holds"
        ]
    );
    assert_eq!(
        super::super::one_of::variants::<FaultOperation>(),
        ["add", "remove", "replace", "clear", "enabled", "bounce"]
    );
}

const KINDS: &str = "one of: fault, http, wait_until, sleep, exec, tcp, sql, capture, holds, use";
/// In a step inside a step (`wait_until.check`, `capture.from`), which cannot `use`.
const NESTED_KINDS: &str = "one of: fault, http, wait_until, sleep, exec, tcp, sql, capture, holds";
const OPERATIONS: &str = "one of: add, remove, replace, clear, enabled, bounce";

#[test]
fn a_step_without_a_kind_is_refused_at_its_line() {
    let err = parse(&format!(
        "{PROXY}[[steps]]\nsleep = \"1s\"\n\n[[steps]]\nname = \"idle\"\n"
    ))
    .unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:7: this step does nothing: give it one kind, {KINDS}")
    );
    let err = parse("[[steps]]\nwait_until = { within = \"1s\", check = {} }\n").unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:2: this step does nothing: give it one kind, {NESTED_KINDS}")
    );
}

#[test]
fn a_step_with_two_kinds_is_refused_naming_them() {
    let err = parse(&format!(
        "{PROXY}[[steps]]\nsleep = \"1s\"\nexec = {{ command = \"true\" }}\n"
    ))
    .unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:4: this step has 2 kinds, exec and sleep: give it one, {KINDS}")
    );
    let err = parse(
        "[[steps]]\nname = \"busy\"\nsleep = \"1s\"\ntcp = { address = \"a:1\", connects = true }\nfault = { proxy = \"pg\", clear = true }\n",
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:1: this step has 3 kinds, fault, sleep and tcp: give it one, {KINDS}")
    );
    let err = parse(
        "[[steps]]\ncapture = { var = \"v\", value = \"stdout\", from = { exec = { command = \"true\" }, sql = { connect = \"x\", query = \"y\" } } }\n",
    )
    .unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:2: this step has 2 kinds, exec and sql: give it one, {NESTED_KINDS}")
    );
}

#[test]
fn an_unknown_kind_is_refused_naming_the_kinds() {
    let err = parse("[[steps]]\nname = \"x\"\nslep = \"1s\"\n").unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:3: unknown field `slep`: a step has `name` and one kind, {KINDS}")
    );
}

#[test]
fn a_fault_step_does_one_operation() {
    let err = parse(&format!(
        "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", add = {{ type = \"latency\" }}, clear = true }}\n"
    ))
    .unwrap_err();
    assert_eq!(
        err,
        format!(
            "s.toml:5: this fault step has 2 operations, add and clear: give it one, {OPERATIONS}"
        )
    );
    let err = parse(&format!("{PROXY}[[steps]]\nfault = {{ proxy = \"pg\" }}\n")).unwrap_err();
    assert_eq!(
        err,
        format!("s.toml:5: this fault step does nothing: give it one operation, {OPERATIONS}")
    );
    let err = parse(&format!(
        "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", clear = false }}\n"
    ))
    .unwrap_err();
    assert!(
        err.starts_with("s.toml:5: clear = false does nothing"),
        "{err}"
    );
    let err = parse("[[steps]]\nfault = { enabled = true }\n").unwrap_err();
    assert!(
        err.starts_with("s.toml:2:") && err.contains("`proxy`"),
        "{err}"
    );
}

#[test]
fn fault_operations_read_into_their_variants() {
    let s = parse(&format!(
        "{PROXY}[[steps]]\nfault = {{ proxy = \"pg\", bounce = \"1.5s\" }}\n[[steps]]\nfault = {{ enabled = false, proxy = \"pg\" }}\n[[steps]]\nfault = {{ proxy = \"pg\", replace = [{{ type = \"latency\" }}] }}\n"
    ))
    .unwrap();
    let operations: Vec<String> = s
        .steps
        .iter()
        .map(|step| match &step.action {
            Action::Fault(f) => format!("{} {:?}", f.proxy, f.operation),
            other => panic!("not a fault step: {other:?}"),
        })
        .collect();
    assert_eq!(
        operations,
        [
            "pg Bounce(1.5s)",
            "pg Enabled(false)",
            "pg Replace([Object {\"type\": String(\"latency\")}])"
        ]
    );
}

/// One step's table, read as a file's step is.
fn step(text: &str) -> Action {
    match toml::from_str::<NamedStep>(text).unwrap().kind {
        super::templates::Written::Step(action) => *action,
        super::templates::Written::Use(_) => panic!("a use, not a step: {text}"),
    }
}

fn names(action: &Action) -> Vec<String> {
    vars::references(action)
        .into_iter()
        .map(|r| match r.default {
            Some(default) => format!("{}:-{default}", r.name),
            None => r.name,
        })
        .collect()
}

#[test]
fn variables_are_found_in_every_expanded_string_of_nested_steps() {
    let wait = step(
        r#"wait_until = { within = "1s", check = { http = { url = "${URL}", method = "POST", headers = { "x-a" = "${HEADER}" }, json = { k = ["${JSON}"] }, expect = { status = "< ${STATUS}", headers = { "x-b" = "${EXPECT_HEADER}" }, json = { "/a" = "${EXPECT_JSON}" }, body_contains = "${CONTAINS:-x}" } } } }"#,
    );
    assert_eq!(
        names(&wait),
        [
            "URL",
            "HEADER",
            "JSON",
            "STATUS",
            "EXPECT_HEADER",
            "EXPECT_JSON",
            "CONTAINS:-x"
        ]
    );
    let capture = step(
        r#"capture = { var = "v", value = "stdout", from = { exec = { command = "echo ${CMD}", expect = { code = "${CODE}", stdout = "~ ${OUT}", stderr = "${ERR}" } } } }"#,
    );
    assert_eq!(names(&capture), ["CMD", "CODE", "OUT", "ERR"]);
    let sql = step(
        r#"capture = { var = "v", value = "value", from = { sql = { connect = "${PG}", query = "SELECT ${N}", expect = { value = "${VALUE}", rows = "${ROWS}", sqlstate = "57P03" } } } }"#,
    );
    assert_eq!(names(&sql), ["PG", "N", "VALUE", "ROWS"]);
    let body = step(r#"http = { url = "u", body = "${BODY}" }"#);
    assert_eq!(names(&body), ["BODY"]);
    let tcp = step(r#"tcp = { address = "${ADDRESS}", connects = true }"#);
    assert_eq!(names(&tcp), ["ADDRESS"]);
    let add = step(
        r#"fault = { proxy = "pg", add = { type = "latency", attributes = { note = "${ADD}" } } }"#,
    );
    assert_eq!(names(&add), ["ADD"]);
    let replace = step(r#"fault = { proxy = "pg", replace = [{ name = "${REPLACE}" }] }"#);
    assert_eq!(names(&replace), ["REPLACE"]);
    let remove = step(r#"fault = { proxy = "pg", remove = "${REMOVE}" }"#);
    assert_eq!(names(&remove), ["REMOVE"]);
}

#[test]
fn a_variable_with_a_default_everywhere_need_not_be_set() {
    parse("[[steps]]\nhttp = { url = \"${UNSET_FOR_SURE_9:-http://a}/${UNSET_FOR_SURE_9:-b}\" }\n")
        .unwrap();
    let err = parse(
        "[[steps]]\nwait_until = { within = \"1s\", check = { http = { url = \"${UNSET_FOR_SURE_9:-http://a}\", body = \"${UNSET_FOR_SURE_9}\" } } }\n",
    )
    .unwrap_err();
    assert!(
        err.starts_with("s.toml:1: steps[1]: ${UNSET_FOR_SURE_9} is neither set"),
        "{err}"
    );
}
