//! Where proxies may listen. Through the control API, only on loopback
//! unless `faultgate serve` was started with `--allow-non-loopback-listen`
//! (`FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN=true`, which the image sets): one
//! call must not expose to the network an upstream that trusts loopback. A
//! config file is the operator's own and may listen anywhere.
//!
//! Listening on 0.0.0.0 is the only way to show a non-loopback listener;
//! the tests connect to it through 127.0.0.1 only.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::faultgate::{Faultgate, Launch, error_mentions};
use support::peers::{echo, echo_server};
use tokio::net::TcpStream;

const OPT_IN: &str = "--allow-non-loopback-listen";

/// The loopback address of a proxy listening on every address.
fn through_loopback(listen: &Value) -> SocketAddr {
    let bound: SocketAddr = listen.as_str().unwrap().parse().unwrap();
    assert!(bound.ip().is_unspecified(), "{bound}");
    SocketAddr::from(([127, 0, 0, 1], bound.port()))
}

#[tokio::test]
async fn the_api_refuses_a_non_loopback_listen_address_without_the_opt_in() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;

    let message = fg
        .expect_error(
            "POST",
            "/proxies",
            Some(json!({"name": "open", "listen": "0.0.0.0:0", "upstream": echo_addr.to_string()})),
            403,
            "\"0.0.0.0:0\"",
        )
        .await;
    assert!(message.contains(OPT_IN), "{message}");
    assert!(
        message.contains("FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN"),
        "{message}"
    );
    fg.expect_error("GET", "/proxies/open", None, 404, "proxy not found")
        .await;

    // Moving a loopback proxy is refused alike, and changes nothing.
    let listen = fg.proxy("p", echo_addr).await;
    let before = fg.expect("GET", "/proxies", None, 200).await;
    fg.expect_error(
        "PATCH",
        "/proxies/p",
        Some(json!({"listen": "[::]:0"})),
        403,
        "\"[::]:0\"",
    )
    .await;
    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([
                {"name": "q", "upstream": echo_addr.to_string()},
                {"name": "p", "listen": "0.0.0.0:0", "upstream": echo_addr.to_string()},
            ])),
        )
        .await;
    error_mentions(status, &body, 403, OPT_IN);
    assert_eq!(fg.expect("GET", "/proxies", None, 200).await, before);
    let mut client = TcpStream::connect(listen).await.unwrap();
    echo(&mut client, b"still on loopback").await;

    // The opt-in's variable saying false leaves it off.
    let off = Faultgate::start_with(
        &[],
        Launch {
            env: &[("FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN", "false")],
            ..Default::default()
        },
    )
    .await;
    off.expect_error(
        "POST",
        "/proxies",
        Some(json!({"name": "open", "listen": "0.0.0.0:0", "upstream": echo_addr.to_string()})),
        403,
        OPT_IN,
    )
    .await;

    // Loopback addresses, by number or by name, need nothing.
    for (name, loopback) in [
        ("l1", "127.0.0.2:0"),
        ("l2", "[::1]:0"),
        ("l3", "localhost:0"),
    ] {
        let created = fg
            .expect(
                "POST",
                "/proxies",
                Some(json!({"name": name, "listen": loopback, "upstream": echo_addr.to_string()})),
                201,
            )
            .await;
        let bound: SocketAddr = created["listen"].as_str().unwrap().parse().unwrap();
        assert!(bound.ip().is_loopback(), "{bound}");
    }
}

#[tokio::test]
async fn with_the_opt_in_in_its_environment_the_api_may_listen_on_every_address() {
    let fg = Faultgate::start_with(
        &[],
        Launch {
            env: &[("FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN", "true")],
            ..Default::default()
        },
    )
    .await;
    let (echo_addr, _) = echo_server().await;
    let created = fg
        .expect(
            "POST",
            "/proxies",
            Some(json!({"name": "open", "listen": "0.0.0.0:0", "upstream": echo_addr.to_string()})),
            201,
        )
        .await;
    let mut client = TcpStream::connect(through_loopback(&created["listen"]))
        .await
        .unwrap();
    echo(&mut client, b"through every address").await;

    // A proxy moved from loopback to every address of the same port: the
    // loopback socket has to go before the new one can be bound.
    let listen = fg.proxy("p", echo_addr).await;
    let moved = fg
        .expect(
            "PATCH",
            "/proxies/p",
            Some(json!({"listen": format!("0.0.0.0:{}", listen.port())})),
            200,
        )
        .await;
    assert_eq!(through_loopback(&moved["listen"]), listen);
    let mut client = TcpStream::connect(listen).await.unwrap();
    echo(&mut client, b"moved").await;
}

#[tokio::test]
async fn a_config_file_may_listen_on_every_address_without_the_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let (echo_addr, _) = echo_server().await;
    let config = dir.path().join("sidecar.toml");
    std::fs::write(
        &config,
        format!(
            "[[proxies]]\nname = \"sidecar\"\nlisten = \"0.0.0.0:0\"\nupstream = \"{echo_addr}\"\n"
        ),
    )
    .unwrap();
    let fg = Faultgate::start(&["--config", config.to_str().unwrap()]).await;
    let shown = fg.expect("GET", "/proxies/sidecar", None, 200).await;
    let mut client = TcpStream::connect(through_loopback(&shown["listen"]))
        .await
        .unwrap();
    echo(&mut client, b"sidecar").await;

    // What a scenario does to it through the API keeps working: faults,
    // disabling and enabling, /reset.
    fg.add_toxic("sidecar", json!({"type": "noop"})).await;
    fg.set_enabled("sidecar", false).await;
    fg.set_enabled("sidecar", true).await;
    fg.expect("POST", "/reset", None, 204).await;
    let mut client = TcpStream::connect(through_loopback(&shown["listen"]))
        .await
        .unwrap();
    echo(&mut client, b"sidecar again").await;
}

#[test]
fn the_image_turns_the_opt_in_on() {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN=true"),
        "the image's proxies listen on 0.0.0.0 inside the container"
    );
}
