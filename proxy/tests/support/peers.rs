//! Test peers for what no real server can show: a byte-exact echo (to check
//! the relay loses and reorders nothing) and a peer that never reads.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on loopback: every byte received is sent back; when the
/// client finishes sending, the server finishes too. Each read's size is
/// reported on the returned channel, to observe how data was sliced.
pub async fn echo_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reads_tx, reads_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let reads_tx = reads_tx.clone();
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.into_split();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let _ = reads_tx.send(n);
                            if writer.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = writer.shutdown().await;
            });
        }
    });
    (addr, reads_rx)
}

/// A server that accepts and then never reads a byte, keeping every
/// connection open until the test ends.
pub async fn never_reading_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Reads until EOF or error; returns what was read and how it ended.
pub async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return (data, Err(e)),
        }
    }
}

/// Writes `data` through `stream` to an echo server, reads it back, checks
/// it came back unchanged, and says how long the round trip took.
pub async fn echo(stream: &mut TcpStream, data: &[u8]) -> std::time::Duration {
    let started = std::time::Instant::now();
    stream.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert!(back == data, "the echo came back different");
    started.elapsed()
}
