//! The control API keeps Toxiproxy's shapes, status codes and error body, so
//! every Toxiproxy client works against faultgate unchanged.

mod support;

use std::time::Duration;

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::{echo_server, never_reading_server};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn proxies_crud_with_toxiproxy_shapes_and_errors() {
    let fg = Faultgate::start(&[]).await;
    let version = fg.expect("GET", "/version", None, 200).await;
    assert!(version["version"].is_string());

    let (status, body) = fg
        .request("POST", "/proxies", Some(json!({"upstream": "127.0.0.1:1"})))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "missing required field: name", "status": 400})
        )
    );
    let (status, body) = fg
        .request("POST", "/proxies", Some(json!({"name": "a"})))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "missing required field: upstream", "status": 400})
        )
    );
    let (status, body) = fg
        .request("POST", "/proxies", Some(json!("not an object")))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body")
    );

    let created = fg
        .expect(
            "POST",
            "/proxies",
            Some(json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})),
            201,
        )
        .await;
    assert_eq!(created["name"], "a");
    assert_eq!(created["upstream"], "127.0.0.1:1");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["toxics"], json!([]));
    assert_ne!(
        created["listen"], "127.0.0.1:0",
        "listen should read back the bound port"
    );

    let (status, body) = fg
        .request(
            "POST",
            "/proxies",
            Some(json!({"name": "a", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (409, json!({"error": "proxy already exists", "status": 409}))
    );

    let all = fg.expect("GET", "/proxies", None, 200).await;
    assert_eq!(all["a"], created);
    assert_eq!(fg.expect("GET", "/proxies/a", None, 200).await, created);
    let (status, body) = fg.request("GET", "/proxies/nope", None).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "proxy not found", "status": 404}))
    );

    // Both the deprecated POST and PATCH update.
    let updated = fg
        .expect(
            "POST",
            "/proxies/a",
            Some(json!({"upstream": "127.0.0.1:2"})),
            200,
        )
        .await;
    assert_eq!(updated["upstream"], "127.0.0.1:2");
    let disabled = fg
        .expect("PATCH", "/proxies/a", Some(json!({"enabled": false})), 200)
        .await;
    assert_eq!(disabled["enabled"], false);

    fg.expect("DELETE", "/proxies/a", None, 204).await;
    let (status, _) = fg.request("DELETE", "/proxies/a", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn toxics_crud_defaults_and_errors() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("p", "127.0.0.1:1").await;

    let toxic = fg
        .add_toxic(
            "p",
            json!({"type": "latency", "attributes": {"latency": 100}}),
        )
        .await;
    assert_eq!(
        toxic,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}})
    );
    let (status, body) = fg
        .request(
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "latency"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (409, json!({"error": "toxic already exists", "status": 409}))
    );
    let (status, body) = fg
        .request("POST", "/proxies/p/toxics", Some(json!({"type": "nope"})))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid toxic type"),
        "{body}"
    );
    let (status, body) = fg
        .request(
            "POST",
            "/proxies/p/toxics",
            Some(json!({"type": "latency", "stream": "sideways"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains(
            "stream was invalid, can be either upstream or downstream (got \"sideways\")"
        ),
        "{body}"
    );
    let (status, _) = fg
        .request(
            "POST",
            "/proxies/nope/toxics",
            Some(json!({"type": "latency"})),
        )
        .await;
    assert_eq!(status, 404);

    // PATCH merges attributes and may change toxicity.
    let patched = fg
        .expect(
            "PATCH",
            "/proxies/p/toxics/latency_downstream",
            Some(json!({"toxicity": 0.5, "attributes": {"jitter": 10}})),
            200,
        )
        .await;
    assert_eq!(patched["attributes"], json!({"latency": 100, "jitter": 10}));
    assert_eq!(patched["toxicity"], 0.5);
    assert_eq!(
        fg.expect("GET", "/proxies/p/toxics/latency_downstream", None, 200)
            .await,
        patched
    );
    assert_eq!(fg.toxics("p").await, json!([patched]));
    assert_eq!(
        fg.expect("GET", "/proxies/p", None, 200).await["toxics"],
        json!([patched])
    );

    // The extension: replace the whole chain at once.
    let chain = fg
        .expect(
            "PUT",
            "/proxies/p/toxics",
            Some(json!([
                {"type": "blackhole", "stream": "upstream"},
                {"name": "slow", "type": "latency", "attributes": {"latency": 5}},
            ])),
            200,
        )
        .await;
    let names: Vec<&str> = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blackhole_upstream", "slow"]);
    // A bad entry changes nothing.
    let (status, _) = fg
        .request(
            "PUT",
            "/proxies/p/toxics",
            Some(json!([{"type": "latency"}, {"name": "other", "type": "latency", "attributes": {"latency": "slow"}}])),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(fg.toxics("p").await, chain);

    fg.remove_toxic("p", "slow").await;
    let (status, body) = fg.request("DELETE", "/proxies/p/toxics/slow", None).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "toxic not found: proxy \"p\" has no toxic \"slow\"; its toxics: blackhole_upstream", "status": 404})
        )
    );
}

