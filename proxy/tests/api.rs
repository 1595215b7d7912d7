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
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0, "attributes": {"latency": 100}})
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
            Some(json!([{"type": "latency"}, {"name": "other", "type": "latency", "attributes": {"latency": -1}}])),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(fg.toxics("p").await, chain);

    fg.remove_toxic("p", "slow").await;
    let (status, body) = fg.request("DELETE", "/proxies/p/toxics/slow", None).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "toxic not found", "status": 404}))
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
