//! What the live page (`GET /ui`) reads, each endpoint on its own: `GET
//! /stats` (every proxy's counters), `GET /events` (the recent changes and
//! plugin failures, also logged), the page and its assets, and what a
//! browser may ask of the API (only reads, only from the page itself).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::faultgate::{Faultgate, plugin_build_dir};
use support::peers::{echo, echo_server, read_to_end};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";

async fn stats(fg: &Faultgate, proxy: &str) -> Value {
    let all = fg.expect("GET", "/stats", None, 200).await;
    assert!(all["at_ms"].as_u64().unwrap() > 1_700_000_000_000, "{all}");
    all["proxies"][proxy].clone()
}

#[tokio::test]
async fn stats_count_bytes_each_way_and_connections() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let listen = fg.proxy("echo", echo_addr).await;
    let quiet = stats(&fg, "echo").await;
    assert_eq!(quiet["bytes_upstream"], 0, "{quiet}");
    assert_eq!(quiet["connections_total"], 0, "{quiet}");

    let mut stream = TcpStream::connect(listen).await.unwrap();
    let sent = vec![7u8; 100_000];
    echo(&mut stream, &sent).await;
    support::eventually(
        "the echo counted both ways",
        Duration::from_secs(5),
        || async {
            let s = stats(&fg, "echo").await;
            s["bytes_downstream"] == 100_000 && s["bytes_upstream"] == 100_000
        },
    )
    .await;
    let counted = stats(&fg, "echo").await;
    assert_eq!(counted["bytes_upstream"], 100_000, "{counted}");
    assert_eq!(counted["connections_open"], 1, "{counted}");
    assert_eq!(counted["connections_total"], 1, "{counted}");
    assert_eq!(counted["plugin_failures"], 0, "{counted}");

    // A fault that acts is counted, and the bytes it lets through.
    fg.add_toxic(
        "echo",
        json!({"name": "lag", "type": "latency", "attributes": {"latency": 10}}),
    )
    .await;
    let mut second = TcpStream::connect(listen).await.unwrap();
    echo(&mut second, b"hello").await;
    stream.shutdown().await.unwrap();
    let _ = read_to_end(&mut stream).await;
    support::eventually(
        "the second connection counted",
        Duration::from_secs(5),
        || async {
            let s = stats(&fg, "echo").await;
            s["bytes_downstream"] == 100_005
                && s["connections_total"] == 2
                && s["connections_open"] == 1
                && s["faults_injected"].as_u64().unwrap() >= 1
        },
    )
    .await;
}

async fn events(fg: &Faultgate, after: u64) -> (Vec<Value>, u64) {
    let answer = fg
        .expect("GET", &format!("/events?after={after}"), None, 200)
        .await;
    (
        answer["events"].as_array().unwrap().clone(),
        answer["last_id"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn every_change_is_an_event_and_a_log_line_and_a_refused_one_is_neither() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    fg.proxy("db", echo_addr).await;
    let (_, start) = events(&fg, 0).await;

    fg.add_toxic(
        "db",
        json!({"name": "lag", "type": "latency", "attributes": {"latency": 100}}),
    )
    .await;
    fg.expect(
        "POST",
        "/proxies/db/toxics/lag",
        Some(json!({"attributes": {"latency": 250}})),
        200,
    )
    .await;
    // Refused: nothing changed, nothing told.
    fg.expect_error(
        "POST",
        "/proxies/db/toxics",
        Some(json!({"type": "no_such_fault"})),
        400,
        "no_such_fault",
    )
    .await;
    fg.expect(
        "PUT",
        "/proxies/db/toxics",
        Some(json!([{"name": "cut", "type": "reset_peer"}])),
        200,
    )
    .await;
    fg.remove_toxic("db", "cut").await;
    fg.set_enabled("db", false).await;
    fg.set_enabled("db", true).await;

    let (told, last) = events(&fg, start).await;
    let kinds: Vec<&str> = told.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "toxic_added",
            "toxic_updated",
            "toxics_replaced",
            "toxic_removed",
            "proxy_disabled",
            "proxy_enabled"
        ],
        "{told:#?}"
    );
    assert_eq!(last, start + 6);
    assert!(told.iter().all(|e| e["proxy"] == "db"));
    let message = |i: usize| told[i]["message"].as_str().unwrap().to_owned();
    assert_eq!(told[0]["toxic"], "lag");
    assert!(
        message(0).contains("latency") && message(0).contains("latency=100"),
        "{}",
        message(0)
    );
    assert_eq!(message(1), "updated: latency 100 -> 250");
    assert_eq!(message(2), "chain replaced: [lag] -> [cut]");
    assert!(message(3).contains("reset_peer"), "{}", message(3));
    // Ids go up; asking after the last gives nothing.
    assert!(
        told.windows(2)
            .all(|w| w[0]["id"].as_u64() < w[1]["id"].as_u64())
    );
    assert_eq!(events(&fg, last).await.0, Vec::<Value>::new());

    let log = fg.log();
    for line in [
        r#"toxic="lag" type=latency change="added latency"#,
        r#"call="POST /proxies/db/toxics/lag""#,
        r#"change="updated: latency 100 -> 250""#,
        r#"before=lag after=cut call="PUT /proxies/db/toxics""#,
        r#"toxic="lag" type=latency change="removed by replacing the chain" call="PUT /proxies/db/toxics""#,
        r#"toxic="cut" type=reset_peer change="added reset_peer"#,
        r#"toxic="cut" type=reset_peer change="removed reset_peer"#,
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(" INFO ") && l.contains(line)),
            "no info line with {line} in:\n{log}"
        );
    }

    fg.expect_error("GET", "/events?after=soon", None, 400, "after")
        .await;
}

