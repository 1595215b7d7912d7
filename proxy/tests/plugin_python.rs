//! Plugins written in Python (componentize-py): the `--lang python`
//! scaffolds built with the real toolchain, checked and loaded in front of
//! real servers; `py_jitter` (plugins/python/py_jitter) against Postgres and
//! its replay under a seed; and an uncaught Python exception failing its
//! fault with the Python message in the log.

mod support;

#[path = "support/python_toolchain.rs"]
mod python_toolchain;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::{Faultgate, run_to_exit};
use support::git_http::GitHttpServer;
use support::postgres::{Postgres, connect};

/// `faultgate plugin new NAME --lang python FLAGS`, then `edit` one of its
/// files (`file`), then build it; returns the component.
fn scaffold_and_build(
    dir: &Path,
    name: &str,
    flags: &[&str],
    file: &str,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let mut args = vec![
        "plugin",
        "new",
        name,
        "--lang",
        "python",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend(flags);
    let (code, output) = run_to_exit(&args);
    assert_eq!(code, Some(0), "plugin new failed:\n{output}");
    assert!(output.contains("componentize-py"), "{output}");
    let root = dir.join(name);
    for written in ["app.py", "attributes.py", "README.md", "wit/faultgate.wit"] {
        assert!(
            root.join(written).exists(),
            "plugin new did not write {written}"
        );
    }
    let path = root.join(file);
    std::fs::write(&path, edit(std::fs::read_to_string(&path).unwrap())).unwrap();
    let world = if flags.contains(&"--http") {
        "http-plugin"
    } else {
        "tcp-plugin"
    };
    python_toolchain::build(&root, Path::new("wit"), world)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_python_plugin_builds_checks_loads_and_delays_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "slow-py", &[], "app.py", |app| app);
    let (code, output) = python_toolchain::check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("slow-py 0.1.0 (tcp fault)"), "{output}");
    assert!(output.contains("delay (integer, default 0)"), "{output}");

    let pg = Postgres::start().await;
    let fg = python_toolchain::start_faultgate(&[]).await;
    let (status, plugin) = python_toolchain::upload(&fg, &wasm).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["name"], "slow-py");

    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"type": "slow-py", "stream": "downstream", "attributes": {"delay": 300}}),
    )
    .await;
    let started = Instant::now();
    let five: i32 = client.query_one("SELECT 5", &[]).await.unwrap().get(0);
    assert_eq!(five, 5);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the Python plugin did not delay the query"
    );

    // Its validate, in Python, names the attribute at fault.
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"name": "bad", "type": "slow-py", "attributes": {"delay": -5}})),
        400,
        "delay: expected a non-negative integer (milliseconds), got -5",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_python_http_plugin_answers_for_one_repository_of_a_git_server() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "gone-py", &["--http"], "app.py", |app| app);
    let (code, output) = python_toolchain::check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("gone-py 0.1.0 (http fault)"), "{output}");

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = python_toolchain::start_faultgate(&[]).await;
    let (status, plugin) = python_toolchain::upload(&fg, &wasm).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["kind"], "http");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "gone-py", "stream": "upstream",
               "attributes": {"status": 410, "delay": 200, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;
    let refs =
        |repo: &str| format!("http://{listen}/git/{repo}.git/info/refs?service=git-upload-pack");
    let started = Instant::now();
    let answer = reqwest::get(refs("alpha")).await.unwrap();
    assert_eq!(answer.status(), 410);
    assert_eq!(answer.text().await.unwrap(), "gone-py\n");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(reqwest::get(refs("beta")).await.unwrap().status(), 200);
}

/// plugins/python/py_jitter, built.
fn py_jitter() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/python/py_jitter");
    python_toolchain::build(&source, Path::new("../../../wit"), "tcp-plugin")
}

