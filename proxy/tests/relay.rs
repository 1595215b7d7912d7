//! The relay loses, duplicates and reorders nothing: 256 MiB of random bytes
//! each way through an echo, with no fault, with `latency` 0 and with
//! `slicer`, arrive identical.

mod support;

use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::faultgate::Faultgate;
use support::peers::echo_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOTAL: usize = 256 << 20;

/// Sends TOTAL random bytes through `addr` to the echo and reads them back,
/// concurrently; returns the digests of what was sent and what came back.
async fn round_trip(addr: std::net::SocketAddr, seed: u64) -> ([u8; 32], [u8; 32], usize) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut hash = Sha256::new();
        let mut block = vec![0u8; 1 << 20];
        let mut sent = 0;
        while sent < TOTAL {
            // Odd sizes, so chunk boundaries fall everywhere.
            let n = (block.len() - (sent % 977)).min(TOTAL - sent);
            rng.fill_bytes(&mut block[..n]);
            hash.update(&block[..n]);
            writer.write_all(&block[..n]).await.unwrap();
            sent += n;
        }
        writer.shutdown().await.unwrap();
        <[u8; 32]>::from(hash.finalize())
    });
    let mut hash = Sha256::new();
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        received += n;
    }
    (sender.await.unwrap(), hash.finalize().into(), received)
}

async fn check_chain(toxics: Value) {
    let (echo_addr, _reads) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("echo", echo_addr).await;
    fg.expect("PUT", "/proxies/echo/toxics", Some(toxics.clone()), 200)
        .await;
    let (sent, received, count) = round_trip(listen, 42).await;
    assert_eq!(count, TOTAL, "byte count differs with toxics {toxics}");
    assert_eq!(sent, received, "bytes differ with toxics {toxics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_intact_with_no_fault() {
    check_chain(json!([])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_intact_through_latency_zero_both_ways() {
    check_chain(json!([
        {"name": "up", "type": "latency", "stream": "upstream", "attributes": {"latency": 0}},
        {"name": "down", "type": "latency", "stream": "downstream", "attributes": {"latency": 0}},
    ]))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_intact_through_slicer_both_ways() {
    check_chain(json!([
        {"name": "up", "type": "slicer", "stream": "upstream", "attributes": {"average_size": 3000, "size_variation": 2000, "delay": 0}},
        {"name": "down", "type": "slicer", "stream": "downstream", "attributes": {"average_size": 5000, "size_variation": 4000, "delay": 0}},
    ]))
    .await;
}
