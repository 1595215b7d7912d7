//! A plugin that traps, loops forever or allocates without end fails only
//! the connection it serves: the proxy, its API and every other connection
//! go on.

mod support;

use std::time::Duration;

use serde_json::json;
use support::faultgate::{Faultgate, plugin_build_dir};
use support::peers::{echo_server, read_to_end};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn misbehaving(behaviour: &str) {
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let plugin_arg = plugin.to_str().unwrap().to_owned();
    let mut fg = Faultgate::start(&["--plugin", &plugin_arg, "--plugin-deadline-ms", "50"]).await;
    let (echo_addr, _) = echo_server().await;
    let healthy = fg.proxy("healthy", echo_addr).await;
    let broken = fg.proxy("broken", echo_addr).await;
    fg.add_toxic(
        "healthy",
        json!({"type": "latency", "attributes": {"latency": 0}}),
    )
    .await;

    // A connection through the healthy proxy, open across the failure.
    let mut bystander = TcpStream::connect(healthy).await.unwrap();
    bystander.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    bystander.read_exact(&mut buf).await.unwrap();

    fg.add_toxic(
        "broken",
        json!({"type": "misbehave", "stream": "upstream", "attributes": {"behaviour": behaviour}}),
    )
    .await;
    let mut victim = TcpStream::connect(broken).await.unwrap();
    victim.write_all(b"trigger").await.unwrap();
    let (answer, _) = tokio::time::timeout(Duration::from_secs(10), read_to_end(&mut victim))
        .await
        .unwrap_or_else(|_| {
            panic!("the connection served by a plugin that does {behaviour:?} was not closed")
        });
    assert!(answer.is_empty(), "data passed a failed plugin");

    assert!(fg.alive(), "faultgate died when a plugin did {behaviour:?}");
    assert_eq!(
        fg.metric("faultgate_plugin_failures_total", "broken").await,
        1
    );
    assert!(
        fg.log().contains("misbehave"),
        "the failure was not logged:\n{}",
        fg.log()
    );

    bystander.write_all(b"after!").await.unwrap();
    bystander.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"after!");
    // New connections through the broken proxy still meet the plugin, fresh.
    let mut again = TcpStream::connect(broken).await.unwrap();
    again.write_all(b"x").await.unwrap();
    let (answer, _) = tokio::time::timeout(Duration::from_secs(10), read_to_end(&mut again))
        .await
        .unwrap();
    assert!(answer.is_empty());
    assert_eq!(
        fg.metric("faultgate_plugin_failures_total", "broken").await,
        2
    );
}

#[tokio::test]
async fn a_trapping_plugin_fails_only_its_connection() {
    misbehaving("trap").await;
}

#[tokio::test]
async fn a_looping_plugin_is_interrupted_and_fails_only_its_connection() {
    misbehaving("loop").await;
}

#[tokio::test]
async fn a_plugin_that_allocates_without_end_fails_only_its_connection() {
    misbehaving("alloc").await;
}