#[tokio::test]
async fn populate_is_idempotent_and_checks_everything_first() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let port = support::free_port();
    let proxies = json!([{"name": "db", "listen": format!("127.0.0.1:{port}"), "upstream": echo_addr.to_string()}]);
    let first = fg
        .expect("POST", "/populate", Some(proxies.clone()), 201)
        .await;
    assert_eq!(first["proxies"][0]["name"], "db");
    assert_eq!(first["proxies"][0]["enabled"], true);

    // A fault attached in between survives a second, identical populate.
    fg.add_toxic(
        "db",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
    let second = fg.expect("POST", "/populate", Some(proxies), 201).await;
    assert_eq!(second["proxies"][0]["toxics"].as_array().unwrap().len(), 1);

    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([{"name": "x", "upstream": "127.0.0.1:1"}, {"name": "y"}])),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "missing required field: upstream at proxy 2");
    let (status, _) = fg.request("GET", "/proxies/x", None).await;
    assert_eq!(status, 404, "a failed populate created a proxy");
}

#[tokio::test]
async fn reset_enables_every_proxy_and_removes_every_toxic() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("a", "127.0.0.1:1").await;
    fg.proxy("b", "127.0.0.1:1").await;
    fg.add_toxic("a", json!({"type": "latency"})).await;
    fg.set_enabled("b", false).await;
    fg.expect("POST", "/reset", None, 204).await;
    let all = fg.expect("GET", "/proxies", None, 200).await;
    for name in ["a", "b"] {
        assert_eq!(all[name]["enabled"], true);
        assert_eq!(all[name]["toxics"], json!([]));
    }
}

#[tokio::test]
async fn browsers_are_refused_and_extensions_answer() {
    let fg = Faultgate::start(&[]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/proxies", fg.api))
        .header("User-Agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    assert_eq!(fg.expect("GET", "/healthz", None, 200).await, json!("ok\n"));
    let plugins = fg.expect("GET", "/plugins", None, 200).await;
    let names: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "bandwidth",
        "blackhole",
        "latency",
        "limit_data",
        "noop",
        "refuse",
        "reset_peer",
        "slicer",
        "slow_close",
        "timeout",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    let latency = fg.expect("GET", "/plugins/latency", None, 200).await;
    assert_eq!(latency["source"], "builtin");
    let attributes: Vec<&str> = latency["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(attributes, ["latency", "jitter"]);
    assert_eq!(latency["attributes"][0]["type"], "integer");
}

/// Toxiproxy's control API hangs when a peer is stuck (its issues 159, 210,
/// 412, 558); faultgate's must not.
#[tokio::test]
async fn api_answers_at_once_while_a_peer_never_reads() {
    let fg = Faultgate::start(&[]).await;
    let stuck = never_reading_server().await;
    let listen = fg.proxy("stuck", stuck).await;
    fg.add_toxic(
        "stuck",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 1}}),
    )
    .await;

    // Fill every buffer between the client and the peer.
    let mut client = tokio::net::TcpStream::connect(listen).await.unwrap();
    let block = vec![0u8; 1 << 20];
    let mut pushed = 0usize;
    while tokio::time::timeout(Duration::from_millis(300), client.write_all(&block))
        .await
        .is_ok()
    {
        pushed += block.len();
        assert!(
            pushed < 512 << 20,
            "the never-reading peer absorbed 512 MiB"
        );
    }

    let api_call = async {
        fg.remove_toxic("stuck", "latency_upstream").await;
        fg.add_toxic("stuck", json!({"type": "blackhole", "stream": "upstream"}))
            .await;
        fg.expect("PUT", "/proxies/stuck/toxics", Some(json!([])), 200)
            .await;
        fg.set_enabled("stuck", false).await;
    };
    tokio::time::timeout(Duration::from_secs(5), api_call)
        .await
        .expect("the control API waited on a stuck connection");
}

