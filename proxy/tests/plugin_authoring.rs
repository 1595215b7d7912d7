//! Plugin authors' path: scaffold a plugin, build it, check it, load it into
//! a running faultgate, attach it in front of a real server, and replace or
//! remove it at runtime.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::{Faultgate, error_mentions, plugin_build_dir, run_to_exit};
use support::git_http::GitHttpServer;
use support::peers::{echo, echo_server};
use support::postgres::{Postgres, connect};
use tokio::net::TcpStream;

/// `faultgate plugin new NAME`, then `edit` its src/lib.rs, then build it
/// for wasm32-wasip2; returns the component's path.
fn scaffold_and_build(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    scaffold_kind_and_build(dir, name, &[], edit)
}

/// Like [`scaffold_and_build`], with extra `plugin new` flags.
fn scaffold_kind_and_build(
    dir: &Path,
    name: &str,
    flags: &[&str],
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let mut args = vec!["plugin", "new", name, "--dir", dir.to_str().unwrap()];
    args.extend(flags);
    let (code, output) = run_to_exit(&args);
    assert_eq!(code, Some(0), "plugin new failed:\n{output}");
    let root = dir.join(name);
    for file in [
        "Cargo.toml",
        "README.md",
        "src/lib.rs",
        "faultgate-guest/wit/faultgate.wit",
    ] {
        assert!(root.join(file).exists(), "plugin new did not write {file}");
    }
    let lib = root.join("src/lib.rs");
    std::fs::write(&lib, edit(std::fs::read_to_string(&lib).unwrap())).unwrap();

    // One target directory for every run, so only the first builds the deps.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        // The test command builds faultgate itself through clippy (scripts/test);
        // a user's plugin builds with plain rustc.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the scaffolded plugin failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_http_plugin_answers_for_one_repository_of_a_git_server() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_kind_and_build(dir.path(), "gone-fishing", &["--http"], |lib| lib);
    let (code, output) = run_to_exit(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("gone-fishing 0.1.0"), "{output}");
    assert!(
        output.contains("http"),
        "the check does not say it is an HTTP plugin: {output}"
    );

    let server = GitHttpServer::start(&["alpha", "beta"]);
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["kind"], "http");
    let listen = fg
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    fg.add_toxic(
        "git",
        json!({"type": "gone-fishing", "stream": "upstream",
               "attributes": {"status": 410, "delay": 200, "path_prefix": "/git/alpha.git/"}}),
    )
    .await;
    let refs =
        |repo: &str| format!("http://{listen}/git/{repo}.git/info/refs?service=git-upload-pack");
    let started = Instant::now();
    let answer = reqwest::get(refs("alpha")).await.unwrap();
    assert_eq!(answer.status(), 410);
    assert_eq!(answer.text().await.unwrap(), "gone-fishing\n");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(reqwest::get(refs("beta")).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_plugin_builds_checks_loads_and_delays_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "slow-start", |lib| lib);

    let (code, output) = run_to_exit(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(0), "plugin check failed:\n{output}");
    assert!(output.contains("a valid faultgate plugin"), "{output}");
    assert!(output.contains("slow-start 0.1.0"), "{output}");
    assert!(output.contains("delay (integer, default 0)"), "{output}");

    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "upload answered {plugin}");
    assert_eq!(plugin["name"], "slow-start");
    assert!(plugin["source"]["upload"]["sha256"].is_string(), "{plugin}");

    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"type": "slow-start", "stream": "downstream", "attributes": {"delay": 300}}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        client
            .query_one("SELECT 5", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        5
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the plugin did not delay the query"
    );

    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"name": "bad", "type": "slow-start", "attributes": {"delay": "soon"}})),
        400,
        "delay",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_plugin_in_use_keeps_open_connections_on_the_old_version() {
    // A new `noop` that, unlike the built-in, delays by 300 ms by default.
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "noop", |lib| {
        lib.replace(
            "attribute::integer(\"delay\", 0,",
            "attribute::integer(\"delay\", 300,",
        )
        .replace("non_negative(\"delay\", 0,", "non_negative(\"delay\", 300,")
    });
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic("p", json!({"type": "noop", "stream": "upstream"}))
        .await;
    let mut before = TcpStream::connect(listen).await.unwrap();
    assert!(echo(&mut before, b"ping").await < Duration::from_millis(300));

    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(
        fg.expect("GET", "/plugins/noop", None, 200).await["summary"],
        plugin["summary"]
    );

    assert!(
        echo(&mut before, b"ping").await < Duration::from_millis(300),
        "an open connection changed plugin version"
    );
    let mut after = TcpStream::connect(listen).await.unwrap();
    assert!(
        echo(&mut after, b"ping").await >= Duration::from_millis(300),
        "a new connection kept the old version"
    );

    let (status, body) = fg.request("DELETE", "/plugins/noop", None).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("\"p\"") && message.contains("noop_upstream"),
        "{message}"
    );
    fg.remove_toxic("p", "noop_upstream").await;
    fg.expect("DELETE", "/plugins/noop", None, 204).await;
    let (status, _) = fg.request("GET", "/plugins/noop", None).await;
    assert_eq!(status, 404);

    let (status, body) = fg.upload_plugin(b"not a plugin".to_vec()).await;
    error_mentions(status, &body, 400, "not a WebAssembly file");
}

