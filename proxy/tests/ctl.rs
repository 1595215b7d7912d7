//! The verbs that switch faults by hand (`faultgate list`, `inspect`,
//! `create`, `delete`, `toggle`, `toxic add|update|remove`, `plugins`),
//! run as a person runs them, against a live faultgate serving real
//! traffic.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::faultgate::Faultgate;
use support::free_port;
use support::peers::echo_server;

/// What one run printed, and how it exited.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--json printed no JSON ({e}): {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        self
    }
}

/// Runs `faultgate ARGS...` with `env`, without the API variables of the
/// test's own environment; killed after 30 s.
async fn faultgate_with(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultgate"));
    command
        .args(args)
        .env_remove("FAULTGATE_API")
        .env_remove("TOXIPROXY_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("starting faultgate");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ran {
            code: status.code(),
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

/// `faultgate ARGS... --api API`.
async fn ctl(api: &str, args: &[&str]) -> Ran {
    let mut all = args.to_vec();
    all.extend(["--api", api]);
    faultgate_with(&all, &[]).await
}

/// Sends `data` through `addr` and reads as much back, within `within`;
/// `None` if it did not all come back in time.
async fn echo_within(addr: &str, data: &[u8], within: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(data).await.ok()?;
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(within, stream.read_exact(&mut back))
        .await
        .ok()?
        .ok()?;
    Some(back)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_verb_switches_faults_on_a_live_proxy() {
    let (echo, _reads) = echo_server().await;
    let faultgate = Faultgate::start(&[]).await;
    let api = faultgate.api.as_str();
    let upstream = echo.to_string();

    let created = ctl(
        api,
        &["create", "echo", "-l", "127.0.0.1:0", "-u", &upstream],
    )
    .await
    .ok();
    assert!(
        created
            .stdout
            .starts_with("created proxy echo: listening on 127.0.0.1:"),
        "{created:?}"
    );
    let listed = ctl(api, &["list", "--json"]).await.ok().json();
    let listen = listed["echo"]["listen"].as_str().unwrap().to_owned();
    assert_eq!(listed["echo"]["upstream"], upstream.as_str());
    assert_eq!(
        echo_within(&listen, b"hello", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"hello"[..]),
        "the proxy made by `create` does not carry traffic"
    );

    // A fault that holds what the client sends, added and removed by hand.
    let added = ctl(
        api,
        &[
            "toxic",
            "add",
            "echo",
            "-t",
            "blackhole",
            "-n",
            "hang",
            "-u",
        ],
    )
    .await
    .ok();
    assert_eq!(
        added.stdout,
        "added upstream blackhole toxic hang on proxy echo: toxicity 1.0, -\n"
    );
    // The change made by hand is told in faultgate's log, at info.
    support::eventually("the change is logged", Duration::from_secs(5), || async {
        faultgate.log().lines().any(|l| {
            l.contains(" INFO ")
                && l.contains("fault changed")
                && l.contains(r#"toxic="hang" type=blackhole"#)
                && l.contains(r#"call="POST /proxies/echo/toxics""#)
        })
    })
    .await;
    let mut held = TcpStream::connect(&listen).await.unwrap();
    held.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), held.read_exact(&mut back))
            .await
            .is_err(),
        "the blackhole added by `toxic add` let data through"
    );

    // Toxiproxy's spellings: --toxicName, --attribute, --tox, --downstream.
    ctl(
        api,
        &[
            "toxic",
            "add",
            "echo",
            "--type",
            "latency",
            "--toxicName",
            "lag",
            "--attribute",
            "latency=40",
            "-a",
            "jitter=0",
            "--tox",
            "0.5",
            "--downstream",
        ],
    )
    .await
    .ok();
    let toxics = faultgate.toxics("echo").await;
    let lag = toxics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lag")
        .unwrap()
        .clone();
    assert_eq!(
        lag["attributes"]["latency"], 40,
        "numbers go as numbers: {lag}"
    );
    assert_eq!(lag["toxicity"], 0.5);
    assert_eq!(lag["stream"], "downstream");

    let updated = ctl(
        api,
        &["toxic", "update", "echo", "-n", "lag", "-a", "latency=75"],
    )
    .await
    .ok();
    assert!(updated.stdout.contains("latency=75"), "{updated:?}");
    let lag = faultgate
        .expect("GET", "/proxies/echo/toxics/lag", None, 200)
        .await;
    assert_eq!(lag["attributes"]["latency"], 75);
    assert_eq!(lag["toxicity"], 0.5, "update changed what it was not given");

    // The faults show under their proxy, in aligned columns.
    let list = ctl(api, &["list"]).await.ok().stdout;
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    let column = |line: &str, word: &str| {
        line.find(word)
            .unwrap_or_else(|| panic!("{word} not in {line:?}"))
    };
    assert_eq!(
        column(lines[0], "LISTEN"),
        column(lines[1], &listen),
        "columns not aligned:\n{list}"
    );
    assert!(
        lines[1].starts_with("echo ") && lines[1].contains("enabled"),
        "{list}"
    );
    assert!(
        lines[1].trim_end().ends_with('2'),
        "the toxics' count: {list}"
    );
    let hang = lines
        .iter()
        .find(|l| l.trim_start().starts_with("hang "))
        .unwrap();
    assert!(
        hang.starts_with("    ") && hang.contains("blackhole") && hang.contains("upstream"),
        "{list}"
    );
    let lag_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("lag "))
        .unwrap();
    assert!(
        lag_line.contains("latency=75") && lag_line.contains("0.5"),
        "{list}"
    );

    let inspected = ctl(api, &["inspect", "echo"]).await.ok().stdout;
    let upstream_part = inspected.split("downstream toxics").next().unwrap();
    assert!(inspected.contains("enabled:   enabled"), "{inspected}");
    assert!(
        upstream_part.contains("hang") && !upstream_part.contains("lag "),
        "{inspected}"
    );
    assert!(
        inspected
            .split("downstream toxics")
            .nth(1)
            .unwrap()
            .contains("lag"),
        "{inspected}"
    );
    let inspected = ctl(api, &["inspect", "echo", "--json"]).await.ok().json();
    assert_eq!(inspected["toxics"].as_array().unwrap().len(), 2);

    let removed = ctl(api, &["toxic", "remove", "echo", "-n", "hang"])
        .await
        .ok();
    assert_eq!(removed.stdout, "removed toxic hang from proxy echo\n");
    tokio::time::timeout(Duration::from_secs(5), held.read_exact(&mut back))
        .await
        .expect("the held data was not released by `toxic remove`")
        .unwrap();
    assert_eq!(&back, b"ping");
    // Toxiproxy's `toxic delete` spelling removes too.
    ctl(api, &["toxic", "delete", "echo", "--toxicName", "lag"])
        .await
        .ok();
    assert_eq!(faultgate.toxics("echo").await, serde_json::json!([]));

    let toggled = ctl(api, &["toggle", "echo"]).await.ok();
    assert_eq!(toggled.stdout, "proxy echo is now disabled\n");
    assert_eq!(
        echo_within(&listen, b"x", Duration::from_millis(500)).await,
        None,
        "a disabled proxy carried traffic"
    );
    let toggled = ctl(api, &["toggle", "echo", "--json"]).await.ok().json();
    assert_eq!(toggled["enabled"], true);
    assert!(
        echo_within(&listen, b"again", Duration::from_secs(5))
            .await
            .is_some()
    );

    let deleted = ctl(api, &["delete", "echo"]).await.ok();
    assert_eq!(deleted.stdout, "deleted proxy echo\n");
    assert_eq!(
        ctl(api, &["list", "--json"]).await.ok().json(),
        serde_json::json!({})
    );
    let empty = ctl(api, &["list"]).await.ok();
    assert!(empty.stdout.starts_with("no proxies"), "{empty:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_lists_each_type_with_its_attributes_and_defaults() {
    let faultgate = Faultgate::start(&[]).await;
    let text = ctl(&faultgate.api, &["plugins"]).await.ok().stdout;
    let latency = text
        .split("\n\n")
        .find(|block| block.starts_with("latency ("))
        .unwrap_or_else(|| panic!("no latency in:\n{text}"));
    let jitter = latency
        .lines()
        .find(|l| l.trim_start().starts_with("jitter "))
        .unwrap_or_else(|| panic!("no jitter attribute in:\n{latency}"));
    assert!(
        jitter.contains(" 0 "),
        "jitter's default 0 is not shown: {jitter}"
    );
    let json = ctl(&faultgate.api, &["plugins", "--json"])
        .await
        .ok()
        .json();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"latency") && names.contains(&"http_blackhole"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_exits_2_saying_where_it_looked() {
    let address = format!("127.0.0.1:{}", free_port());
    for args in [&["list"][..], &["toxic", "add", "p", "-t", "latency"]] {
        let ran = ctl(&address, args).await;
        assert_eq!(ran.code, Some(2), "{ran:?}");
        assert!(
            ran.stderr
                .contains(&format!("cannot reach faultgate at {address}"))
                && ran.stderr.contains("refused")
                && ran.stderr.contains("is `faultgate serve` running?"),
            "{ran:?}"
        );
        assert!(ran.stdout.is_empty(), "{ran:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_exits_1_with_the_apis_status_and_message() {
    let (echo, _reads) = echo_server().await;
    let faultgate = Faultgate::start(&[]).await;
    faultgate.proxy("echo", echo).await;
    let api = faultgate.api.as_str();

    let ran = ctl(api, &["toxic", "remove", "echo", "-n", "nothing"]).await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("404") && ran.stderr.contains("toxic not found"),
        "{ran:?}"
    );

    let ran = ctl(api, &["inspect", "nosuch", "--json"]).await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("404") && ran.stderr.contains("proxy not found"),
        "{ran:?}"
    );

    let ran = ctl(api, &["toxic", "add", "echo", "-t", "no_such_type"]).await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("no_such_type"), "{ran:?}");
    assert_eq!(
        faultgate.toxics("echo").await,
        serde_json::json!([]),
        "a refusal changed something"
    );

    let ran = ctl(
        api,
        &["create", "echo", "-l", "127.0.0.1:0", "-u", "127.0.0.1:1"],
    )
    .await;
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("409"), "{ran:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_exits_2_before_asking_the_api() {
    let faultgate = Faultgate::start(&[]).await;
    let api = faultgate.api.as_str();
    for (args, mentions) in [
        (&["toxic", "add", "p"][..], "--type"),
        (
            &["toxic", "add", "p", "-t", "latency", "-a", "latency"],
            "key=value",
        ),
        (
            &["toxic", "add", "p", "-t", "latency", "--tox", "2"],
            "toxicity",
        ),
        (
            &["toxic", "add", "p", "-t", "latency", "-u", "-d"],
            "--downstream",
        ),
        (&["toxic", "update", "p", "-n", "lag"], "nothing to update"),
        (&["create", "p", "-l", "127.0.0.1:0"], "--upstream"),
    ] {
        let ran = ctl(api, args).await;
        assert_eq!(ran.code, Some(2), "{args:?}: {ran:?}");
        assert!(ran.stderr.contains(mentions), "{args:?}: {ran:?}");
    }
    let help = faultgate_with(&["toxic", "add", "--help"], &[]).await.ok();
    assert!(help.stdout.contains("Exit codes: 0"), "{help:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_comes_from_the_environment_or_toxiproxy_clis_flag() {
    let (echo, _reads) = echo_server().await;
    let faultgate = Faultgate::start(&[]).await;
    faultgate.proxy("echo", echo).await;
    let api = faultgate.api.as_str();
    let address = api.trim_start_matches("http://");
    let dead = format!("127.0.0.1:{}", free_port());

    let by_env = faultgate_with(&["list", "--json"], &[("FAULTGATE_API", address)])
        .await
        .ok();
    assert!(by_env.json()["echo"].is_object(), "{by_env:?}");
    let by_toxiproxy_env = faultgate_with(&["list", "--json"], &[("TOXIPROXY_URL", api)])
        .await
        .ok();
    assert!(by_toxiproxy_env.json()["echo"].is_object());
    // FAULTGATE_API wins over TOXIPROXY_URL, and a flag over both.
    let ran = faultgate_with(
        &["list", "--json"],
        &[("FAULTGATE_API", &dead), ("TOXIPROXY_URL", api)],
    )
    .await;
    assert_eq!(ran.code, Some(2), "{ran:?}");
    let by_flag = faultgate_with(
        &["list", "--json", "--host", api],
        &[("FAULTGATE_API", &dead)],
    )
    .await
    .ok();
    assert!(by_flag.json()["echo"].is_object());
}