/// A path segment with every byte outside `[A-Za-z0-9_-]` percent-encoded.
fn encoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Names are escaped as the Prometheus text format says (Prometheus refuses
/// a whole page for one bad line) and quoted in log lines, so a name can
/// neither break `/metrics` nor add a series or a log line of its own.
#[tokio::test]
async fn proxy_and_toxic_names_are_escaped_in_metrics_and_quoted_in_logs() {
    let fg = Faultgate::start(&[]).await;
    let quoting = "a\"b\\c";
    let injecting = "x\"} 1\nfaultgate_injected{proxy=\"y\"} 1\n# ";
    let toxic = "t\"\n1";
    for name in [quoting, injecting] {
        fg.proxy(name, "127.0.0.1:1").await;
    }
    fg.add_toxic(
        &encoded(injecting),
        json!({"name": toxic, "type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
    // The API finds them by their percent-encoded names.
    let shown = fg
        .expect(
            "GET",
            &format!("/proxies/{}", encoded(injecting)),
            None,
            200,
        )
        .await;
    assert_eq!(shown["name"], injecting);
    fg.add_toxic(
        &encoded(quoting),
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;

    let (_, page) = fg.request("GET", "/metrics", None).await;
    let page = page.as_str().unwrap_or_default().to_owned();
    let samples = support::prometheus::parse(&page)
        .unwrap_or_else(|e| panic!("/metrics is not in the text format: {e}\n{page}"));
    let mut proxies: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "faultgate_connections_total")
        .filter_map(|s| s.label("proxy"))
        .collect();
    proxies.sort();
    assert_eq!(proxies, [quoting, injecting], "{page}");
    let toxics: Vec<(&str, &str)> = samples
        .iter()
        .filter(|s| s.name == "faultgate_toxic_plugin_failures_total")
        .map(|s| (s.label("proxy").unwrap(), s.label("toxic").unwrap()))
        .collect();
    assert!(toxics.contains(&(injecting, toxic)), "{toxics:?}");
    assert!(
        samples.iter().all(|s| s.name != "faultgate_injected"),
        "{page}"
    );

    support::eventually(
        "both proxies' starts are logged",
        Duration::from_secs(5),
        || async { fg.log().matches("proxy listening").count() >= 2 },
    )
    .await;
    let log = fg.log();
    for name in [quoting, injecting] {
        let quoted = format!("proxy={name:?}");
        assert!(
            log.lines()
                .any(|l| l.contains("proxy listening") && l.contains(&quoted)),
            "no log line with {quoted}:\n{log}"
        );
    }
    assert!(
        !log.lines().any(|l| l.starts_with("faultgate_injected")),
        "a name split a log line:\n{log}"
    );
}

/// Sends a `POST path` whose body is `size` bytes; the status and body of
/// the answer (which may come before the whole body is sent).
async fn post_of_size(fg: &Faultgate, path: &str, size: usize) -> (u16, serde_json::Value) {
    use tokio::io::AsyncReadExt;
    let stream = tokio::net::TcpStream::connect(fg.api_addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n");
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let block = vec![b' '; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len());
            writer.write_all(&block[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= length
    };
    while !complete(&answer) {
        let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap_or(0);
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    sending.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())),
    )
}

#[tokio::test]
async fn errors_made_by_the_framework_are_in_toxiproxy_shape() {
    let fg = Faultgate::start(&[]).await;
    let said = fg.expect_error("GET", "/reset", None, 405, "POST").await;
    assert!(said.contains("GET"), "{said}");
    let said = fg
        .expect_error("DELETE", "/proxies", None, 405, "POST")
        .await;
    assert!(said.contains("DELETE") && said.contains("GET"), "{said}");
    fg.expect_error("GET", "/proxies/%ff%fe", None, 400, "UTF-8")
        .await;
    fg.expect_error("GET", "/proxies/%ff%fe/toxics", None, 400, "UTF-8")
        .await;

    let (status, answer) = post_of_size(&fg, "/proxies", 3 << 20).await;
    support::faultgate::error_mentions(status, &answer, 413, "too large");
    let (status, answer) = post_of_size(&fg, "/plugins", (64 << 20) + 1).await;
    support::faultgate::error_mentions(status, &answer, 413, "64 MiB");
    // Nothing changed.
    assert_eq!(fg.expect("GET", "/proxies", None, 200).await, json!({}));
}

/// A plugin whose `validate` traps or runs past its deadline is the
/// plugin's fault, not faultgate's: a 400 naming the plugin and what
/// happened, and nothing attached.
#[tokio::test]
async fn a_plugin_whose_validate_traps_or_times_out_is_a_400_naming_it() {
    let plugin = support::faultgate::plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let fg = Faultgate::start(&[
        "--plugin",
        plugin.to_str().unwrap(),
        "--plugin-deadline-ms",
        "50",
    ])
    .await;
    fg.proxy("p", "127.0.0.1:1").await;
    for (behaviour, says) in [("trap", "wasm trap"), ("loop", "time limit")] {
        let said = fg
            .expect_error(
                "POST",
                "/proxies/p/toxics",
                Some(json!({"type": "misbehave",
                    "attributes": {"behaviour": behaviour, "on": "create"}})),
                400,
                "misbehave",
            )
            .await;
        assert!(
            said.contains("validate") && said.contains(says),
            "{behaviour}: {said}"
        );
        assert!(!said.contains("wasm trap: wasm trap"), "said twice: {said}");
    }
    assert_eq!(fg.toxics("p").await, json!([]));
    // The API goes on.
    fg.add_toxic(
        "p",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
}