#[tokio::test]
async fn connections_a_plugin_failed_become_one_event_naming_the_fault() {
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let plugin = plugin.to_str().unwrap().to_owned();
    let fg = Faultgate::start(&["--plugin", &plugin, "--plugin-deadline-ms", "50"]).await;
    let (echo_addr, _) = echo_server().await;
    let listen = fg.proxy("broken", echo_addr).await;
    fg.add_toxic(
        "broken",
        json!({"name": "trips", "type": "misbehave", "stream": "upstream",
               "attributes": {"behaviour": "trap", "trigger": "boom"}}),
    )
    .await;
    let (_, start) = events(&fg, 0).await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    stream.write_all(b"boom").await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), read_to_end(&mut stream))
        .await
        .expect("the failed connection ends");
    support::eventually("the failure is counted", Duration::from_secs(5), || async {
        stats(&fg, "broken").await["plugin_failures"] == 1
    })
    .await;
    let failures: Vec<Value> = events(&fg, start)
        .await
        .0
        .into_iter()
        .filter(|e| e["kind"] == "plugin_failures")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let message = failures[0]["message"].as_str().unwrap();
    assert_eq!(failures[0]["proxy"], "broken");
    assert!(
        message.starts_with("1 connection or request failed by a plugin: trips (misbehave)"),
        "{message}"
    );
    // Told once: looking again adds nothing.
    let (_, last) = events(&fg, 0).await;
    assert_eq!(events(&fg, last).await.0, Vec::<Value>::new());
}

/// A request as a browser makes it: its user agent, `Sec-Fetch-Site`, and
/// the address it was given.
async fn from_browser(
    fg: &Faultgate,
    method: &str,
    path: &str,
    site: Option<&str>,
    host: Option<&str>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", fg.api))
        .header("User-Agent", BROWSER)
        .timeout(Duration::from_secs(10));
    if let Some(site) = site {
        request = request.header("Sec-Fetch-Site", site);
    }
    if let Some(host) = host {
        request = request.header("Host", host);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_browser_reads_from_the_page_itself_and_changes_nothing() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    fg.proxy("db", echo_addr).await;

    // The page, typed into the address bar, and what it loads.
    let page = from_browser(&fg, "GET", "/ui", Some("none"), None).await;
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/ui/live.js") && html.contains("/ui/live.css"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page refers to another site: {html}"
    );
    for (asset, kind) in [
        ("/ui/live.js", "text/javascript"),
        ("/ui/live.css", "text/css"),
    ] {
        let answer = from_browser(&fg, "GET", asset, Some("same-origin"), None).await;
        assert_eq!(answer.status(), 200, "{asset}");
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let text = answer.text().await.unwrap();
        assert!(!text.contains("https://"), "{asset} refers to another site");
    }
    for path in ["/proxies", "/stats", "/events", "/proxies/db"] {
        let answer = from_browser(&fg, "GET", path, Some("same-origin"), None).await;
        assert_eq!(answer.status(), 200, "{path}");
    }
    let answer = from_browser(&fg, "GET", "/stats", Some("same-origin"), Some("localhost")).await;
    assert_eq!(answer.status(), 200);

    // Changing anything from a browser is refused, even from the page.
    let add = json!({"name": "lag", "type": "latency"}).to_string();
    for (method, path) in [
        ("POST", "/proxies/db/toxics"),
        ("DELETE", "/proxies/db"),
        ("PATCH", "/proxies/db"),
        ("POST", "/reset"),
    ] {
        let mut request = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", fg.api),
            )
            .header("User-Agent", BROWSER)
            .header("Sec-Fetch-Site", "same-origin");
        if method != "DELETE" {
            request = request.body(add.clone());
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 403, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "User agent not allowed", "status": 403})
        );
    }
    // Another site's page: its reads are refused too, and so is a browser
    // that does not say where the request comes from.
    for site in [Some("cross-site"), Some("same-site"), None] {
        let answer = from_browser(&fg, "GET", "/proxies", site, None).await;
        assert_eq!(answer.status(), 403, "{site:?}");
        let body: Value = answer.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("only read, from a page of this API"),
            "{body}"
        );
    }
    // A site whose name was re-pointed at this address (DNS rebinding).
    let answer = from_browser(
        &fg,
        "GET",
        "/proxies",
        Some("same-origin"),
        Some("attacker.example:8474"),
    )
    .await;
    assert_eq!(answer.status(), 403);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("IP address or localhost"),
        "{body}"
    );

    let db = fg.expect("GET", "/proxies/db", None, 200).await;
    assert_eq!(db["enabled"], true);
    assert_eq!(db["toxics"], json!([]));
}
