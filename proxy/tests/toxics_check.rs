//! A scenario's toxics checked before anything runs (`faultgate run
//! --check`, against the plugins' own descriptions), a fault the control API
//! refuses as bad input making the run a bad scenario (exit 2), and plugins
//! declaring the streams they act on, which the API holds toxics to.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::faultgate::{Faultgate, run_to_exit};

fn wat_delay() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/wat-delay/wat-delay.wat")
}

/// Writes a scenario whose proxy `p` is on `api`, with these steps.
fn scenario(dir: &Path, name: &str, api: &str, steps: &str) -> String {
    let path = dir.join(name);
    let text = format!(
        "name = \"{name}\"\n\n[proxies.p]\napi = \"{api}\"\n\n[proxies.pg]\napi = \"{api}\"\n\
         create = {{ listen = \"127.0.0.1:0\", upstream = \"127.0.0.1:9\", mode = \"postgres\" }}\n\n{steps}"
    );
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `faultgate run --check` of one scenario with these steps.
fn check(steps: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "check.toml", "http://127.0.0.1:1", steps);
    let mut args = vec!["run", "--check"];
    args.extend_from_slice(extra);
    args.push(&file);
    run_to_exit(&args)
}

fn assert_refused(steps: &str, mentions: &[&str]) {
    let (code, out) = check(steps, &[]);
    assert_eq!(code, Some(2), "--check let it pass:\n{out}");
    for mention in mentions {
        assert!(out.contains(mention), "no {mention:?} in:\n{out}");
    }
}

#[test]
fn check_refuses_an_unknown_toxic_type_listing_the_known_ones() {
    assert_refused(
        "[[steps]]\nname = \"slow pg\"\nfault = { proxy = \"p\", add = { type = \"latncy\" } }\n",
        &[
            "check.toml:10: steps[1] \"slow pg\": fault.add.type: \"latncy\" is not a known toxic type",
            "known: bandwidth, blackhole,",
            " latency, ",
        ],
    );
}

#[test]
fn check_refuses_an_unknown_attribute_listing_the_plugins_attributes() {
    assert_refused(
        "[[setup]]\nfault = { proxy = \"p\", clear = true }\n\n[[steps]]\n\
         fault = { proxy = \"p\", replace = [{ type = \"timeout\" }, { type = \"latency\", attributes = { latncy = 100 } }] }\n",
        &[
            "check.toml:13: steps[1]: fault.replace[2].attributes.latncy: not an attribute of this type; \"latency\" takes latency (integer), jitter (integer)",
        ],
    );
}

