//! `faultgate run` against real servers behind a real faultgate: a Postgres
//! and a git smart-HTTP server, each behind a proxy. Passing and failing
//! scenarios, bad files, teardown, interrupts, JSON and JUnit reports.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use support::faultgate::Faultgate;
use support::git_http::GitHttpServer;
use support::run_stack::{RunStack, faultgate_run, run, text};
use support::tls::TestCa;

const GATE: &str = r#"
name = "postgres bounce is recovered from; git keeps serving"
seed = 7

[proxies.pg]
api = "${FAULTGATE_API}"

[proxies.git]
api = "${FAULTGATE_API}"

[[setup]]
sql = { connect = "${PG}", query = "CREATE TABLE IF NOT EXISTS marks (n int)" }

[[steps]]
name = "baseline"
capture = { var = "before", value = "value", from = { sql = { connect = "${PG}", query = "SELECT count(*) FROM marks" } } }

[[steps]]
name = "sessions are terminated"
fault = { proxy = "pg", replace = [{ type = "pg_terminate" }] }

[[steps]]
name = "the database is starting up"
fault = { proxy = "pg", replace = [{ type = "pg_starting_up", stream = "upstream" }] }

[[steps]]
name = "new sessions are refused with 57P03"
sql = { connect = "${PG}", query = "SELECT 1", expect = { sqlstate = "57P03" } }

[[steps]]
name = "git is not affected"
http = { url = "${GIT}/git/beta.git/info/refs?service=git-upload-pack", expect = { status = 200, body_contains = "refs/heads/main", within = "5s" } }

[[steps]]
name = "the database comes back"
fault = { proxy = "pg", clear = true }

[[steps]]
name = "a write after the bounce lands"
wait_until = { within = "20s", every = "200ms", check = { sql = { connect = "${PG}", query = "INSERT INTO marks VALUES (1)" } } }

[[steps]]
name = "and is seen"
sql = { connect = "${PG}", query = "SELECT count(*) FROM marks", expect = { value = "== ${before} + 1" } }

[[steps]]
name = "the port answers"
tcp = { address = "${PG_ADDRESS}", connects = true }

[[steps]]
name = "a command agrees"
exec = { command = "echo 41", timeout = "5s", expect = { stdout = "< ${before} + 42" } }

