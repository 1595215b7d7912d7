//! Plugins written in Python (componentize-py), beyond the scaffolds
//! (plugin_scaffolds.rs): `py_jitter` (plugins/python/py_jitter) against
//! Postgres and its replay under a seed, and an uncaught Python exception
//! failing its fault with the Python message in the log.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::plugin_build::{Lang, check, scaffold, start_sharing_compiles};
use support::postgres::{Postgres, connect};

/// plugins/python/py_jitter, built as a Python scaffold with its code.
fn py_jitter(dir: &Path) -> PathBuf {
    scaffold(dir, "py_jitter", Lang::Python, false)
        .with_code_of_repo_plugin()
        .build()
}

/// The delays `py_jitter` (latency 50, jitter 40) drew for the Postgres
/// server's answers on one connection running five queries, under a
/// faultgate started with `--seed seed`, in the order they were drawn.
async fn jitter_draws(wasm: &Path, pg: &Postgres, seed: &str) -> Vec<u64> {
    let fg = start_sharing_compiles(&["--seed", seed]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(wasm).unwrap()).await;
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
    let dir = tempfile::tempdir().unwrap();
    let wasm = py_jitter(dir.path());
    let (code, output) = check(&wasm);
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
    let fg = start_sharing_compiles(&[]).await;
    let (status, _) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
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
    let wasm = scaffold(dir.path(), "raises", Lang::Python, false)
        .edit_source(|tcp| {
            tcp.replace(
                "        self.chunks_seen += 1\n",
                "        self.chunks_seen += 1\n        raise ValueError(f\"python refuses chunk {self.chunks_seen}\")\n",
            )
        })
        .build();
    let pg = Postgres::start().await;
    let fg = start_sharing_compiles(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
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
