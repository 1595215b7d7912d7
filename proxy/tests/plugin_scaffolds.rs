//! `faultgate plugin new` in every language it writes (Rust, Python,
//! JavaScript, C), TCP and HTTP: each scaffold builds as it is with its
//! language's own tools, passes `plugin check`, loads with `POST /plugins`
//! and does, in front of a real server, what its template promises; its own
//! check of its attributes is the API's 400.
//!
//! The templates are the same fault in every language, so one test body
//! serves each kind, run once per language.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::git_http::GitHttpServer;
use support::plugin_build::{Lang, check, scaffold, start_sharing_compiles};
use support::postgres::{Postgres, connect};

/// The TCP template delays every chunk by `delay` and resets the
/// connection at chunk `reset_after`.
async fn tcp_scaffold_delays_and_resets_postgres(lang: Lang) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("slow-{}", lang.flag());
    let wasm = scaffold(dir.path(), &name, lang, false).build();
    let (code, output) = check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("a valid faultgate plugin"), "{output}");
    assert!(
        output.contains(&format!("{name} 0.1.0 (tcp fault)")),
        "{output}"
    );
    assert!(output.contains("delay (integer, default 0)"), "{output}");

    let pg = Postgres::start().await;
    let fg = start_sharing_compiles(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["name"], name.as_str());
    assert!(plugin["source"]["upload"]["sha256"].is_string(), "{plugin}");

    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"name": "slow", "type": name, "stream": "downstream", "attributes": {"delay": 300}}),
    )
    .await;
    for n in 0..2 {
        let started = Instant::now();
        let row = client.query_one("SELECT $1::int", &[&n]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), n);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the {lang:?} plugin did not delay the query"
        );
    }

    // At chunk 1 of the client's side, its startup packet: reset.
    fg.remove_toxic("pg", "slow").await;
    fg.add_toxic(
        "pg",
        json!({"type": name, "stream": "upstream", "attributes": {"reset_after": 1}}),
    )
    .await;
    let refused = connect(listen.port()).await;
    assert!(
        refused.is_err(),
        "a connection went through reset_after 1 of the {lang:?} plugin"
    );

    // The plugin's own check of its attributes is the API's 400.
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"name": "bad", "type": name, "attributes": {"delay": -5}})),
        400,
        "delay: expected a non-negative integer",
    )
    .await;
}

/// The HTTP template answers requests under `path_prefix` with `status`,
/// after `delay`, and passes the others.
async fn http_scaffold_answers_for_one_repository_of_a_git_server(lang: Lang) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("gone-{}", lang.flag());
    let wasm = scaffold(dir.path(), &name, lang, true).build();
    let (code, output) = check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(
        output.contains(&format!("{name} 0.1.0 (http fault)")),
        "{output}"
    );

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = start_sharing_compiles(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["kind"], "http");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": name, "stream": "upstream",
               "attributes": {"status": 410, "delay": 200, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;
    let refs =
        |repo: &str| format!("http://{listen}/git/{repo}.git/info/refs?service=git-upload-pack");
    let started = Instant::now();
    let answer = reqwest::get(refs("alpha")).await.unwrap();
    assert_eq!(answer.status(), 410);
    assert_eq!(answer.text().await.unwrap(), format!("{name}\n"));
    assert!(started.elapsed() >= Duration::from_millis(200));
    let passed = reqwest::get(refs("beta")).await.unwrap();
    assert_eq!(passed.status(), 200);
    assert!(
        passed.text().await.unwrap().contains("refs/heads/"),
        "the server's answer did not pass whole"
    );

    fg.expect_error(
        "POST",
        "/proxies/git/toxics",
        Some(json!({"name": "bad", "type": name, "attributes": {"status": 1000}})),
        400,
        "status: expected an HTTP status (100-999)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_tcp_scaffold_delays_and_resets_postgres() {
    tcp_scaffold_delays_and_resets_postgres(Lang::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_tcp_scaffold_delays_and_resets_postgres() {
    tcp_scaffold_delays_and_resets_postgres(Lang::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_tcp_scaffold_delays_and_resets_postgres() {
    tcp_scaffold_delays_and_resets_postgres(Lang::Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_tcp_scaffold_delays_and_resets_postgres() {
    tcp_scaffold_delays_and_resets_postgres(Lang::C).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_http_scaffold_answers_for_one_repository_of_a_git_server() {
    http_scaffold_answers_for_one_repository_of_a_git_server(Lang::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_http_scaffold_answers_for_one_repository_of_a_git_server() {
    http_scaffold_answers_for_one_repository_of_a_git_server(Lang::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_http_scaffold_answers_for_one_repository_of_a_git_server() {
    http_scaffold_answers_for_one_repository_of_a_git_server(Lang::Js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_http_scaffold_answers_for_one_repository_of_a_git_server() {
    http_scaffold_answers_for_one_repository_of_a_git_server(Lang::C).await;
}
