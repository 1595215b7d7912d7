//! A plugin that traps, loops forever or allocates without end ends its
//! fault's one instance: every connection that instance served fails, and
//! nothing else does. The proxy, its API, other toxics and other proxies go
//! on; the next connection gets a fresh instance; a plugin that keeps
//! failing is not made again in a tight loop.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::faultgate::{Faultgate, plugin_build_dir};
use support::peers::{echo, echo_server, read_to_end};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn with_misbehave() -> Faultgate {
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let plugin = plugin.to_str().unwrap().to_owned();
    Faultgate::start(&["--plugin", &plugin, "--plugin-deadline-ms", "50"]).await
}

async fn toxic(fg: &Faultgate, proxy: &str, name: &str) -> Value {
    let (status, toxic) = fg
        .request("GET", &format!("/proxies/{proxy}/toxics/{name}"), None)
        .await;
    assert_eq!(status, 200, "{toxic}");
    toxic
}

/// The value of `faultgate_toxic_plugin_failures_total` for one toxic.
async fn toxic_failures(fg: &Faultgate, proxy: &str, name: &str) -> u64 {
    let (_, body) = fg.request("GET", "/metrics", None).await;
    let prefix =
        format!("faultgate_toxic_plugin_failures_total{{proxy=\"{proxy}\",toxic=\"{name}\"}} ");
    let text = body.as_str().unwrap_or_default().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
        .parse()
        .unwrap()
}