#[test]
fn check_refuses_a_wrong_attribute_type_but_not_a_value_from_a_variable() {
    assert_refused(
        "[[steps]]\nfault = { proxy = \"p\", add = { type = \"latency\", attributes = { latency = \"slow\", jitter = \"${JITTER:-5}\" } } }\n",
        &["steps[1]: fault.add.attributes.latency: expected an integer, got \"slow\""],
    );
    let (code, out) = check(
        "[[steps]]\nfault = { proxy = \"p\", add = { type = \"latency\", attributes = { latency = 1.0, jitter = \"${JITTER:-5}\" } } }\n",
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    // A variable's value is not known, but its name is: still checked.
    assert_refused(
        "[[steps]]\nfault = { proxy = \"p\", add = { type = \"latency\", attributes = { jiter = \"${JITTER:-5}\" } } }\n",
        &["fault.add.attributes.jiter: not an attribute"],
    );
}

#[test]
fn check_refuses_a_stream_or_mode_the_plugin_does_not_act_on() {
    assert_refused(
        "[[steps]]\nfault = { proxy = \"pg\", add = { type = \"pg_drop_notify\", stream = \"upstream\" } }\n",
        &["fault.add.stream: \"pg_drop_notify\" acts on the downstream stream only, not upstream"],
    );
    assert_refused(
        "[[steps]]\nfault = { proxy = \"pg\", add = { type = \"pg_error\" } }\n",
        &[
            "fault.add.stream: \"pg_error\" acts on the upstream stream only, not downstream (the default when no stream is given)",
        ],
    );
    assert_refused(
        "[[steps]]\nfault = { proxy = \"pg\", add = { type = \"http_abort\" } }\n",
        &[
            "fault.add.type: \"http_abort\" acts on proxies in http mode only, and proxy \"pg\" is created in postgres mode",
        ],
    );
    // Inside a wait_until's check too.
    assert_refused(
        "[[steps]]\nwait_until = { within = \"1s\", check = { fault = { proxy = \"pg\", add = { type = \"pg_delay_query\", stream = \"downstream\" } } } }\n",
        &["wait_until.check.fault.add.stream: \"pg_delay_query\" acts on the upstream stream only"],
    );
}

#[test]
fn check_refuses_a_proxy_no_proxies_entry_declares() {
    assert_refused(
        "[[steps]]\nfault = { proxy = \"gitea\", add = { type = \"latency\" } }\n",
        &["steps[1]: fault.proxy: \"gitea\" is not declared under [proxies] (declared: p, pg)"],
    );
}

#[test]
fn check_knows_a_users_plugin_given_with_plugin() {
    let steps = "[[steps]]\nfault = { proxy = \"p\", add = { type = \"wat-delay\", stream = \"upstream\" } }\n";
    let (code, out) = check(steps, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("\"wat-delay\" is not a known toxic type"),
        "{out}"
    );
    let wat = wat_delay();
    let (code, out) = check(steps, &["--plugin", wat.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("check.toml: ok"), "{out}");
    // What it does not declare it takes none of.
    let (code, out) = check(
        "[[steps]]\nfault = { proxy = \"p\", add = { type = \"wat-delay\", attributes = { delay = 5 } } }\n",
        &["--plugin", wat.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("\"wat-delay\" takes no attributes"), "{out}");
}

/// Runs one scenario against `fg`, whose proxy `p` exists.
fn run_against(fg: &Faultgate, steps: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "run.toml", &fg.api, steps);
    run_to_exit(&["run", &file])
}

#[tokio::test]
async fn a_fault_the_api_refuses_as_bad_input_is_a_bad_scenario_exit_2() {
    let fg = Faultgate::start(&[]).await;
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fg.proxy("p", upstream.local_addr().unwrap()).await;

    // A duplicate name: 409.
    let (code, out) = run_against(
        &fg,
        "[[steps]]\nfault = { proxy = \"p\", add = { name = \"slow\", type = \"latency\" } }\n\n\
         [[steps]]\nname = \"again\"\nfault = { proxy = \"p\", add = { name = \"slow\", type = \"latency\" } }\n",
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("steps step \"again\": the control API refused the fault as bad input: POST ")
            && out.contains("/proxies/p/toxics: 409 toxic already exists"),
        "{out}"
    );

    // A type the running faultgate does not have, though --check knew it.
    let steps = "[[steps]]\nfault = { proxy = \"p\", add = { type = \"wat-delay\" } }\n";
    let wat = wat_delay();
    let (code, out) = check(steps, &["--plugin", wat.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run_against(&fg, steps);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("bad input: POST ")
            && out.contains(": 400 invalid toxic type: \"wat-delay\" is not a loaded plugin"),
        "{out}"
    );

    // A check that fails is still a failed check: exit 1.
    let (code, out) = run_against(&fg, "[[steps]]\nexec = { command = \"exit 3\" }\n");
    assert_eq!(code, Some(1), "{out}");
    // The run put the proxy back as it found it each time.
    assert_eq!(fg.toxics("p").await, json!([]));
}

#[tokio::test]
async fn removing_a_toxic_that_does_not_exist_names_those_that_do() {
    let fg = Faultgate::start(&[]).await;
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fg.proxy("p", upstream.local_addr().unwrap()).await;
    fg.add_toxic("p", json!({"type": "latency", "stream": "upstream"}))
        .await;
    fg.add_toxic("p", json!({"name": "cut", "type": "timeout"}))
        .await;
    // Toxiproxy's status and body shape; the message grows.
    for (method, body) in [
        ("DELETE", None),
        ("PATCH", Some(json!({"toxicity": 0.5}))),
        ("GET", None),
    ] {
        let (status, answer) = fg
            .request(method, "/proxies/p/toxics/latency_downstream", body)
            .await;
        assert_eq!(
            (status, answer),
            (
                404,
                json!({"error": "toxic not found: proxy \"p\" has no toxic \"latency_downstream\"; its toxics: latency_upstream, cut", "status": 404})
            ),
            "{method}"
        );
    }

    // The runner shows it, and it is a bad scenario.
    let (code, out) = run_against(
        &fg,
        "[[steps]]\nfault = { proxy = \"p\", remove = \"latency_downstream\" }\n",
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("/toxics/latency_downstream: 404 toxic not found: proxy \"p\" has no toxic \"latency_downstream\"; its toxics: latency_upstream, cut"),
        "{out}"
    );
}

#[tokio::test]
async fn the_api_refuses_a_stream_the_plugin_does_not_act_on_and_changes_nothing() {
    let fg = Faultgate::start(&[]).await;
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = upstream.local_addr().unwrap().to_string();
    fg.proxy_with(json!({"name": "pg", "mode": "postgres", "upstream": upstream}))
        .await;
    fg.add_toxic("pg", json!({"name": "deaf", "type": "pg_drop_notify"}))
        .await;
    let before = fg.toxics("pg").await;

    let message = fg
        .expect_error(
            "POST",
            "/proxies/pg/toxics",
            Some(json!({"type": "pg_drop_notify", "stream": "upstream"})),
            400,
            "acts on the downstream stream only, not upstream",
        )
        .await;
    assert!(message.contains("\"pg_drop_notify\""), "{message}");
    fg.expect_error(
        "PUT",
        "/proxies/pg/toxics",
        Some(json!([{"name": "deaf", "type": "pg_drop_notify"}, {"type": "pg_error"}])),
        400,
        "\"pg_error\" acts on the upstream stream only, not downstream",
    )
    .await;
    assert_eq!(fg.toxics("pg").await, before);

    // What each plugin acts on is shown.
    let plugin = fg.expect("GET", "/plugins/pg_drop_notify", None, 200).await;
    assert_eq!(plugin["streams"], json!(["downstream"]));
    assert_eq!(plugin["modes"], json!(["postgres"]));
    let latency = fg.expect("GET", "/plugins/latency", None, 200).await;
    assert_eq!(latency["streams"], json!(["upstream", "downstream"]));
    assert_eq!(latency["modes"], json!(["tcp", "http", "postgres"]));
    let attributes: Vec<&str> = latency["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        attributes,
        ["latency", "jitter"],
        "declarations are not attributes"
    );
}

#[tokio::test]
async fn a_plugin_built_before_the_declarations_loads_and_acts_on_both_streams() {
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(wat_delay()).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["streams"], json!(["upstream", "downstream"]));
    assert_eq!(plugin["modes"], json!(["tcp", "http", "postgres"]));
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    fg.proxy("p", upstream.local_addr().unwrap()).await;
    for stream in ["upstream", "downstream"] {
        let toxic = fg
            .add_toxic("p", json!({"type": "wat-delay", "stream": stream}))
            .await;
        assert_eq!(toxic["stream"], json!(stream));
    }

    let (code, out) = run_to_exit(&["plugin", "check", wat_delay().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("acts on streams: upstream, downstream; in modes: tcp, http, postgres"),
        "{out}"
    );
    let (code, out) = run_to_exit(&["plugin", "list"]);
    assert_eq!(code, Some(0), "{out}");
    let drop_notify = out
        .split("\n\n")
        .find(|p| p.starts_with("pg_drop_notify "))
        .unwrap_or_default();
    assert!(
        drop_notify.contains("acts on streams: downstream; in modes: postgres"),
        "{out}"
    );
}

#[test]
fn check_looks_inside_holds_checks_and_template_uses() {
    assert_refused(
        "[[steps]]\nholds = { for = \"2s\", check = { fault = { proxy = \"p\", add = { type = \"latncy\" } } } }\n",
        &["steps[1]: holds.check.fault.add.type: \"latncy\" is not a known toxic type"],
    );
    assert_refused(
        "[templates.slow]\nparams = [\"kind\"]\nfault = { proxy = \"p\", add = { type = \"${kind}\" } }\n\n\
         [[steps]]\nuse = { template = \"slow\", with = { kind = \"latncy\" } }\n",
        &["fault.add.type: \"latncy\" is not a known toxic type"],
    );
}