#[tokio::test]
async fn a_restart_takes_compiled_plugins_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let args = [
        "--plugin",
        plugin.to_str().unwrap(),
        "--plugin-cache",
        cache.path().to_str().unwrap(),
    ];

    let first = Faultgate::start(&args).await;
    assert!(first.log().contains("plugin compiled"), "{}", first.log());
    drop(first);
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(entries, 1, "expected one compiled plugin in the cache");

    let second = Faultgate::start(&args).await;
    assert!(
        second
            .log()
            .contains("plugin loaded from the compile cache"),
        "{}",
        second.log()
    );
    assert!(
        !second.log().contains("plugin compiled"),
        "{}",
        second.log()
    );
    second.expect("GET", "/plugins/misbehave", None, 200).await;
}

#[test]
fn plugin_check_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let noop = plugin_build_dir().join("faultgate_noop.wasm");
    let (code, output) = run_to_exit(&["plugin", "check", noop.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("noop 0.1.0 (tcp fault): Passes all data unchanged"),
        "{output}"
    );

    let mut random = vec![0u8; 4096];
    rand::RngCore::fill_bytes(
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3),
        &mut random,
    );
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "core.wasm",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        (
            "empty.wasm",
            b"\0asm\x0d\0\x01\0".to_vec(),
            "faultgate:plugin/meta",
        ),
        ("random.wasm", random, "not a WebAssembly file"),
        (
            "truncated.wasm",
            std::fs::read(&noop).unwrap()[..5000].to_vec(),
            "not a faultgate plugin component",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, output) = run_to_exit(&["plugin", "check", path.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name} passed the check:\n{output}");
        assert!(
            output.contains(name) && output.contains(expected),
            "{name}: {output}"
        );
    }
}

/// A plugin in another language than Rust: plugins/examples/wat-delay, written
/// by hand in the WebAssembly text format.
#[tokio::test]
async fn a_plugin_written_in_webassembly_text_delays_postgres() {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/wat-delay/wat-delay.wat");
    let (code, output) = run_to_exit(&["plugin", "check", source.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");

    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&source).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["name"], "wat-delay");

    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    // A type Toxiproxy does not have is read strictly: an attribute it
    // does not take is refused, naming what it takes.
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"type": "wat-delay", "attributes": {"delay": 1}})),
        400,
        "takes no attributes",
    )
    .await;

    fg.add_toxic("pg", json!({"type": "wat-delay", "stream": "downstream"}))
        .await;
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(
            client
                .query_one("SELECT 3", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            3
        );
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "wat-delay did not delay"
        );
    }
}

/// A replacement that would reject the attributes of a toxic in use is
/// refused, and the old plugin stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_rejects_a_live_toxic_changes_nothing() {
    // A `latency` that knows only `delay` and `reset_after`.
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold_and_build(dir.path(), "latency", |lib| lib);
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 300}}),
    )
    .await;

    let (status, body) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    let message = error_mentions(status, &body, 400, "latency_upstream");
    assert!(
        message.contains("\"p\"") && message.contains("latency"),
        "{message}"
    );

    let plugin = fg.expect("GET", "/plugins/latency", None, 200).await;
    assert_eq!(plugin["source"], "builtin");
    let mut stream = TcpStream::connect(listen).await.unwrap();
    assert!(echo(&mut stream, b"still").await >= Duration::from_millis(300));
}
