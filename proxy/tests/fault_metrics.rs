//! `/metrics` shows what faults are doing now: the requests and connections
//! each toxic is holding, and the counter of faults that acted, which a
//! held request moves at once. `docs/metrics.md` lists exactly what
//! `/metrics` serves.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::eventually;
use support::faultgate::Faultgate;
use support::git_http::GitHttpServer;
use support::peers::echo_server;

const HELD_REQUESTS: &str =
    "faultgate_toxic_requests_held{proxy=\"git\",toxic=\"hang\",type=\"http_blackhole\"}";

#[tokio::test(flavor = "multi_thread")]
async fn a_request_held_by_a_blackhole_shows_in_the_gauge_and_the_counter_until_the_fault_goes() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let listen = faultgate
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "hang", "type": "http_blackhole", "stream": "upstream",
                    "attributes": { "path_prefix": "/git/alpha.git/" } }),
        )
        .await;
    assert_eq!(faultgate.series(HELD_REQUESTS).await, Some(0));
    assert_eq!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await,
        0
    );

    let url = format!("http://{listen}/git/alpha.git/info/refs?service=git-upload-pack");
    let held = tokio::spawn(async move {
        let answer = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the held request was answered once the fault went");
        answer.status().as_u16()
    });
    eventually(
        "the gauge counts the held request",
        Duration::from_secs(10),
        || async { faultgate.series(HELD_REQUESTS).await == Some(1) },
    )
    .await;
    // Counted while it is held, not only once the hold ends.
    assert_eq!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await,
        1,
        "a held request did not count as a fault that acted"
    );
    assert!(!held.is_finished(), "the request was not held");

    // Updating the fault makes a new one: the held request goes on, and
    // the gauge of the fault by that name falls to 0.
    faultgate
        .expect(
            "POST",
            "/proxies/git/toxics/hang",
            Some(json!({ "attributes": { "path_prefix": "/git/beta.git/" } })),
            200,
        )
        .await;
    let status = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the request is still held after its fault was replaced")
        .unwrap();
    assert_eq!(status, 200, "the released request reached the real server");
    eventually("the gauge falls", Duration::from_secs(5), || async {
        faultgate.series(HELD_REQUESTS).await == Some(0)
    })
    .await;

    // Held again, then the fault is removed: the request is answered and
    // the toxic's series goes with it.
    faultgate
        .expect(
            "POST",
            "/proxies/git/toxics/hang",
            Some(json!({ "attributes": { "path_prefix": "/git/alpha.git/" } })),
            200,
        )
        .await;
    let url = format!("http://{listen}/git/alpha.git/info/refs?service=git-upload-pack");
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map(|a| a.status().as_u16())
    });
    eventually(
        "the gauge counts the second held request",
        Duration::from_secs(10),
        || async { faultgate.series(HELD_REQUESTS).await == Some(1) },
    )
    .await;
    faultgate.remove_toxic("git", "hang").await;
    let status = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the request is still held after its fault was removed")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(faultgate.series(HELD_REQUESTS).await, None);
    assert_eq!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await,
        2
    );

    // The bytes an http-mode proxy carried show in /stats as for tcp.
    let stats = faultgate.expect("GET", "/stats", None, 200).await;
    let git = &stats["proxies"]["git"];
    assert!(
        git["bytes_upstream"].as_u64().unwrap() > 0
            && git["bytes_downstream"].as_u64().unwrap() > 0,
        "/stats shows no bytes for an http proxy: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_held_by_a_blackhole_shows_in_the_gauge_until_the_fault_goes() {
    let (echo, _reads) = echo_server().await;
    let faultgate = Faultgate::start(&[]).await;
    let listen = faultgate.proxy("echo", echo).await;
    faultgate
        .add_toxic(
            "echo",
            json!({ "name": "hole", "type": "blackhole", "stream": "upstream" }),
        )
        .await;
    let series =
        "faultgate_toxic_connections_held{proxy=\"echo\",toxic=\"hole\",type=\"blackhole\"}";
    assert_eq!(faultgate.series(series).await, Some(0));

    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    eventually(
        "the gauge counts the held connection",
        Duration::from_secs(10),
        || async { faultgate.series(series).await == Some(1) },
    )
    .await;
    // A second connection that sends nothing is not held.
    let _idle = TcpStream::connect(listen).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(faultgate.series(series).await, Some(1));
    assert!(
        faultgate
            .metric("faultgate_faults_injected_total", "echo")
            .await
            >= 1
    );

    faultgate.remove_toxic("echo", "hole").await;
    let mut answer = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut answer))
        .await
        .expect("the held data was not released")
        .unwrap();
    assert_eq!(&answer, b"ping", "the held bytes were lost or changed");
    assert_eq!(faultgate.series(series).await, None);
}

/// Each metric `/metrics` serves: its type and its labels' names.
fn served(page: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut metrics: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            metrics.entry(name.to_owned()).or_default().0 = kind.to_owned();
        } else if !line.starts_with('#') && !line.is_empty() {
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            let labels: BTreeSet<String> = line[name_end..]
                .strip_prefix('{')
                .and_then(|l| l.split_once('}'))
                .map(|(labels, _)| {
                    labels
                        .split(',')
                        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            metrics.entry(name.to_owned()).or_default().1.extend(labels);
        }
    }
    metrics
}

/// Each metric the page documents, from its table:
/// `| name | type | labels | meaning |`.
fn documented(doc: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .strip_prefix('|')?
                .split('|')
                .map(str::trim)
                .collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            let labels = cells
                .get(2)?
                .split(',')
                .map(|l| l.trim().trim_matches('`'))
                .filter(|l| !l.is_empty() && *l != "none")
                .map(str::to_owned)
                .collect();
            Some((name.to_owned(), (cells.get(1)?.to_string(), labels)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_page_documents_exactly_what_metrics_serves() {
    let (echo, _reads) = echo_server().await;
    let faultgate = Faultgate::start(&[]).await;
    // A proxy with a toxic, so that every per-proxy and per-toxic series
    // is on the page.
    faultgate.proxy("echo", echo).await;
    faultgate
        .add_toxic(
            "echo",
            json!({ "type": "latency", "attributes": { "latency": 10 } }),
        )
        .await;
    let (_, page) = faultgate.request("GET", "/metrics", None).await;
    let served = served(page.as_str().unwrap());
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md");
    let documented = documented(&std::fs::read_to_string(doc_path).unwrap());
    for (name, what) in &served {
        assert_eq!(
            documented.get(name),
            Some(what),
            "docs/metrics.md does not list {name} as /metrics serves it (type, labels)"
        );
    }
    for name in documented.keys() {
        assert!(
            served.contains_key(name),
            "docs/metrics.md lists {name}, which /metrics does not serve"
        );
    }
}
