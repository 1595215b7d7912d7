//! Plugins in JavaScript (jco componentize from npm, installed by
//! scripts/toolchains/js), beyond the scaffolds (plugin_scaffolds.rs): the
//! `js_flaky` fault, which counts requests across connections, in front of
//! a real git server; and a JS exception in a hook, which fails the fault
//! as a trap does, with the JS message in faultgate's log.

mod support;

use std::time::Duration;

use serde_json::json;
use support::git_http::GitHttpServer;
use support::plugin_build::{Lang, check, scaffold, start_sharing_compiles};

/// A GET on a connection of its own.
async fn get_alone(url: &str) -> (u16, String) {
    let answer = reqwest::Client::new().get(url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn info_refs(listen: std::net::SocketAddr, repo: &str) -> String {
    format!("http://{listen}/git/{repo}.git/info/refs?service=git-upload-pack")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_flaky_answers_every_second_request_to_a_git_server_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "js_flaky", Lang::Js, true)
        .with_code_of_repo_plugin()
        .build();
    let (code, output) = check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("js_flaky 0.1.0 (http fault)"), "{output}");
    assert!(output.contains("every (integer, default 2)"), "{output}");

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = start_sharing_compiles(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["kind"], "http");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.expect_error(
        "POST",
        "/proxies/git/toxics",
        Some(json!({"type": "js_flaky", "attributes": {"every": 0}})),
        400,
        "every: expected a whole number of requests, at least 1, got 0",
    )
    .await;
    fg.add_toxic(
        "git",
        json!({"type": "js_flaky", "stream": "upstream",
               "attributes": {"every": 2, "status": 503, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;

    // Four requests, each on its own connection: the count is the fault's.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, body) = get_alone(&info_refs(listen, "alpha")).await;
        if status == 503 {
            assert!(body.starts_with("js_flaky: request "), "{body}");
        } else {
            assert!(
                body.contains("refs/heads/"),
                "not the server's refs: {body}"
            );
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 503, 200, 503]);
    // A request outside the prefix is neither counted nor answered.
    assert_eq!(get_alone(&info_refs(listen, "beta")).await.0, 200);
    assert_eq!(get_alone(&info_refs(listen, "alpha")).await.0, 200);

    // Attached upstream the server never saw the answered ones: 4 of 6.
    support::eventually(
        "the server logged the requests that passed",
        Duration::from_secs(10),
        || async { server.requests_logged().len() >= 4 },
    )
    .await;
    let seen = server.requests_logged();
    assert_eq!(
        seen.iter().filter(|r| r.contains("/alpha.git/")).count(),
        3,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_exception_in_a_hook_fails_the_fault_with_its_message_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // The HTTP template, with a hook that throws on one path.
    let wasm = scaffold(dir.path(), "js-throws", Lang::Js, true)
        .edit_source(|app| {
            let hook = "return guarded('on-request', () => {";
            app.replace(
                hook,
                &format!(
                    "{hook}\n      if (request.path.endsWith('/explode')) {{ throw new Error(`no such thing as ${{request.path}}`); }}"
                ),
            )
        })
        .build();

    let server = GitHttpServer::start(&["alpha"]);
    let fg = start_sharing_compiles(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "js-throws", "stream": "upstream",
               "attributes": {"status": 410, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;
    assert_eq!(get_alone(&info_refs(listen, "alpha")).await.0, 410);

    // The exception ends the instance like any trap: that request gets the
    // host's 502, the log has the JS message, and the next request gets a
    // fresh instance that works.
    let answer = reqwest::get(format!("http://{listen}/git/alpha.git/explode"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert_eq!(answer.headers()["x-faultgate-error"], "plugin");
    support::eventually(
        "the JS message in the log",
        Duration::from_secs(5),
        || async {
            fg.log()
                .contains("on-request threw: Error: no such thing as /git/alpha.git/explode")
        },
    )
    .await;
    assert!(fg.log().contains("on-request failed"), "{}", fg.log());
    // The fresh instance is made after a short back-off (502s meanwhile).
    support::eventually(
        "a fresh instance answering 410",
        Duration::from_secs(5),
        || async { get_alone(&info_refs(listen, "alpha")).await.0 == 410 },
    )
    .await;
}
