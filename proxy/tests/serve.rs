//! `faultgate serve` as a process: graceful shutdown on SIGTERM.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::git_http::{self, GitHttpServer, run_git};

/// A git server whose repository "big" holds `size` bytes that do not
/// compress, so a clone of it takes as long as its bandwidth says.
fn server_with_data(size: usize) -> GitHttpServer {
    let server = GitHttpServer::start(&["big"]);
    let work = server.scratch().join("seed");
    run_git(
        &server.scratch(),
        &[
            "clone",
            "-q",
            server.repo_path("big").to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(work.join("data.bin"), data).unwrap();
    run_git(&work, &["add", "data.bin"]);
    run_git(&work, &["commit", "-q", "-m", "data"]);
    run_git(&work, &["push", "-q", "origin", "main"]);
    server
}

/// faultgate with a tcp proxy "git" to `server` limited to `rate` KB/s
/// downstream; the clone URL of "big" through it.
async fn slow_proxy(faultgate: &Faultgate, server: &GitHttpServer, rate: u64) -> String {
    let listen = faultgate.proxy("git", server.address()).await;
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "bandwidth", "attributes": { "rate": rate } }),
        )
        .await;
    format!("http://{listen}/git/big.git")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_transfer_in_flight_finish_and_exits_0() {
    let server = server_with_data(300_000);
    let mut faultgate = Faultgate::start(&["--shutdown-grace", "20s"]).await;
    // ~300 KB at 150 KB/s: about two seconds.
    let url = slow_proxy(&faultgate, &server, 150).await;
    let listen = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let dest = server.scratch().join("clone");
    let clone = tokio::spawn(git_http::clone(url, dest.clone(), None));
    support::eventually(
        "the clone is under way",
        Duration::from_secs(10),
        || async { faultgate.metric("faultgate_connections_open", "git").await > 0 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    faultgate.signal(libc::SIGTERM);
    support::eventually(
        "new connections are refused",
        Duration::from_secs(5),
        || async { tokio::net::TcpStream::connect(&listen).await.is_err() },
    )
    .await;
    let out = clone.await.unwrap();
    assert!(
        out.status.success(),
        "the transfer in flight was cut: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(dest.join("data.bin")).unwrap().len(),
        300_000
    );
    let code = tokio::task::block_in_place(|| faultgate.wait_exit(Duration::from_secs(10)));
    assert_eq!(
        code,
        Some(0),
        "faultgate did not exit 0 after the transfer:\n{}",
        faultgate.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grace_period_bounds_the_wait_and_the_exit_is_still_0() {
    let server = server_with_data(300_000);
    let mut faultgate = Faultgate::start(&["--shutdown-grace", "1s"]).await;
    // ~300 KB at 20 KB/s: fifteen seconds, far past the grace.
    let url = slow_proxy(&faultgate, &server, 20).await;
    let dest = server.scratch().join("clone");
    let clone = tokio::spawn(git_http::clone(url, dest, None));
    support::eventually(
        "the clone is under way",
        Duration::from_secs(10),
        || async { faultgate.metric("faultgate_connections_open", "git").await > 0 },
    )
    .await;
    let signalled = Instant::now();
    faultgate.signal(libc::SIGTERM);
    let code = tokio::task::block_in_place(|| faultgate.wait_exit(Duration::from_secs(10)));
    assert_eq!(code, Some(0), "{}", faultgate.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "the grace of 1 s was not kept: {:?}",
        signalled.elapsed()
    );
    assert!(
        faultgate
            .log()
            .contains("closing the connections still open"),
        "{}",
        faultgate.log()
    );
    let out = clone.await.unwrap();
    assert!(
        !out.status.success(),
        "a transfer longer than the grace finished"
    );
}

/// `faultgate serve ARGS --print-config` with `env`: exit code and output.
fn print_config(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .arg("serve")
        .args(args)
        .arg("--print-config")
        .env_remove("FAULTGATE_API")
        .env_remove("FAULTGATE_SEED")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The line of `--print-config` output for `key`.
fn setting<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{output}"))
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faultgate.toml");
    std::fs::write(
        &file,
        "[serve]\napi = \"127.0.0.1:9001\"\nseed = 1\nshutdown_grace = \"3s\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (code, out) = print_config(
        &["--config", config, "--api", "127.0.0.1:9003"],
        &[("FAULTGATE_API", "127.0.0.1:9002"), ("FAULTGATE_SEED", "2")],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        setting(&out, "api").contains("\"127.0.0.1:9003\"")
            && setting(&out, "api").ends_with("# flag --api"),
        "{out}"
    );
    assert!(
        setting(&out, "seed").starts_with("seed = 2 ")
            && setting(&out, "seed").ends_with("# environment FAULTGATE_SEED"),
        "{out}"
    );
    assert!(
        setting(&out, "shutdown_grace").contains("\"3s\"")
            && setting(&out, "shutdown_grace").contains(config),
        "{out}"
    );
    assert!(setting(&out, "log_format").contains("\"json\""), "{out}");
    assert!(
        setting(&out, "plugin_memory_mib").ends_with("# default"),
        "{out}"
    );

    // Without the flag, the environment; without either, the file.
    let (_, out) = print_config(
        &["--config", config],
        &[("FAULTGATE_API", "127.0.0.1:9002")],
    );
    assert!(setting(&out, "api").contains("127.0.0.1:9002"), "{out}");
    let (_, out) = print_config(&["--config", config], &[]);
    assert!(setting(&out, "api").contains("127.0.0.1:9001"), "{out}");
    assert!(setting(&out, "seed").starts_with("seed = 1 "), "{out}");
}

#[test]
fn bad_settings_name_the_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[serve]\napi = \"nowhere\"\n", "serve.api in"),
        (
            "[serve]\nplugin_memory_mib = 500\n",
            "serve.plugin_memory_mib in",
        ),
        (
            "[serve]\nshutdown_grace = \"later\"\n",
            "serve.shutdown_grace in",
        ),
        ("[serve]\nlog_format = \"xml\"\n", "serve.log_format in"),
        ("[serve]\napi_port = 1\n", "api_port"),
    ];
    for (text, mentions) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let (code, out) = print_config(&["--config", file.to_str().unwrap()], &[]);
        assert_eq!(code, Some(2), "{text}: {out}");
        assert!(out.contains(mentions), "{text}: {out}");
        assert!(out.contains("bad.toml"), "{text}: {out}");
    }
    let (code, out) = print_config(&[], &[("FAULTGATE_SEED", "soon")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "environment variable FAULTGATE_SEED, for --seed: \"soon\" is not a whole number"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let faultgate = Faultgate::start(&["--log-format", "json"]).await;
    faultgate.proxy("p", "127.0.0.1:1").await;
    support::eventually(
        "the proxy's start is logged",
        Duration::from_secs(5),
        || async { faultgate.log().contains("proxy listening") },
    )
    .await;
    let log = faultgate.log();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            object["level"].is_string() && object["fields"].is_object(),
            "{line}"
        );
    }
}
