//! `faultgate run`'s checks over time and negative expectations (`holds`,
//! `no_answer_within`, a command, query or connection that must fail),
//! templates and includes, and the known-failure mark, against a real
//! git smart-HTTP server and a real Postgres behind a real faultgate.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::run_stack::{RunStack, results, text};

const PROXIES: &str = r#"
[proxies.git]
api = "${FAULTGATE_API}"

[proxies.pg]
api = "${FAULTGATE_API}"
"#;

const BETA: &str = "${GIT}/git/beta.git/info/refs?service=git-upload-pack";

#[tokio::test(flavor = "multi_thread")]
async fn holds_passes_while_its_check_keeps_passing_and_fails_at_the_first_miss_saying_when_and_what()
 {
    let stack = RunStack::start().await;
    let file = stack.write(
        "holds.toml",
        &format!(
            r#"{PROXIES}
[[steps]]
name = "beta keeps answering"
holds = {{ for = "6s", every = "300ms", check = {{ http = {{ url = "{BETA}", expect = {{ status = 200, within = "1s" }} }} }} }}
"#
        ),
    );
    let html = stack.path("report.html");
    let junit = stack.path("report.xml");

    // Untouched, it holds for the whole span: every attempt passes.
    let out = stack.run(&[file.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let step = &results(&out)[0]["steps"][0];
    assert!(
        step["seconds"].as_f64().unwrap() >= 6.0,
        "it held for less than `for`: {step}"
    );
    assert!(
        step["note"].as_str().unwrap().starts_with("held for 6."),
        "{step}"
    );

    // A fault switched on 2 s in: the first attempt after it misses.
    let fg_api = stack.fg.api.clone();
    let breaker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let answer = reqwest::Client::new()
            .post(format!("{fg_api}/proxies/git/toxics"))
            .json(&json!({ "name": "down", "type": "http_abort", "stream": "upstream", "attributes": { "status": 503, "path_prefix": "/git/beta.git/" } }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    });
    let out = stack
        .run(&[
            file.to_str().unwrap(),
            "--json",
            "--html",
            &html,
            "--junit",
            &junit,
        ])
        .await;
    breaker.await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let step = &results(&out)[0]["steps"][0];
    let message = step["message"].as_str().unwrap();
    assert!(message.starts_with("stopped holding at +"), "{message}");
    assert!(
        message.contains("expected status 200, got 503"),
        "{message}"
    );
    let offset: f64 = message["stopped holding at +".len()..]
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2.0..6.0).contains(&offset), "{message}");
    let attempt: u32 = message
        .split("(attempt ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt number: {message}"));
    assert!(
        attempt >= 4,
        "the miss came at attempt {attempt}: {message}"
    );
    // The run stopped at the miss, not at `for`.
    assert!(step["seconds"].as_f64().unwrap() < 6.0, "{step}");

    let cases = support::junit::cases(std::path::Path::new(&junit));
    assert!(
        cases[0]
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("stopped holding at +")),
        "{cases:?}"
    );
    // The HTML report draws each attempt, the passing ones and the miss.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(&format!("attempts ({attempt}, 1 did not hold)")),
        "{page}"
    );
    // Teardown took the fault the test added away with the rest.
    assert_eq!(stack.fg.toxics("git").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_must_not_be_answered_passes_on_a_hang_and_fails_on_an_answer() {
    let stack = RunStack::start().await;
    let file = stack.write(
        "hang.toml",
        &format!(
            r#"{PROXIES}
[[steps]]
fault = {{ proxy = "git", add = {{ name = "hole", type = "http_blackhole", stream = "upstream", attributes = {{ path_prefix = "/git/alpha.git/" }} }} }}

[[steps]]
name = "alpha hangs"
http = {{ url = "${{GIT}}/git/alpha.git/info/refs?service=git-upload-pack", expect = {{ no_answer_within = "2s" }} }}

[[steps]]
name = "beta must hang too"
http = {{ url = "{BETA}", expect = {{ no_answer_within = "2s" }} }}
"#
        ),
    );
    let out = stack.run(&[file.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let steps = results(&out)[0]["steps"].clone();
    assert_eq!(steps[1]["outcome"], "passed", "{steps}");
    assert_eq!(steps[1]["note"], "no answer within 2s", "{steps}");
    // It waits `no_answer_within` and then stops.
    let waited = steps[1]["seconds"].as_f64().unwrap();
    assert!((2.0..4.0).contains(&waited), "waited {waited}s");
    assert_eq!(steps[2]["outcome"], "failed", "{steps}");
    let message = steps[2]["message"].as_str().unwrap();
    assert!(
        message.starts_with("expected no answer within 2s, got 200 after"),
        "{message}"
    );

    // Only alone: with another expectation it is refused before running.
    let bad = stack.write(
        "bad.toml",
        &format!(
            "{PROXIES}\n[[steps]]\nhttp = {{ url = \"{BETA}\", expect = {{ status = 200, no_answer_within = \"1s\" }} }}\n"
        ),
    );
    let out = stack.run(&["--check", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("bad.toml:8: steps[1]: http.expect.no_answer_within"),
        "{}",
        text(&out)
    );
}

/// Regression: `expect.within` against a hang waited for the step's
/// 30 s `timeout`, then said "no answer within 30s".
#[tokio::test(flavor = "multi_thread")]
async fn expect_within_stops_the_wait_once_the_answer_can_no_longer_pass() {
    let stack = RunStack::start().await;
    let file = stack.write(
        "within.toml",
        r#"
[proxies.git]
api = "${FAULTGATE_API}"

[[steps]]
fault = { proxy = "git", add = { name = "hole", type = "http_blackhole", stream = "upstream" } }

[[steps]]
name = "beta answers within 2s"
http = { url = "${GIT}/git/beta.git/info/refs?service=git-upload-pack", expect = { within = "2s" } }
"#,
    );
    let out = stack.run(&[file.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let step = &results(&out)[0]["steps"][1];
    let message = step["message"].as_str().unwrap();
    assert!(message.ends_with("no answer within 2s"), "{message}");
    let waited = step["seconds"].as_f64().unwrap();
    assert!(
        waited < 10.0,
        "waited {waited}s for an answer that could not pass"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_queries_and_connections_that_must_fail() {
    let stack = RunStack::start().await;
    let passing = stack.write(
        "fail-as-expected.toml",
        &format!(
            r#"{PROXIES}
[[steps]]
name = "a command fails with its code and message"
exec = {{ command = "echo boom >&2; exit 3", expect = {{ code = 3, stderr = "~ ^boom$" }} }}

[[steps]]
name = "any failure"
exec = {{ command = "false", expect = {{ code = "!= 0" }} }}

[[steps]]
name = "a query fails with its SQLSTATE and message"
sql = {{ connect = "${{PG}}", query = "SELECT * FROM no_such_table", expect = {{ sqlstate = "42P01", error = "~ does not exist" }} }}

[[steps]]
name = "a message alone"
sql = {{ connect = "${{PG}}", query = "SELECT 1/0", expect = {{ error = "division by zero" }} }}

[[steps]]
fault = {{ proxy = "pg", enabled = false }}

[[steps]]
name = "a disabled proxy refuses connections"
tcp = {{ address = "${{PG_ADDRESS}}", connects = false, failure = "refused" }}
"#
        ),
    );
    let out = stack.run(&[passing.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let steps = results(&out)[0]["steps"].clone();
    assert!(
        steps[2]["note"]
            .as_str()
            .unwrap()
            .contains("42P01: relation \"no_such_table\" does not exist"),
        "{steps}"
    );

    // Each of them, when the failure is not the expected one.
    let cases = [
        (
            r#"exec = { command = "true", expect = { code = "!= 0" } }"#,
            "expected exit code != 0, got 0",
        ),
        (
            r#"exec = { command = "echo bang >&2; exit 3", expect = { code = 3, stderr = "~ ^boom$" } }"#,
            "expected stderr ~ ^boom$",
        ),
        (
            r#"sql = { connect = "${PG}", query = "SELECT 1", expect = { error = "~ does not exist" } }"#,
            "to fail with an error ~ does not exist, it succeeded",
        ),
        (
            r#"sql = { connect = "${PG}", query = "SELECT 1/0", expect = { sqlstate = "22012", error = "~ does not exist" } }"#,
            "expected an error ~ does not exist, got ERROR 22012: division by zero",
        ),
        (
            r#"tcp = { address = "${PG_ADDRESS}", connects = false, failure = "refused" }"#,
            "expected a refused connection to 127.0.0.1:",
        ),
        (
            r#"tcp = { address = "${PG_ADDRESS}", connects = false, failure = "timeout", within = "1s" }"#,
            "expected no answer to the connection to 127.0.0.1:",
        ),
    ];
    for (i, (step, wanted)) in cases.iter().enumerate() {
        let file = stack.write(
            &format!("case{i}.toml"),
            &format!("{PROXIES}\n[[steps]]\n{step}\n"),
        );
        let out = stack.run(&[file.to_str().unwrap(), "--json"]).await;
        assert_eq!(out.status.code(), Some(1), "{step}: {}", text(&out));
        let message = results(&out)[0]["steps"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(wanted), "{step}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_and_includes_are_expanded_with_their_parameters_and_refused_saying_where() {
    let stack = RunStack::start().await;
    stack.write(
        "shared/git.toml",
        r#"
[proxies.git]
api = "${FAULTGATE_API}"

[templates.refs]
params = ["repo", "status"]
http = { url = "${GIT}/git/${repo}.git/info/refs?service=git-upload-pack", expect = { status = "${status}" } }

[templates.block]
params = ["repo"]
steps = [
  { fault = { proxy = "git", add = { name = "block_${repo}", type = "http_abort", stream = "upstream", attributes = { status = 503, path_prefix = "/git/${repo}.git/" } } } },
  { name = "${repo} is refused", use = { template = "refs", with = { repo = "${repo}", status = 503 } } },
]
"#,
    );
    let file = stack.write(
        "reuse.toml",
        r#"
name = "reuse"
include = ["shared/git.toml"]

[[steps]]
name = "beta answers"
use = { template = "refs", with = { repo = "beta", status = 200 } }

[[steps]]
name = "alpha blocked"
use = { template = "block", with = { repo = "alpha" } }

[[steps]]
use = { template = "refs", with = { repo = "beta", status = 200 } }
"#,
    );
    let out = stack.run(&[file.to_str().unwrap(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let steps = results(&out)[0]["steps"].clone();
    let names: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "beta answers",
            "alpha blocked (1/2)",
            "alpha is refused",
            "steps[3] http"
        ],
        "{steps}"
    );
    // Every expanded step is placed at its `use`.
    assert_eq!(steps[1]["line"], steps[2]["line"], "{steps}");
    assert_eq!(stack.fg.toxics("git").await, json!([]));

    // Mistakes, each refused by --check naming the template, the file and line.
    let shared = stack.path("shared/git.toml");
    let cases = [
        (
            r#"use = { template = "refs", with = { repo = "beta" } }"#,
            format!(
                "bad0.toml:4: steps[1]: template \"refs\" ({shared}:5): parameter \"status\" is not given"
            ),
        ),
        (
            r#"use = { template = "refs", with = { repo = "beta", status = 200, extra = 1 } }"#,
            format!(
                "template \"refs\" ({shared}:5): has no parameter \"extra\" (its parameters: repo, status)"
            ),
        ),
        (
            r#"use = { template = "ref", with = {} }"#,
            "there is no template \"ref\" (defined: block, loop, refs)".to_owned(),
        ),
        (
            r#"use = { template = "loop" }"#,
            "template \"loop\" uses itself (loop -> loop)".to_owned(),
        ),
        (
            r#"use = { template = "refs", with = { repo = "beta", status = { a = 1 } } }"#,
            format!("bad4.toml:4: steps[1]: template \"refs\" ({shared}:5): step 1:"),
        ),
    ];
    for (i, (step, wanted)) in cases.iter().enumerate() {
        let file = stack.write(
            &format!("bad{i}.toml"),
            &format!(
                "include = [\"shared/git.toml\"]\n[templates.loop]\nuse = {{ template = \"loop\" }}\n[[steps]]\n{step}\n"
            ),
        );
        let out = stack.run(&["--check", file.to_str().unwrap()]).await;
        assert_eq!(out.status.code(), Some(2), "{step}: {}", text(&out));
        assert!(
            text(&out).contains(wanted.as_str()),
            "{step}: {}",
            text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_failure_passes_the_run_when_it_fails_and_fails_it_when_it_passes() {
    let stack = RunStack::start().await;
    let scenario = |status: u16| {
        format!(
            r#"name = "beta is {status}"
known_failure = "beta answers 200 (issue 1)"

[proxies.git]
api = "${{FAULTGATE_API}}"

[[steps]]
http = {{ url = "{BETA}", expect = {{ status = {status} }} }}
"#
        )
    };
    let fails = stack.write("fails.toml", &scenario(404));
    let passes = stack.write("passes.toml", &scenario(200));
    let junit = stack.path("known.xml");
    let html = stack.path("known.html");

    let out = stack
        .run(&[fails.to_str().unwrap(), "--junit", &junit, "--html", &html])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("KNOWN FAILURE beta is 404"), "{shown}");
    assert!(
        shown.contains("0 of 1 scenarios passed, 1 failed as known"),
        "{shown}"
    );
    let cases = support::junit::cases(std::path::Path::new(&junit));
    assert!(cases[0].failure.is_none(), "{cases:?}");
    assert_eq!(
        cases[0].skipped.as_deref(),
        Some("KNOWN FAILURE: beta answers 200 (issue 1)"),
        "{cases:?}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data-verdict=\"known-failure\""), "{page}");

    let out = stack
        .run(&[passes.to_str().unwrap(), "--junit", &junit, "--html", &html])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("passed but is marked as a known failure (fixed? remove the mark)"),
        "{shown}"
    );
    assert!(shown.contains("UNEXPECTEDLY PASSED beta is 200"), "{shown}");
    let cases = support::junit::cases(std::path::Path::new(&junit));
    assert!(
        cases[0]
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("fixed? remove the mark")),
        "{cases:?}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("data-verdict=\"unexpectedly-passed\""),
        "{page}"
    );

    // An unreachable stack is not excused by the mark.
    let mut env = stack.env.clone();
    env.retain(|(k, _)| k != "FAULTGATE_API");
    env.push(("FAULTGATE_API".into(), "http://127.0.0.1:9".into()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultgate"));
    command
        .args(["run", fails.to_str().unwrap()])
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
