//! Faults switched through the API reach connections that are already open,
//! at their next chunk; and random decisions replay under the same seed.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn removing_a_fault_cuts_its_sleep_short() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 20000}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"waiting").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    fg.remove_toxic("p", "latency_upstream").await;
    let mut back = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .expect("the chunk stayed delayed after its latency was removed")
        .unwrap();
    assert_eq!(&back, b"waiting");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn replacing_the_chain_applies_to_open_connections_at_the_next_chunk() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    assert!(echo(&mut stream, b"one").await < Duration::from_millis(300));

    fg.expect(
        "PUT",
        "/proxies/p/toxics",
        Some(json!([
            {"type": "latency", "stream": "upstream", "attributes": {"latency": 300}},
        ])),
        200,
    )
    .await;
    assert!(echo(&mut stream, b"two").await >= Duration::from_millis(300));

    fg.expect("PUT", "/proxies/p/toxics", Some(json!([])), 200)
        .await;
    assert!(echo(&mut stream, b"three").await < Duration::from_millis(300));
}

#[tokio::test]
async fn a_proxy_with_no_fault_makes_no_plugin_instance() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    for _ in 0..3 {
        let mut stream = TcpStream::connect(listen).await.unwrap();
        echo(&mut stream, &[9u8; 100_000]).await;
    }
    assert_eq!(fg.metric("faultgate_plugin_instances_total", "p").await, 0);
    assert_eq!(fg.metric("faultgate_connections_total", "p").await, 3);
    // A fault attached while one of those is still closing would apply to
    // it too, and count.
    support::eventually(
        "the first connections closed",
        Duration::from_secs(10),
        || async { fg.metric("faultgate_connections_open", "p").await == 0 },
    )
    .await;

    fg.add_toxic("p", json!({"type": "noop"})).await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    echo(&mut stream, b"counted").await;
    assert_eq!(fg.metric("faultgate_plugin_instances_total", "p").await, 1);
}

/// Which of 24 connections a toxicity-0.5 `refuse` hits.
async fn refused_pattern(seed: &str) -> Vec<bool> {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&["--seed", seed]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic("p", json!({"type": "refuse", "toxicity": 0.5}))
        .await;
    let mut pattern = Vec::new();
    for _ in 0..24 {
        let refused = match TcpStream::connect(listen).await {
            Err(_) => true,
            Ok(mut stream) => {
                let _ = stream.write_all(b"?").await;
                let mut buf = [0u8; 1];
                !matches!(stream.read(&mut buf).await, Ok(1))
            }
        };
        pattern.push(refused);
    }
    pattern
}

#[tokio::test]
async fn toxicity_draws_replay_under_the_same_seed() {
    let first = refused_pattern("12345").await;
    assert!(
        first.contains(&true) && first.contains(&false),
        "toxicity 0.5 gave {first:?}"
    );
    assert_eq!(
        refused_pattern("12345").await,
        first,
        "the same seed drew differently"
    );
}

/// Connections through one fault share its one plugin instance: 1,200 of
/// them open at once all work, each with its own resource in it, and the
/// proxy made one instance, not one per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_hundred_connections_through_a_fault_share_one_instance_and_all_work() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic("p", json!({"type": "noop", "stream": "downstream"}))
        .await;
    let mut streams = Vec::new();
    for _ in 0..1_200 {
        streams.push(TcpStream::connect(listen).await.unwrap());
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        echo(stream, format!("{i}").as_bytes()).await;
    }
    assert_eq!(fg.metric("faultgate_plugin_instances_total", "p").await, 1);
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "p").await, 0);
}