async fn misbehaving(behaviour: &str, says: &str) {
    let mut fg = with_misbehave().await;
    let (echo_addr, _) = echo_server().await;
    let healthy = fg.proxy("healthy", echo_addr).await;
    let broken = fg.proxy("broken", echo_addr).await;
    fg.add_toxic(
        "healthy",
        json!({"type": "latency", "attributes": {"latency": 0}}),
    )
    .await;
    // A connection through the healthy proxy, open across the failure.
    let mut bystander = TcpStream::connect(healthy).await.unwrap();
    echo(&mut bystander, b"before").await;

    // Two toxics on the broken proxy: only the misbehaving one fails.
    fg.add_toxic(
        "broken",
        json!({"type": "misbehave", "stream": "upstream",
               "attributes": {"behaviour": behaviour, "trigger": "boom"}}),
    )
    .await;
    fg.add_toxic(
        "broken",
        json!({"name": "calm", "type": "latency", "stream": "upstream", "attributes": {"latency": 0}}),
    )
    .await;
    // Three connections share the plugin's instance, and it serves them.
    let mut served = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(broken).await.unwrap();
        echo(&mut stream, b"hello").await;
        served.push(stream);
    }

    served[0].write_all(b"boom").await.unwrap();
    for (i, stream) in served.iter_mut().enumerate() {
        let (answer, end) = tokio::time::timeout(Duration::from_secs(10), read_to_end(stream))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "connection {i}, served by an instance that did {behaviour:?}, was not ended"
                )
            });
        assert!(answer.is_empty(), "data passed a failed plugin");
        assert_eq!(
            end.expect_err("a TCP connection whose plugin failed is reset")
                .kind(),
            std::io::ErrorKind::ConnectionReset,
            "connection {i}"
        );
    }

    assert!(fg.alive(), "faultgate died when a plugin did {behaviour:?}");
    assert_eq!(
        fg.metric("faultgate_plugin_failures_total", "broken").await,
        3
    );
    assert_eq!(toxic_failures(&fg, "broken", "misbehave_upstream").await, 1);
    assert_eq!(toxic_failures(&fg, "broken", "calm").await, 0);
    let shown = toxic(&fg, "broken", "misbehave_upstream").await;
    assert_eq!(shown["plugin_failures"], 1, "{shown}");
    let last = shown["plugin_last_failure"].as_str().unwrap_or_default();
    assert!(last.contains(says), "the toxic says {last:?}, not {says:?}");
    assert!(
        fg.log().contains("misbehave") && fg.log().contains("instance is ended"),
        "the failure was not logged:\n{}",
        fg.log()
    );
    echo(&mut bystander, b"after!").await;

    // After the first back-off, a new connection gets a fresh instance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fresh = TcpStream::connect(broken).await.unwrap();
    echo(&mut fresh, b"hello again").await;
    assert!(
        fg.log().contains("fresh instance"),
        "the fresh instance was not logged:\n{}",
        fg.log()
    );
    // Two attached, one made afresh.
    assert_eq!(
        fg.metric("faultgate_plugin_instances_total", "broken")
            .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_ends_its_instance_and_only_its_toxics_connections() {
    misbehaving("trap", "wasm trap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_is_interrupted_and_ends_only_its_toxics_connections() {
    misbehaving("loop", "time limit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_allocates_without_end_ends_only_its_toxics_connections() {
    misbehaving("alloc", "memory limit of 16 MiB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_failing_is_not_made_again_in_a_tight_loop() {
    let fg = with_misbehave().await;
    let (echo_addr, _) = echo_server().await;
    let broken = fg.proxy("broken", echo_addr).await;
    fg.add_toxic(
        "broken",
        json!({"type": "misbehave", "attributes": {"behaviour": "trap", "on": "open"}}),
    )
    .await;
    // Twenty connections as fast as they come: each fails, but instances
    // are made again only after a wait that doubles (100 ms, 200 ms, ...).
    for _ in 0..20 {
        // The reset may come before the connect has returned.
        let Ok(mut stream) = TcpStream::connect(broken).await else {
            continue;
        };
        let _ = stream.write_all(b"x").await;
        let (answer, _) = tokio::time::timeout(Duration::from_secs(10), read_to_end(&mut stream))
            .await
            .expect("a connection whose plugin failed is ended");
        assert!(answer.is_empty());
    }
    assert_eq!(
        fg.metric("faultgate_plugin_failures_total", "broken").await,
        20
    );
    let made = fg
        .metric("faultgate_plugin_instances_total", "broken")
        .await;
    assert!(
        (1..=6).contains(&made),
        "{made} instances were made for 20 failing connections"
    );
    assert!(
        fg.log().contains("the next one is made in"),
        "the back-off was not logged:\n{}",
        fg.log()
    );
}

async fn with_testing_plugins(names: &[&str]) -> Faultgate {
    let mut args = vec!["--plugin-deadline-ms".to_owned(), "50".to_owned()];
    for name in names {
        args.push("--plugin".into());
        let path = plugin_build_dir().join(format!("faultgate_test_{name}.wasm"));
        args.push(path.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Faultgate::start(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_postgres_plugin_ends_its_sessions_with_a_fatal_error() {
    let pg = support::postgres::Postgres::start().await;
    let fg = with_testing_plugins(&["misbehave_pg"]).await;
    let port = fg
        .proxy_with(
            json!({"name": "pg", "mode": "postgres", "upstream": format!("127.0.0.1:{}", pg.port)}),
        )
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "pg_misbehave", "stream": "upstream", "attributes": {"trigger": "boom"}}),
    )
    .await;
    let first = support::postgres::connect(port).await.unwrap();
    let second = support::postgres::connect(port).await.unwrap();
    first.simple_query("SELECT 1").await.unwrap();
    second.simple_query("SELECT 1").await.unwrap();

    // What a client sees when its server goes away: a FATAL error.
    let fatal = |error: tokio_postgres::Error| -> String {
        let db = error
            .as_db_error()
            .unwrap_or_else(|| panic!("expected a FATAL error, got {error}"));
        assert_eq!(db.severity(), "FATAL", "{db:?}");
        assert_eq!(db.code().code(), "XX000", "{db:?}");
        db.message().to_owned()
    };
    let said = fatal(first.simple_query("SELECT 'boom'").await.unwrap_err());
    assert!(said.contains("pg_misbehave"), "{said}");
    // The other session, served by the same instance, is ended too: its
    // FATAL came while it was idle.
    support::eventually(
        "the other session ended",
        Duration::from_secs(5),
        || async { second.is_closed() },
    )
    .await;
    assert!(second.simple_query("SELECT 1").await.is_err());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = support::postgres::connect(port).await.unwrap();
    fresh.simple_query("SELECT 1").await.unwrap();
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "pg").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_plugin_answers_502_and_the_next_request_gets_a_fresh_instance() {
    let server = support::git_http::GitHttpServer::start(&["alpha"]);
    let fg = with_testing_plugins(&["misbehave_http"]).await;
    let base = fg
        .proxy_with(json!({"name": "git", "mode": "http", "upstream": server.address()}))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "http_misbehave", "stream": "upstream", "attributes": {"trigger": "boom"}}),
    )
    .await;
    let get = |path: &'static str| {
        let url = format!("http://{base}{path}");
        async move { reqwest::get(url).await.unwrap() }
    };
    let refs = "/git/alpha.git/info/refs?service=git-upload-pack";
    assert_eq!(get(refs).await.status(), 200);
    let failed = get("/boom").await;
    assert_eq!(failed.status(), 502);
    assert_eq!(failed.headers()["x-faultgate-error"], "plugin");
    let body = failed.text().await.unwrap();
    assert!(body.contains("http_misbehave"), "{body}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(refs).await.status(),
        200,
        "no fresh instance after the wait"
    );
    assert_eq!(
        toxic_failures(&fg, "git", "http_misbehave_upstream").await,
        1
    );
}

/// The longest round trip through `stream` (an echo) while `busy` runs,
/// round trips every 20 ms.
async fn worst_round_trip_while<F: std::future::Future>(
    stream: &mut TcpStream,
    busy: F,
) -> (Duration, F::Output) {
    let mut busy = std::pin::pin!(busy);
    let mut worst = Duration::ZERO;
    loop {
        tokio::select! {
            output = &mut busy => return (worst, output),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                worst = worst.max(echo(stream, b"tick").await);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_stall_other_proxies_while_it_runs() {
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let plugin = plugin.to_str().unwrap().to_owned();
    // A long deadline: a loop that held a runtime thread for all of it
    // would stall everything else that long.
    let fg = Faultgate::start(&["--plugin", &plugin, "--plugin-deadline-ms", "1500"]).await;
    let (echo_addr, _) = echo_server().await;
    let healthy = fg.proxy("healthy", echo_addr).await;
    let mut bystander = TcpStream::connect(healthy).await.unwrap();
    echo(&mut bystander, b"warm").await;

    // More looping instances than faultgate has runtime threads (one per
    // core), all looping at once.
    let loops = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let mut looping = Vec::new();
    for i in 0..loops {
        let name = format!("looping{i}");
        let listen = fg.proxy(&name, echo_addr).await;
        fg.add_toxic(
            &name,
            json!({"type": "misbehave", "stream": "upstream",
                   "attributes": {"behaviour": "loop", "trigger": "go"}}),
        )
        .await;
        looping.push(TcpStream::connect(listen).await.unwrap());
    }
    let all_loop = async {
        for stream in &mut looping {
            stream.write_all(b"go").await.unwrap();
        }
        for stream in &mut looping {
            let _ = tokio::time::timeout(Duration::from_secs(10), read_to_end(stream)).await;
        }
    };
    let (worst, ()) = worst_round_trip_while(&mut bystander, all_loop).await;
    assert!(
        worst < Duration::from_millis(500),
        "an unrelated connection waited {worst:?} while {loops} plugins looped for 1.5 s"
    );
}

/// A component that takes seconds to compile: thousands of functions,
/// and no faultgate contract (so it is refused, after compiling).
fn slow_to_compile() -> String {
    let mut wat = String::from("(component (core module\n");
    for f in 0..3000 {
        wat.push_str(&format!("(func (export \"f{f}\") (param i32) (result i32)"));
        for i in 0..60 {
            wat.push_str(&format!(
                " (local.set 0 (i32.add (local.get 0) (i32.const {i})))"
            ));
        }
        wat.push_str(" (local.get 0))\n");
    }
    wat.push_str("))");
    wat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiling_uploaded_plugins_does_not_stall_the_api_or_other_connections() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let healthy = fg.proxy("healthy", echo_addr).await;
    let mut bystander = TcpStream::connect(healthy).await.unwrap();
    echo(&mut bystander, b"warm").await;
    let wat = slow_to_compile();
    let uploads = async {
        let started = std::time::Instant::now();
        let (a, b) = tokio::join!(
            fg.upload_plugin(wat.clone().into_bytes()),
            fg.upload_plugin(wat.clone().into_bytes())
        );
        (a.0, b.0, started.elapsed())
    };
    let (worst, (a, b, took)) = worst_round_trip_while(&mut bystander, uploads).await;
    assert_eq!((a, b), (400, 400), "the uploads are not plugins");
    assert!(
        took > Duration::from_millis(500),
        "compiling took only {took:?}"
    );
    assert!(
        worst < took / 3,
        "an unrelated connection waited {worst:?} while two uploads compiled for {took:?}"
    );
    let started = std::time::Instant::now();
    let (status, _) = fg.request("GET", "/version", None).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_checks_plugins_and_toxics_with_every_instance_in_use() {
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let plugin = plugin.to_str().unwrap().to_owned();
    let fg = Faultgate::start(&["--plugin", &plugin, "--max-plugin-instances", "16"]).await;
    let (echo_addr, _) = echo_server().await;
    // Sixteen toxics: every instance in use, each serving a connection.
    let mut open = Vec::new();
    let failing = fg.proxy("failing", echo_addr).await;
    fg.add_toxic(
        "failing",
        json!({"type": "misbehave", "stream": "upstream",
               "attributes": {"behaviour": "trap", "trigger": "boom"}}),
    )
    .await;
    for i in 0..15 {
        let name = format!("p{i}");
        let listen = fg.proxy(&name, echo_addr).await;
        fg.add_toxic(&name, json!({"type": "noop"})).await;
        let mut stream = TcpStream::connect(listen).await.unwrap();
        echo(&mut stream, b"hi").await;
        open.push(stream);
    }
    fg.proxy("spare", echo_addr).await;

    // Checking still works: a valid plugin uploads, bad attributes are a
    // 400 naming the attribute, not a pool error.
    let wat = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/examples/wat-delay/wat-delay.wat"),
    )
    .unwrap();
    let (status, answer) = fg.upload_plugin(wat).await;
    assert_eq!(status, 201, "{answer}");
    fg.expect_error(
        "POST",
        "/proxies/spare/toxics",
        Some(json!({"type": "latency", "attributes": {"latency": "slow"}})),
        400,
        "latency",
    )
    .await;
    // A seventeenth instance is refused, saying why and what to do.
    fg.expect_error(
        "POST",
        "/proxies/spare/toxics",
        Some(json!({"type": "latency"})),
        503,
        "--max-plugin-instances",
    )
    .await;

    // The failing toxic's instance fails, which frees its place; another
    // toxic takes it; the failing toxic's next connection then finds no
    // place for a fresh instance, and is refused, counted apart.
    let mut victim = TcpStream::connect(failing).await.unwrap();
    victim.write_all(b"boom").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), read_to_end(&mut victim)).await;
    support::eventually(
        "the failed instance's place is free",
        Duration::from_secs(5),
        || async {
            fg.request(
                "POST",
                "/proxies/spare/toxics",
                Some(json!({"type": "noop"})),
            )
            .await
            .0 == 200
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(mut refused) = TcpStream::connect(failing).await {
        let _ = refused.write_all(b"x").await;
        let _ = tokio::time::timeout(Duration::from_secs(5), read_to_end(&mut refused)).await;
    }
    assert_eq!(
        fg.metric("faultgate_plugin_instance_limit_refusals_total", "failing")
            .await,
        1
    );
    for stream in &mut open {
        echo(stream, b"still").await;
    }
}