/// The delays `py_jitter` (latency 50, jitter 40) drew for the Postgres
/// server's answers on one connection running five queries, under a
/// faultgate started with `--seed seed`, in the order they were drawn.
async fn jitter_draws(wasm: &Path, pg: &Postgres, seed: &str) -> Vec<u64> {
    let fg = python_toolchain::start_faultgate(&["--seed", seed]).await;
    let (status, plugin) = python_toolchain::upload(&fg, wasm).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    fg.add_toxic(
        "pg",
        json!({"type": "py_jitter", "stream": "downstream",
               "attributes": {"latency": 50, "jitter": 40}}),
    )
    .await;
    let client = connect(listen.port()).await.unwrap();
    for n in 0..5 {
        let started = Instant::now();
        let got: i32 = client
            .query_one("SELECT $1::int", &[&n])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, n);
        // The least a delay can be: latency - jitter.
        assert!(
            started.elapsed() >= Duration::from_millis(10),
            "a query was not delayed"
        );
    }
    drop(client);
    draws(&fg)
}

/// The delays logged by `py_jitter` so far, in order.
fn draws(fg: &Faultgate) -> Vec<u64> {
    fg.log()
        .lines()
        .filter_map(|line| line.split("py_jitter delay ").nth(1))
        .map(|rest| rest.split(" ms").next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_jitter_delays_postgres_and_replays_its_delays_under_the_same_seed() {
    let wasm = py_jitter();
    let (code, output) = python_toolchain::check(&wasm);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("py_jitter 0.1.0 (tcp fault)"), "{output}");
    assert!(output.contains("jitter (integer, default 0)"), "{output}");

    let pg = Postgres::start().await;
    let first = jitter_draws(&wasm, &pg, "2101").await;
    let again = jitter_draws(&wasm, &pg, "2101").await;
    let other = jitter_draws(&wasm, &pg, "2102").await;
    for run in [&first, &again, &other] {
        // A delay per answer of the server, at least one per query.
        assert!(run.len() >= 5, "too few delays drawn: {run:?}");
        assert!(
            run.iter().all(|&ms| (10..=90).contains(&ms)),
            "a delay outside latency ± jitter: {run:?}"
        );
    }
    // How the server's answers fall into chunks may vary from run to run;
    // the draws, one per chunk, replay in order whatever their number.
    let common = first.len().min(again.len()).min(other.len());
    assert_eq!(
        first[..common],
        again[..common],
        "the same seed drew differently"
    );
    assert_ne!(
        first[..common],
        other[..common],
        "another seed drew the same delays"
    );
    assert!(
        first
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "no jitter: {first:?}"
    );

    // Attributes are checked in Python: a bad one is a 400 naming it.
    let fg = python_toolchain::start_faultgate(&[]).await;
    let (status, _) = python_toolchain::upload(&fg, &wasm).await;
    assert_eq!(status, 201);
    fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"type": "py_jitter", "attributes": {"jitter": "lots"}})),
        400,
        "jitter: expected whole milliseconds",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_python_exception_fails_the_fault_with_its_message_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "raises", &[], "tcp.py", |tcp| {
        tcp.replace(
            "        self.chunks_seen += 1\n",
            "        self.chunks_seen += 1\n        raise ValueError(f\"python refuses chunk {self.chunks_seen}\")\n",
        )
    });
    let pg = Postgres::start().await;
    let fg = python_toolchain::start_faultgate(&[]).await;
    let (status, plugin) = python_toolchain::upload(&fg, &wasm).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    fg.add_toxic("pg", json!({"type": "raises", "stream": "upstream"}))
        .await;

    // The client's startup packet is the first chunk: the hook raises, the
    // instance traps, and the connection fails as with any plugin's trap.
    assert!(
        connect(listen.port()).await.is_err(),
        "a connection went through a fault whose hook raised"
    );
    support::eventually(
        "the Python message and the instance's end in the log",
        Duration::from_secs(10),
        || {
            let log = fg.log();
            async move {
                log.contains("python refuses chunk 1")
                    && log.contains("ValueError")
                    && log.contains("the instance is ended")
            }
        },
    )
    .await;
    // The proxy goes on, and so does the server behind it.
    let direct = pg.direct().await;
    let one: i32 = direct.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    fg.expect("GET", "/proxies/pg", None, 200).await;
}
