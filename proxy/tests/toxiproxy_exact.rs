//! Where a Toxiproxy client can tell faultgate from Toxiproxy 2.12, it must
//! not: every toxic shows all its attributes, defaults included; a listen
//! address in use is a 500; every answer carries a request id; populate
//! keeps a proxy named by a host name that resolves to its address; and
//! `GET /version` answers a Toxiproxy version. Over raw HTTP here; the
//! Python and Node clients drive the same in `toxiproxy_clients.rs`.

mod support;

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_toxic_shows_every_attribute_with_its_default_in_every_answer() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("p", "127.0.0.1:1").await;
    let created = fg
        .add_toxic("p", json!({"type": "latency", "attributes": null}))
        .await;
    assert_eq!(created["attributes"], json!({"latency": 0, "jitter": 0}));
    let patched = fg
        .expect(
            "PATCH",
            "/proxies/p/toxics/latency_downstream",
            Some(json!({"attributes": {"jitter": 5}})),
            200,
        )
        .await;
    assert_eq!(patched["attributes"], json!({"latency": 0, "jitter": 5}));
    let listed = fg.toxics("p").await;
    assert_eq!(listed[0]["attributes"], json!({"latency": 0, "jitter": 5}));
    let shown = fg
        .expect("GET", "/proxies/p/toxics/latency_downstream", None, 200)
        .await;
    assert_eq!(shown["attributes"], json!({"latency": 0, "jitter": 5}));
    let proxy = fg.expect("GET", "/proxies/p", None, 200).await;
    assert_eq!(
        proxy["toxics"][0]["attributes"],
        json!({"latency": 0, "jitter": 5})
    );
    let all = fg.expect("GET", "/proxies", None, 200).await;
    assert_eq!(
        all["p"]["toxics"][0]["attributes"],
        json!({"latency": 0, "jitter": 5})
    );

    // Every TCP plugin that takes no required attribute: each attribute it
    // describes with a default is shown, at that default.
    let plugins = fg.expect("GET", "/plugins", None, 200).await;
    let mut checked = 0;
    for plugin in plugins.as_array().unwrap() {
        if plugin["kind"] != "tcp" {
            continue;
        }
        let name = plugin["name"].as_str().unwrap();
        let (status, toxic) = fg
            .request(
                "POST",
                "/proxies/p/toxics",
                Some(json!({"type": name, "name": format!("all_{name}")})),
            )
            .await;
        if status != 200 {
            continue;
        }
        for attribute in plugin["attributes"].as_array().unwrap() {
            if attribute["default"].is_null() {
                continue;
            }
            let key = attribute["name"].as_str().unwrap();
            assert_eq!(
                toxic["attributes"][key], attribute["default"],
                "{name}'s {key} is not shown at its default: {toxic}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} TCP plugins were checked");
}

#[tokio::test]
async fn a_listen_address_in_use_is_a_500_not_a_409() {
    let fg = Faultgate::start(&[]).await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let message = fg
        .expect_error(
            "POST",
            "/proxies",
            Some(json!({"name": "clash", "listen": taken, "upstream": "127.0.0.1:1"})),
            500,
            &taken,
        )
        .await;
    assert!(message.contains("in use"), "{message}");
    fg.expect_error("GET", "/proxies/clash", None, 404, "proxy not found")
        .await;
    // A name that exists is still the 409.
    fg.proxy("one", "127.0.0.1:1").await;
    fg.expect_error(
        "POST",
        "/proxies",
        Some(json!({"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})),
        409,
        "already exists",
    )
    .await;
}

#[tokio::test]
async fn every_answer_carries_a_unique_toxiproxy_request_id() {
    let fg = Faultgate::start(&[]).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", fg.api_addr());
    let mut seen = Vec::new();
    for path in ["/version", "/proxies", "/proxies/none", "/no/such/endpoint"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        let id = response
            .headers()
            .get("X-Toxiproxy-Request-Id")
            .unwrap_or_else(|| panic!("no request id on GET {path}"))
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 20, "{id}");
        assert!(
            id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'v')),
            "not base32hex: {id}"
        );
        assert!(!seen.contains(&id), "{id} given twice");
        seen.push(id);
    }
    let response = http.delete(format!("{base}/version")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("x-toxiproxy-request-id"));
}

#[tokio::test]
async fn version_is_a_toxiproxy_version_and_says_faultgate() {
    let fg = Faultgate::start(&[]).await;
    let version = fg.expect("GET", "/version", None, 200).await;
    assert_eq!(version["version"], "2.12.0");
    assert_eq!(version["faultgate"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn populate_with_a_host_name_keeps_a_proxy_on_the_address_it_resolves_to() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let port = support::free_port();
    let listen = format!("localhost:{port}");
    let created = fg
        .expect(
            "POST",
            "/proxies",
            Some(json!({"name": "one", "listen": listen, "upstream": echo_addr.to_string()})),
            201,
        )
        .await;
    assert_eq!(created["listen"], format!("127.0.0.1:{port}"));
    fg.add_toxic(
        "one",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
    let mut open = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    echo(&mut open, b"before").await;

    let populated = fg
        .expect(
            "POST",
            "/populate",
            Some(json!([{"name": "one", "listen": listen, "upstream": echo_addr.to_string()}])),
            201,
        )
        .await;
    assert_eq!(
        populated["proxies"][0]["toxics"][0]["name"],
        "latency_downstream"
    );
    assert_eq!(fg.toxics("one").await.as_array().unwrap().len(), 1);
    echo(&mut open, b"after: the connection was kept").await;
}

#[tokio::test]
async fn what_toxiproxy_takes_is_read_as_toxiproxy_reads_it_with_a_warning() {
    let fg = Faultgate::start(&[]).await;
    fg.proxy("p", "127.0.0.1:1").await;
    let toxic = fg
        .add_toxic(
            "p",
            json!({"type": "latency", "toxicity": 2, "attributes": {"latency": -5, "wobble": 3}}),
        )
        .await;
    assert_eq!(toxic["toxicity"], 1.0);
    assert_eq!(toxic["attributes"], json!({"latency": 0, "jitter": 0}));
    let warnings: Vec<&str> = toxic["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings: {toxic}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("toxicity 2")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("\"wobble\"") && w.contains("latency, jitter")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("\"latency\" is -5")),
        "{warnings:?}"
    );
    assert_eq!(fg.toxics("p").await[0]["warnings"], toxic["warnings"]);
    let log = fg.log();
    assert!(
        log.contains("wobble") && log.contains("--strict-toxics"),
        "{log}"
    );

    // A toxic given nothing to warn about has no warnings field.
    let plain = fg
        .add_toxic(
            "p",
            json!({"type": "latency", "name": "plain", "attributes": {"latency": 1}}),
        )
        .await;
    assert!(plain.get("warnings").is_none(), "{plain}");
    // What neither takes is still a 400, and changes nothing.
    fg.expect_error(
        "POST",
        "/proxies/p/toxics",
        Some(json!({"type": "latency", "name": "bad", "attributes": {"latency": "slow"}})),
        400,
        "latency",
    )
    .await;
    assert_eq!(fg.toxics("p").await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn strict_toxics_refuses_what_toxiproxy_would_take_naming_it() {
    let fg = Faultgate::start(&["--strict-toxics"]).await;
    fg.proxy("p", "127.0.0.1:1").await;
    let cases = [
        (
            json!({"type": "latency", "attributes": {"latency": -5}}),
            "latency",
        ),
        (
            json!({"type": "latency", "attributes": {"wobble": 3}}),
            "wobble",
        ),
        (json!({"type": "latency", "toxicity": 2}), "toxicity"),
    ];
    for (toxic, names) in cases {
        fg.expect_error("POST", "/proxies/p/toxics", Some(toxic), 400, names)
            .await;
    }
    assert_eq!(fg.toxics("p").await, json!([]));
}

#[tokio::test]
async fn slicer_takes_a_variation_as_large_as_the_average_and_never_makes_an_empty_piece() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, mut reads) = echo_server().await;
    let listen = fg.proxy("s", echo_addr).await;
    let toxic = fg
        .add_toxic(
            "s",
            json!({"type": "slicer", "stream": "upstream",
                   "attributes": {"average_size": 1000, "size_variation": 1000, "delay": 1000}}),
        )
        .await;
    assert_eq!(toxic["attributes"]["size_variation"], 1000);
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    echo(&mut stream, &data).await;
    // A variation larger than the average: pieces of 1 to 12 bytes.
    fg.remove_toxic("s", "slicer_upstream").await;
    fg.add_toxic(
        "s",
        json!({"type": "slicer", "stream": "upstream",
               "attributes": {"average_size": 2, "size_variation": 10, "delay": 0}}),
    )
    .await;
    while reads.try_recv().is_ok() {}
    let mut stream = TcpStream::connect(listen).await.unwrap();
    echo(&mut stream, &data[..500]).await;
    let mut total = 0;
    while let Ok(n) = reads.try_recv() {
        total += n;
    }
    assert_eq!(total, 500);
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "s").await, 0);
}
