//! faultgate's image, run in a container engine and driven from the host:
//! its health check, the control API on a port published on 127.0.0.1, a
//! proxy to a real Postgres (a container of its own) whose faults are seen
//! by a client on the host, `docker stop`, its non-root user, plugins and
//! their compile cache on mounted volumes, and Toxiproxy's server flags.
//!
//! The image is built from the repository's Dockerfile with this run's own
//! binary (see `support::container::faultgate_image`); the build from source
//! is `container_build.rs`. Needs an engine at `DOCKER_HOST`
//! (`scripts/container-engine`; `./scripts/test` sets one up).

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::container::{Container, Network, Volume, faultgate_image, repo_root, stand_in_image};

const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

/// A faultgate container on `network` with the control API published on
/// 127.0.0.1, once its health check passes.
fn faultgate(network: &Network, options: &[&str], command: &[&str]) -> Container {
    let mut all = vec!["-p", "127.0.0.1::8474"];
    all.extend(options);
    let container = Container::run(network, &all, faultgate_image(), command);
    container.wait_healthy(HEALTHY_WITHIN);
    container
}

async fn api(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::faultgate::api_request(&reqwest::Client::new(), base, method, path, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_turns_healthy_and_serves_the_api_on_loopback_as_a_non_root_user() {
    let network = Network::create();
    let fg = faultgate(&network, &[], &[]);

    let (status, version) = api(&fg.api(), "GET", "/version", None).await;
    assert_eq!(status, 200);
    assert_eq!(version["faultgate"], env!("CARGO_PKG_VERSION"));
    let (status, _) = api(&fg.api(), "GET", "/healthz", None).await;
    assert_eq!(status, 200);

    // The image's user, and the process's own ids (PID 1 of the container).
    assert_eq!(fg.inspect("{{.Config.User}}"), "faultgate");
    let status = fg.exec(&["cat", "/proc/1/status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid in /proc/1/status");
    assert!(
        uid.split_whitespace().all(|id| id == "10001"),
        "faultgate runs with uids {uid}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_made_through_the_api_relays_to_postgres_and_its_fault_reaches_the_host() {
    let network = Network::create();
    let postgres = Container::run(
        &network,
        &[
            "--network-alias",
            "postgres",
            "-e",
            "POSTGRES_PASSWORD=postgres",
        ],
        &stand_in_image("postgres"),
        &[],
    );
    let fg = faultgate(&network, &["-p", "127.0.0.1::15432"], &[]);
    let (status, created) = api(
        &fg.api(),
        "POST",
        "/proxies",
        Some(json!({"name": "pg", "mode": "postgres", "listen": "0.0.0.0:15432", "upstream": "postgres:5432"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // The stand-in makes its cluster at its first start: wait until it
    // answers through the proxy.
    let address = fg.published("15432");
    let connect = format!(
        "host=127.0.0.1 port={} user=postgres password=postgres dbname=postgres connect_timeout=5",
        address.port()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        match tokio_postgres::connect(&connect, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!(
                "Postgres did not answer through the proxy: {error}\npostgres:\n{}",
                postgres.logs()
            ),
        }
    };
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);

    // A fault switched on through the published API: the server itself
    // raises the error in place of the matching statement.
    let (status, toxic) = api(
        &fg.api(),
        "POST",
        "/proxies/pg/toxics",
        Some(
            json!({"name": "fail_marked", "type": "pg_error", "stream": "upstream",
                    "attributes": {"sqlstate": "40001", "sql_regex": "marked"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{toxic}");
    let error = client
        .batch_execute("SELECT 'marked'")
        .await
        .expect_err("the statement the fault matches fails");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    // The session goes on; other statements are untouched.
    let two: i32 = client.query_one("SELECT 2", &[]).await.unwrap().get(0);
    assert_eq!(two, 2);

    let (status, _) = api(&fg.api(), "DELETE", "/proxies/pg/toxics/fail_marked", None).await;
    assert_eq!(status, 204);
    client.batch_execute("SELECT 'marked'").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_stop_ends_it_with_exit_code_0_within_the_grace_period() {
    let network = Network::create();
    let fg = faultgate(&network, &["-p", "127.0.0.1::8666"], &[]);
    // A connection held open through a proxy (to the container's own API):
    // faultgate waits for it up to its shutdown grace, which must end
    // before the engine's stop timeout (10 s) kills the container.
    let (status, created) = api(
        &fg.api(),
        "POST",
        "/proxies",
        Some(json!({"name": "own_api", "listen": "0.0.0.0:8666", "upstream": "127.0.0.1:8474"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let mut open = std::net::TcpStream::connect(fg.published("8666")).unwrap();
    open.write_all(b"GET /version HTTP/1.1\r\nHost: faultgate\r\n\r\n")
        .unwrap();
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = [0u8; 12];
    open.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");

    let stop = std::thread::spawn({
        let name = fg.name.clone();
        move || {
            support::container::docker(&["stop", &name], Duration::from_secs(30));
        }
    });
    // faultgate closes the connection it waited for, at the end of its
    // grace (the image's 5 s), then exits by itself.
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest);
    stop.join().unwrap();
    assert_eq!(
        fg.inspect("{{.State.ExitCode}} {{.State.OOMKilled}}"),
        "0 false",
        "faultgate did not exit by itself with 0; its log:\n{}",
        fg.logs()
    );
    let log = fg.logs();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_load_from_a_mounted_directory_and_their_compiled_form_stays_in_a_cache_volume() {
    let network = Network::create();
    // A host directory the image's user can read, as a user would mount it.
    let plugins = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        plugins.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let wat = plugins.path().join("wat-delay.wat");
    std::fs::copy(
        repo_root().join("plugins/examples/wat-delay/wat-delay.wat"),
        &wat,
    )
    .unwrap();
    std::fs::set_permissions(&wat, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let cache = Volume::create();
    let mounts = [
        "-v".to_owned(),
        format!("{}:/plugins:ro", plugins.path().display()),
        "-v".to_owned(),
        format!("{}:/var/lib/faultgate/cache", cache.name),
    ];
    let mounts: Vec<&str> = mounts.iter().map(String::as_str).collect();

    let first = faultgate(&network, &mounts, &["serve", "--plugin", "/plugins"]);
    let (status, plugin) = api(&first.api(), "GET", "/plugins/wat-delay", None).await;
    assert_eq!(status, 200, "{plugin}");
    assert!(first.logs().contains("plugin compiled"), "{}", first.logs());
    drop(first);

    let second = faultgate(&network, &mounts, &["serve", "--plugin", "/plugins"]);
    let log = second.logs();
    assert!(
        log.contains("plugin loaded from the compile cache"),
        "the second container compiled the plugin again:\n{log}"
    );
    assert!(!log.contains("plugin compiled"), "{log}");
    let (status, _) = api(&second.api(), "GET", "/plugins/wat-delay", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn toxiproxy_server_flags_run_it_as_testcontainers_go_module_does() {
    let network = Network::create();
    // Toxiproxy's JSON proxies file, mounted where the Go module copies it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = dir.path().join("tc-toxiproxy.json");
    std::fs::write(
        &config,
        r#"[{"name": "own_api", "listen": "0.0.0.0:8666", "upstream": "127.0.0.1:8474", "enabled": true}]"#,
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mount = format!("{}:/tmp/tc-toxiproxy.json:ro", config.display());
    // In place of the image's command, as the module appends the flags.
    let fg = faultgate(
        &network,
        &["-v", &mount, "-p", "127.0.0.1::8666"],
        &[
            "-host=0.0.0.0",
            "-config=/tmp/tc-toxiproxy.json",
            "-proxy-metrics",
            "-runtime-metrics",
        ],
    );
    let (status, proxies) = api(&fg.api(), "GET", "/proxies", None).await;
    assert_eq!(status, 200);
    assert_eq!(proxies["own_api"]["listen"], "0.0.0.0:8666", "{proxies}");
    // The proxy from the file relays: the API answers through it.
    let through = format!("http://{}", fg.published("8666"));
    let (status, version) = api(&through, "GET", "/version", None).await;
    assert_eq!(status, 200);
    assert_eq!(version["faultgate"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_engine_script_says_which_engine_does_not_answer_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/no-engine.sock", dir.path().display());
    let output = support::container::run_bounded(
        std::process::Command::new(repo_root().join("scripts/container-engine"))
            .env("DOCKER_HOST", &socket),
        Duration::from_secs(60),
    );
    let said = support::container::text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(output.stdout.is_empty(), "printed an engine: {said}");
    assert!(
        said.contains(&format!("DOCKER_HOST={socket} does not answer"))
            && said.contains("unset DOCKER_HOST"),
        "{said}"
    );
}
