//! Each built-in fault's observable effect, through an echo upstream.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server, read_to_end};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// faultgate with one proxy "p" in front of an echo server.
async fn echo_proxy() -> (
    Faultgate,
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<usize>,
) {
    let (echo_addr, reads) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    (fg, listen, reads)
}

#[tokio::test]
async fn latency_delays_each_round_trip() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic("p", json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 250, "jitter": 0}}))
        .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        echo(&mut stream, b"ping").await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250),
            "round trip took {took:?}"
        );
    }
}

#[tokio::test]
async fn bandwidth_limits_the_rate() {
    let (fg, listen, _) = echo_proxy().await;
    // 100 KB/s downstream: 60 KB need at least ~0.5 s.
    fg.add_toxic(
        "p",
        json!({"type": "bandwidth", "attributes": {"rate": 100}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let data = vec![7u8; 60_000];
    let started = Instant::now();
    echo(&mut stream, &data).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "60 KB at 100 KB/s took {took:?}"
    );
}

#[tokio::test]
async fn slow_close_delays_the_end_of_stream() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic(
        "p",
        json!({"type": "slow_close", "attributes": {"delay": 400}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    echo(&mut stream, b"bye").await;
    let started = Instant::now();
    stream.shutdown().await.unwrap();
    let (rest, end) = read_to_end(&mut stream).await;
    assert!(rest.is_empty() && end.is_ok());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "the close came after {took:?}"
    );
}

#[tokio::test]
async fn timeout_swallows_data_then_closes() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic(
        "p",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 300}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"anyone there?").await.unwrap();
    let (answer, end) = read_to_end(&mut stream).await;
    let took = started.elapsed();
    assert!(answer.is_empty(), "data passed a timeout fault: {answer:?}");
    assert!(end.is_ok(), "timeout should close (FIN), got {end:?}");
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
}

#[tokio::test]
async fn timeout_zero_swallows_until_removed() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic(
        "p",
        json!({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    stream.write_all(b"lost").await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
    assert!(read.is_err(), "timeout 0 answered or closed: {read:?}");

    fg.remove_toxic("p", "timeout_upstream").await;
    echo(&mut stream, b"found").await;
}

#[tokio::test]
async fn reset_peer_resets_after_its_timeout() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic(
        "p",
        json!({"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 200}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"hello").await.unwrap();
    let (answer, end) = read_to_end(&mut stream).await;
    assert!(answer.is_empty());
    let error = end.expect_err("reset_peer should reset, not close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn slicer_cuts_data_into_small_pieces_in_order() {
    let (fg, listen, mut reads) = echo_proxy().await;
    // 10 ms between pieces: a reader delayed longer than that under load
    // would see two pieces as one read, which says nothing of the slicer.
    fg.add_toxic(
        "p",
        json!({"type": "slicer", "stream": "upstream",
        "attributes": {"average_size": 10, "size_variation": 5, "delay": 10_000}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    echo(&mut stream, &data).await;
    let mut sizes = Vec::new();
    while let Ok(n) = reads.try_recv() {
        sizes.push(n);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 1000);
    assert!(
        sizes.len() >= 40,
        "the upstream saw {} reads: {sizes:?}",
        sizes.len()
    );
    assert!(
        sizes.iter().all(|&n| n <= 45),
        "pieces larger than slicing allows: {sizes:?}"
    );
}

#[tokio::test]
async fn limit_data_closes_after_the_limit() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic(
        "p",
        json!({"type": "limit_data", "attributes": {"bytes": 100}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    stream.write_all(&[1u8; 300]).await.unwrap();
    let (answer, end) = read_to_end(&mut stream).await;
    assert!(end.is_ok(), "limit_data should close, got {end:?}");
    assert_eq!(
        answer.len(),
        100,
        "limit_data passed {} bytes",
        answer.len()
    );
}

#[tokio::test]
async fn blackhole_holds_data_and_loses_nothing() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic("p", json!({"type": "blackhole", "stream": "upstream"}))
        .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    stream.write_all(b"into the void").await.unwrap();
    let mut buf = [0u8; 13];
    let read = tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buf)).await;
    assert!(read.is_err(), "data came back through a blackhole");
    fg.remove_toxic("p", "blackhole_upstream").await;
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
        .await
        .expect("data did not flow after the blackhole was removed")
        .unwrap();
    assert_eq!(&buf, b"into the void");
}

#[tokio::test]
async fn refuse_resets_new_connections() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic("p", json!({"type": "refuse"})).await;
    for _ in 0..5 {
        // The reset may arrive before connect() even returns.
        let error = match TcpStream::connect(listen).await {
            Err(error) => error,
            Ok(mut stream) => {
                let (answer, end) = read_to_end(&mut stream).await;
                assert!(answer.is_empty());
                end.expect_err("refuse should reset, not close")
            }
        };
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }
}

#[tokio::test]
async fn noop_passes_everything() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic("p", json!({"type": "noop", "stream": "upstream"}))
        .await;
    fg.add_toxic("p", json!({"type": "noop", "stream": "downstream"}))
        .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    echo(&mut stream, &data).await;
}

#[tokio::test]
async fn toxicity_zero_never_applies() {
    let (fg, listen, _) = echo_proxy().await;
    fg.add_toxic("p", json!({"type": "refuse", "toxicity": 0.0}))
        .await;
    for _ in 0..5 {
        let mut stream = TcpStream::connect(listen).await.unwrap();
        echo(&mut stream, b"ok").await;
    }
}

#[tokio::test]
async fn bad_attributes_are_a_400_naming_the_attribute_and_change_nothing() {
    let (fg, _listen, _) = echo_proxy().await;
    let cases = [
        // A negative latency and an attribute latency does not have are
        // read as Toxiproxy reads them, with a warning, unless serve runs
        // with --strict-toxics: see toxiproxy_exact.rs.
        (
            json!({"type": "latency", "attributes": {"latency": "5ms"}}),
            "latency",
        ),
        (
            json!({"type": "bandwidth", "attributes": {"rate": "fast"}}),
            "rate",
        ),
        (
            json!({"type": "slicer", "attributes": {"average_size": 1.5}}),
            "average_size",
        ),
        (
            json!({"type": "limit_data", "attributes": {"bytes": [1]}}),
            "bytes",
        ),
    ];
    for (toxic, attribute) in cases {
        fg.expect_error("POST", "/proxies/p/toxics", Some(toxic), 400, attribute)
            .await;
    }
    let toxics = fg.toxics("p").await;
    assert_eq!(toxics, json!([]));
}

#[tokio::test]
async fn values_past_an_attributes_range_are_a_400_naming_the_range() {
    let (fg, _listen, _) = echo_proxy().await;
    // Each of these once overflowed inside the plugin: a latency of 2^63
    // microseconds wrapped to no delay at all.
    let cases = [
        (
            json!({"type": "latency", "attributes": {"latency": 9_223_372_036_854_776u64}}),
            "latency: expected 0 to 86400000 (milliseconds)",
        ),
        (
            json!({"type": "latency", "attributes": {"jitter": 86_400_001}}),
            "jitter: expected 0 to 86400000",
        ),
        (
            json!({"type": "bandwidth", "attributes": {"rate": 1_073_741_824u64}}),
            "rate: expected 0 to 100000000 (KB/s)",
        ),
        (
            json!({"type": "slicer", "attributes": {"average_size": 10, "delay": u64::MAX / 2}}),
            "delay: expected 0 to",
        ),
        (
            json!({"type": "timeout", "attributes": {"timeout": 1u64 << 60}}),
            "timeout: expected 0 to 86400000",
        ),
    ];
    for (toxic, says) in cases {
        fg.expect_error("POST", "/proxies/p/toxics", Some(toxic), 400, says)
            .await;
    }
    assert_eq!(fg.toxics("p").await, json!([]));
}

#[tokio::test]
async fn the_highest_bandwidth_rate_passes_data_instead_of_failing_the_connection() {
    let (fg, listen, _) = echo_proxy().await;
    // 1073741824 KB/s once made slices of 25 * 2^32 bytes, cut to 0 as a
    // u32: the plugin made empty slices until it ran out of memory. The
    // highest rate allowed now is 100 GB/s.
    fg.add_toxic(
        "p",
        json!({"type": "bandwidth", "attributes": {"rate": 100_000_000u64}}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    echo(&mut stream, &vec![3u8; 200_000]).await;
    assert_eq!(fg.metric("faultgate_plugin_failures_total", "p").await, 0);
}
