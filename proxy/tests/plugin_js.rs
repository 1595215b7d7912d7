//! Plugins in JavaScript: the `--lang js` scaffold (TCP and HTTP) and the
//! `js_flaky` fault, built with the real toolchain (jco componentize from
//! npm, installed by scripts/toolchains/js), checked, loaded and run in front
//! of real servers; and a JS exception in a hook, which fails the fault as a
//! trap does, with the JS message in faultgate's log.

#[path = "support/js_toolchain.rs"]
mod js_toolchain;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::faultgate::{Faultgate, error_mentions, plugin_build_dir, run_to_exit, wait_bounded};
use support::git_http::GitHttpServer;
use support::peers::{echo, echo_server};
use tokio::net::TcpStream;

/// `faultgate plugin new NAME --lang js FLAGS`, its app.js changed by
/// `edit`, built with its own `npm run build`; returns the component.
fn scaffold_and_build(
    dir: &Path,
    name: &str,
    flags: &[&str],
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let mut args = vec![
        "plugin",
        "new",
        name,
        "--lang",
        "js",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend(flags);
    let (code, output) = run_to_exit(&args);
    assert_eq!(code, Some(0), "plugin new failed:\n{output}");
    assert!(
        output.contains("npm install && npm run build"),
        "plugin new does not say how to build:\n{output}"
    );
    let root = dir.join(name);
    for file in ["app.js", "package.json", "README.md", "wit/faultgate.wit"] {
        assert!(root.join(file).exists(), "plugin new did not write {file}");
    }
    // The scaffold asks npm for the very tools faultgate tests with.
    let manifest = |path: PathBuf| -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let scaffold = manifest(root.join("package.json"));
    let toolchain = manifest(js_toolchain::repo_root().join("plugins/js/toolchain/package.json"));
    for key in ["devDependencies", "overrides"] {
        assert_eq!(scaffold[key], toolchain[key], "package.json {key}");
    }
    let app = root.join("app.js");
    std::fs::write(&app, edit(std::fs::read_to_string(&app).unwrap())).unwrap();
    js_toolchain::build_scaffold(&root);
    root.join(format!("{name}.wasm"))
}

/// `faultgate plugin check WASM`, given longer than `run_to_exit`'s 30 s:
/// checking compiles the 12 MB component, and on a busy machine that
/// alone can take half a minute.
fn check(wasm: &Path) -> String {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .args(["plugin", "check", wasm.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (status, output) = wait_bounded(child, Duration::from_secs(180));
    assert_eq!(status.code(), Some(0), "plugin check failed:\n{output}");
    output
}

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
    let wasm = js_toolchain::build_repo_plugin("js_flaky", "http-plugin", dir.path());
    let output = check(&wasm);
    assert!(output.contains("js_flaky 0.1.0 (http fault)"), "{output}");
    assert!(output.contains("every (integer, default 2)"), "{output}");

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = Faultgate::start(&[]).await;
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
async fn a_scaffolded_js_http_plugin_answers_for_one_repository_and_a_thrown_error_fails_it_with_its_message_logged()
 {
    let dir = tempfile::tempdir().unwrap();
    // The template, and a hook that throws on one path.
    let wasm = scaffold_and_build(dir.path(), "js-gone", &["--http"], |app| {
        let hook = "return guarded('on-request', () => {";
        assert!(app.contains(hook), "the template changed: {app}");
        app.replace(
            hook,
            &format!(
                "{hook}\n      if (request.path.endsWith('/explode')) {{ throw new Error(`no such thing as ${{request.path}}`); }}"
            ),
        )
    });
    let output = check(&wasm);
    assert!(output.contains("js-gone 0.1.0 (http fault)"), "{output}");

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "js-gone", "stream": "upstream",
               "attributes": {"status": 410, "delay": 200, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        get_alone(&info_refs(listen, "alpha")).await,
        (410, "js-gone\n".to_owned())
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(get_alone(&info_refs(listen, "beta")).await.0, 200);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_js_tcp_plugin_loaded_at_start_delays_and_refuses_bad_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "js-slow", &[], |app| app);
    let output = check(&wasm);
    assert!(output.contains("js-slow 0.1.0 (tcp fault)"), "{output}");
    assert!(output.contains("delay (integer, default 0)"), "{output}");

    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&["--plugin", wasm.to_str().unwrap()]).await;
    let listen = fg.proxy("p", echo_addr).await;
    let (status, body) = fg
        .request(
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "js-slow", "attributes": {"delay": -5}})),
        )
        .await;
    error_mentions(
        status,
        &body,
        400,
        "delay: expected a non-negative integer (milliseconds), got -5",
    );

    fg.add_toxic(
        "p",
        json!({"type": "js-slow", "stream": "upstream", "attributes": {"delay": 300}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    for _ in 0..2 {
        assert!(
            echo(&mut stream, b"ping").await >= Duration::from_millis(300),
            "js-slow did not delay"
        );
    }

    // reset_after 1: the first chunk resets the connection.
    fg.remove_toxic("p", "js-slow_upstream").await;
    fg.add_toxic(
        "p",
        json!({"type": "js-slow", "stream": "upstream", "attributes": {"reset_after": 1}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"ping")
        .await
        .unwrap();
    let (_, ended) = support::peers::read_to_end(&mut stream).await;
    assert_eq!(
        ended.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
}

/// Not a test: the figures of plugins/languages/js.md. Run with
/// `cargo test --release --test plugin_js -- --ignored --nocapture costs`.
/// For the built-in Rust `http_abort` and `js_flaky` (`every` 1: both answer
/// every request at `on-request`), the same way in the same run: component
/// size; time of `POST /proxies/P/toxics` (mean of 20, each on a proxy of
/// its own); faultgate's RSS growth per attached toxic (over those 20); the
/// round trip of a request the fault answers, on one kept-alive connection
/// (mean of 500 after 50 to warm up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn costs() {
    let dir = tempfile::tempdir().unwrap();
    let js = js_toolchain::build_repo_plugin("js_flaky", "http-plugin", dir.path());
    let rust = plugin_build_dir().join("faultgate_http_abort.wasm");
    let cases = [
        (
            "rust http_abort",
            rust,
            json!({"type": "http_abort", "stream": "upstream", "attributes": {"status": 503}}),
        ),
        (
            "js js_flaky",
            js,
            json!({"type": "js_flaky", "stream": "upstream", "attributes": {"every": 1}}),
        ),
    ];
    for (label, wasm, toxic) in cases {
        let fg = Faultgate::start(&[]).await;
        // The Rust one is built in; the JavaScript one is uploaded.
        if !label.starts_with("rust") {
            let (status, body) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
            assert_eq!(status, 201, "{body}");
        }
        let size = std::fs::metadata(&wasm).unwrap().len();
        const TOXICS: u32 = 20;
        let mut listens = Vec::new();
        for n in 0..TOXICS {
            listens.push(
                fg.proxy_with(
                    json!({"name": format!("p{n}"), "mode": "http", "upstream": "127.0.0.1:9"}),
                )
                .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_before = fg.rss_bytes();
        let started = Instant::now();
        for n in 0..TOXICS {
            fg.add_toxic(&format!("p{n}"), toxic.clone()).await;
        }
        let attach = started.elapsed() / TOXICS;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let per_toxic = (fg.rss_bytes().saturating_sub(rss_before)) / u64::from(TOXICS);
        let client = reqwest::Client::new();
        let url = format!("http://{}/x", listens[0]);
        for _ in 0..50 {
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        const CALLS: u32 = 500;
        let started = Instant::now();
        for _ in 0..CALLS {
            let answer = client.get(&url).send().await.unwrap();
            assert_eq!(answer.status(), 503);
            answer.bytes().await.unwrap();
        }
        let per_call = started.elapsed() / CALLS;
        println!(
            "{label}: {size} bytes; attach {attach:?}; {} KiB RSS per attached toxic; request answered by the fault {per_call:?}",
            per_toxic / 1024
        );
    }
}