[[steps]]
name = "the control API knows the proxies"
http = { url = "${FAULTGATE_API}/proxies/pg", expect = { json = { "/mode" = "postgres", "$.toxics" = "[]" } } }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_scenario_passes_against_real_servers_and_reports_in_junit() {
    let stack = RunStack::start().await;
    let file = stack.write("gate.toml", GATE);
    let junit = stack.dir.path().join("report.xml");
    let out = run(
        &stack.env,
        &[file.to_str().unwrap(), "--junit", junit.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("PASSED postgres bounce"), "{shown}");
    assert!(shown.contains("held after"), "{shown}");

    let cases = support::junit::cases(&junit);
    assert_eq!(cases.len(), 1);
    assert_eq!(
        cases[0].name,
        "postgres bounce is recovered from; git keeps serving"
    );
    assert!(cases[0].failure.is_none(), "{cases:?}");
    // The proxies are as they were found.
    assert_eq!(stack.fg.toxics("pg").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_expectation_fails_with_the_step_the_expectation_and_the_value() {
    let stack = RunStack::start().await;
    let failing = stack.write(
        "failing.toml",
        r#"
name = "expects too much"

[proxies.git]
api = "${FAULTGATE_API}"

[[steps]]
name = "slow the pack"
fault = { proxy = "git", add = { name = "slow", type = "http_delay", attributes = { delay = 10 } } }

[[steps]]
name = "beta answers 201"
http = { url = "${GIT}/git/beta.git/info/refs?service=git-upload-pack", expect = { status = 201 } }

[[steps]]
name = "never reached"
sleep = "10s"
"#,
    );
    let passing = stack.write("passing.toml", "[[steps]]\nsleep = \"10ms\"\n");
    let junit = stack.dir.path().join("report.xml");
    let out = run(
        &stack.env,
        &[
            passing.to_str().unwrap(),
            failing.to_str().unwrap(),
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stderr);
    assert!(
        shown.contains(&format!(
            "{}:11: steps step \"beta answers 201\": expected status 201, got 200",
            failing.display()
        )),
        "{shown}"
    );
    assert!(shown.contains("the response body:"), "{shown}");

    // --json: every step's outcome.
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(results[0]["passed"], true);
    assert_eq!(results[1]["passed"], false);
    let steps = results[1]["steps"].as_array().unwrap();
    assert_eq!(steps[1]["outcome"], "failed");
    assert_eq!(steps[2]["outcome"], "skipped");

    // JUnit: one testcase per scenario, the failure text in the failing one.
    let cases = support::junit::cases(&junit);
    assert_eq!(cases.len(), 2);
    let failure = cases[1]
        .failure
        .as_deref()
        .expect("the failing scenario has a failure");
    assert!(
        failure.contains("expected status 201, got 200"),
        "{failure}"
    );

    // Teardown took the fault away.
    assert_eq!(stack.fg.toxics("git").await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_until_measures_recovery_from_a_fault_removed_mid_wait() {
    let stack = RunStack::start().await;
    let file = stack.write(
        "recovery.toml",
        r#"
[proxies.pg]
api = "${FAULTGATE_API}"

[[steps]]
fault = { proxy = "pg", add = { name = "hole", type = "blackhole" } }

[[steps]]
name = "recovery"
wait_until = { within = "20s", every = "200ms", check = { sql = { connect = "${PG}", query = "SELECT 1", timeout = "500ms" } } }
"#,
    );
    let mut command = faultgate_run(&stack.env, &[file.to_str().unwrap(), "--json"]);
    let running = tokio::task::spawn_blocking(move || command.output().unwrap());
    // The blackhole goes 1.5 s into the wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.fg.remove_toxic("pg", "hole").await;
    let out = running.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    let note = results[0]["steps"][1]["note"].as_str().unwrap().to_owned();
    let seconds: f64 = note
        .strip_prefix("held after ")
        .and_then(|n| n.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!(
        (1.0..6.0).contains(&seconds),
        "recovery reported as {seconds}s: {note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_run_still_tears_down() {
    let stack = RunStack::start().await;
    let file = stack.write(
        "long.toml",
        r#"
[proxies.git]
api = "${FAULTGATE_API}"

[[steps]]
fault = { proxy = "git", add = { name = "hole", type = "http_blackhole" } }

[[steps]]
sleep = "60s"
"#,
    );
    let mut child = faultgate_run(&stack.env, &[file.to_str().unwrap()])
        .spawn()
        .unwrap();
    support::eventually("the fault is attached", Duration::from_secs(10), || async {
        stack.fg.toxics("git").await != json!([])
    })
    .await;
    // Safety: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = tokio::task::spawn_blocking(move || {
        let _ = child.stdout.take();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("interrupted"), "{}", text(&out));
    assert_eq!(stack.fg.toxics("git").await, json!([]));
}

/// `http` steps speak HTTPS, checking the server as the scenario's `tls`
/// table says: here a git server (HTTPS itself) behind a faultgate that
/// terminates TLS with a certificate of a throwaway CA, and a fault
/// switched in between. Without a way to trust that CA the step fails
/// saying why; a CA file that is not there stops the run before any step.
#[tokio::test(flavor = "multi_thread")]
async fn http_steps_speak_https_checked_as_the_scenarios_tls_says() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    let git = GitHttpServer::start_tls(&["alpha"], &ca.issue("git"));
    let proxy_cert = ca.issue("proxy");
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(json!({
            "name": "git", "mode": "http", "upstream": format!("https://{}", git.address()),
            "upstream_tls": { "ca": ca.ca },
            "tls": { "cert": proxy_cert.cert, "key": proxy_cert.key },
        }))
        .await;
    let env = vec![
        ("FAULTGATE_API".to_owned(), fg.api.clone()),
        ("GIT".to_owned(), format!("https://{listen}")),
        ("CERTS".to_owned(), certs.path().display().to_string()),
    ];
    let scenario = |tls: &str| {
        let path = certs.path().join("https.toml");
        std::fs::write(
            &path,
            format!(
                r#"
name = "https"
{tls}

[proxies.git]
api = "${{FAULTGATE_API}}"

[[steps]]
name = "alpha answers"
http = {{ url = "${{GIT}}/git/alpha.git/info/refs?service=git-upload-pack", expect = {{ status = 200, body_contains = "refs/heads/main" }} }}

[[steps]]
fault = {{ proxy = "git", add = {{ type = "http_abort", attributes = {{ status = 503 }} }} }}

[[steps]]
name = "alpha is down"
http = {{ url = "${{GIT}}/git/alpha.git/info/refs?service=git-upload-pack", expect = {{ status = 503 }} }}
"#
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    };

    for trusting in [
        r#"tls = { ca = "${CERTS}/ca.pem" }"#,
        r#"tls = { ca = "${CERTS}/ca.pem", server_name = "localhost" }"#,
        "tls = { insecure = true }",
    ] {
        let out = run(&env, &[&scenario(trusting)]).await;
        assert_eq!(out.status.code(), Some(0), "{trusting}: {}", text(&out));
        assert_eq!(fg.toxics("git").await, json!([]), "put back after the run");
    }

    for (untrusting, says) in [
        // The system's CA certificates do not know the throwaway CA.
        ("", "invalid peer certificate: UnknownIssuer"),
        (
            r#"tls = { ca = "${CERTS}/ca.pem", server_name = "elsewhere.test" }"#,
            "certificate not valid for name \"elsewhere.test\"",
        ),
    ] {
        let out = run(&env, &[&scenario(untrusting)]).await;
        assert_eq!(out.status.code(), Some(1), "{untrusting}: {}", text(&out));
        let shown = text(&out);
        assert!(
            shown.contains("\"alpha answers\"") && shown.contains(says),
            "{untrusting}: {shown}"
        );
    }

    let file = scenario(r#"tls = { ca = "${CERTS}/missing.pem" }"#);
    let out = run(&env, &[&file]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(&format!(
            "{file}: tls.ca: cannot read {}",
            certs.path().join("missing.pem").display()
        )),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_and_unreachable_stacks_exit_2_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    for (text, mentions) in [
        (
            "[[steps]]\nsleep = \"1s\"\nslep = 2\n",
            ":3: unknown field `slep`",
        ),
        ("[[steps]]\nsleep = \"soon\"\n", ":2:"),
        (
            "[[steps]]\nfault = { proxy = \"nope\", clear = true }\n",
            ":1: steps[1]: fault.proxy: \"nope\" is not declared",
        ),
        (
            "[[steps]]\nhttp = { url = \"${NOT_SET_IN_THIS_TEST}/x\" }\n",
            "NOT_SET_IN_THIS_TEST",
        ),
        ("name = [\n", ":"),
    ] {
        let file = write("bad.toml", text);
        let out = run(&[], &["--check", &file]).await;
        assert_eq!(out.status.code(), Some(2), "{text}: {}", text_of(&out));
        assert!(
            text_of(&out).contains(&format!("{file}{mentions}"))
                || text_of(&out).contains(mentions) && text_of(&out).contains(&file),
            "{text}: {}",
            text_of(&out)
        );
    }
    let port = support::free_port();
    let file = write(
        "unreachable.toml",
        &format!("[proxies.pg]\napi = \"http://127.0.0.1:{port}\"\n\n[[steps]]\nsleep = \"1ms\"\n"),
    );
    let out = run(&[], &[&file]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
    assert!(text_of(&out).contains("not reachable"), "{}", text_of(&out));
}

fn text_of(out: &Output) -> String {
    text(out)
}

#[tokio::test]
async fn the_compose_gate_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("compose/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["--check"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&[], &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn scenarios_can_be_written_in_rust() {
    use faultgate::runner::scenario::{FaultOperation, FaultStep, SqlExpect, SqlStep};
    use faultgate::runner::{Action, Runner, Scenario};
    let stack = RunStack::start().await;
    let pg = stack.env[1].1.clone();
    let sql = |expect: SqlExpect| {
        Action::Sql(SqlStep {
            connect: pg.clone(),
            query: "SELECT 1".into(),
            timeout: Some(Duration::from_secs(5)),
            expect,
        })
    };
    let scenario = Scenario::new("in rust")
        .proxy("pg", &stack.fg.api)
        .step(
            "starting up",
            Action::Fault(FaultStep {
                proxy: "pg".into(),
                operation: FaultOperation::Add(
                    json!({ "type": "pg_starting_up", "stream": "upstream" }),
                ),
            }),
        )
        .step(
            "refused",
            sql(SqlExpect {
                sqlstate: Some("57P03".into()),
                ..SqlExpect::default()
            }),
        );
    let report = Runner::new().run(&scenario).await.unwrap();
    assert!(report.passed(), "{:?}", report.failure());
    // Put back as found: the connection works again.
    let report = Runner::new()
        .run(
            &Scenario::new("after")
                .proxy("pg", &stack.fg.api)
                .step("works", sql(SqlExpect::default())),
        )
        .await
        .unwrap();
    assert!(report.passed(), "{:?}", report.failure());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_bounce_is_one_step() {
    use support::postgres::connect;
    use tokio_postgres::error::SqlState;
    let stack = RunStack::start().await;
    let port: u16 = stack.env[2].1.rsplit(':').next().unwrap().parse().unwrap();
    // A fault already there stays through the bounce and after it.
    stack
        .fg
        .add_toxic(
            "pg",
            json!({ "name": "slow", "type": "latency", "attributes": { "latency": 1 } }),
        )
        .await;
    let open = connect(port).await.unwrap();
    let file = stack.write(
        "bounce.toml",
        "[proxies.pg]\napi = \"${FAULTGATE_API}\"\n\n[[steps]]\nfault = { proxy = \"pg\", bounce = \"3s\" }\n",
    );
    let mut command = faultgate_run(&stack.env, &[file.to_str().unwrap()]);
    let running = tokio::task::spawn_blocking(move || command.output().unwrap());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let error = open.query_one("SELECT 1", &[]).await.unwrap_err();
    assert!(
        error
            .as_db_error()
            .is_none_or(|e| *e.code() == SqlState::ADMIN_SHUTDOWN),
        "{error:?}"
    );
    let Err(error) = connect(port).await else {
        panic!("a new session was let in while Postgres was starting up");
    };
    assert_eq!(
        error.as_db_error().map(|e| e.code()),
        Some(&SqlState::CANNOT_CONNECT_NOW)
    );
    let out = running.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let back = connect(port).await.unwrap();
    assert_eq!(
        back.query_one("SELECT 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    let chain = stack.fg.toxics("pg").await;
    assert_eq!(chain.as_array().unwrap().len(), 1, "{chain}");
    assert_eq!(chain[0]["name"], "slow");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_of_a_failing_run_has_its_timeline_and_says_why_a_scenario_did_not_run() {
    let stack = RunStack::start().await;
    let failing = stack.write(
        "blackholed.toml",
        r#"
name = "a blackholed database"

[proxies.pg]
api = "${FAULTGATE_API}"

[[steps]]
name = "the hole opens"
fault = { proxy = "pg", add = { name = "hole", type = "blackhole" } }

[[steps]]
name = "queries answer"
wait_until = { within = "1500ms", every = "200ms", check = { sql = { connect = "${PG}", query = "SELECT 1", timeout = "300ms" } } }
"#,
    );
    let port = support::free_port();
    let gone = stack.write(
        "gone.toml",
        &format!("name = \"gone\"\n[proxies.pg]\napi = \"http://127.0.0.1:{port}\"\n\n[[steps]]\nsleep = \"1ms\"\n"),
    );
    let html = stack.dir.path().join("report.html");
    let out = run(
        &stack.env,
        &[
            failing.to_str().unwrap(),
            gone.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch.
    assert!(
        !page.contains("<script") && !page.contains("<link"),
        "{page}"
    );
    assert!(
        page.contains(r#"data-proxy="pg" data-fault="hole""#),
        "{page}"
    );
    assert!(
        page.contains(r#"class="row step failed failing""#),
        "{page}"
    );
    assert!(page.contains("class=\"attempt failed\""), "{page}");
    assert!(page.contains("did not hold within 1.5s"), "{page}");
    assert!(page.contains(r#"data-verdict="not-run""#), "{page}");
    assert!(page.contains("the stack is not reachable"), "{page}");
    assert!(
        page.contains("SELECT 1"),
        "the step's query is not shown: {page}"
    );
}
