//! The Postgres wire protocol spoken by hand over a `TcpStream`, for what no
//! real client does (floods, impossible lengths, requests repeated).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The 8-byte SSLRequest.
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// The 8-byte GSSENCRequest.
pub const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// A StartupMessage (protocol 3.0) for user and database `postgres`.
pub fn startup_packet() -> Vec<u8> {
    let params = b"user\0postgres\0database\0postgres\0\0";
    let mut packet = (8 + params.len() as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&196_608u32.to_be_bytes());
    packet.extend_from_slice(params);
    packet
}

/// A typed message: tag, length, body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A simple Query message.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

/// Reads one typed message (tag, body), or fails the test after `within`.
pub async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (u8, Vec<u8>) {
    let read = async {
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).await?;
        let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>((header[0], body))
    };
    tokio::time::timeout(within, read)
        .await
        .expect("no message from the proxy in time")
        .expect("reading a message from the proxy")
}

/// A session started by hand: the startup packet sent, and everything the
/// server says read up to its first ReadyForQuery.
pub async fn session(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&startup_packet()).await.unwrap();
    read_until_ready(&mut stream).await;
    stream
}

/// Writes `piece` again and again, up to `total` bytes, until the peer stops
/// taking it (the connection closed, or nothing was taken for `stall`).
/// Returns how much was written.
pub async fn write_until_refused(
    stream: &mut TcpStream,
    piece: &[u8],
    total: usize,
    stall: Duration,
) -> usize {
    let mut written = 0;
    while written < total {
        match tokio::time::timeout(stall, stream.write_all(piece)).await {
            Ok(Ok(())) => written += piece.len(),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    written
}

/// Reads messages up to and including the next ReadyForQuery.
pub async fn read_until_ready(stream: &mut (impl AsyncRead + Unpin)) {
    loop {
        let (tag, body) = read_message(stream, Duration::from_secs(10)).await;
        assert_ne!(tag, b'E', "the server answered with an error: {body:?}");
        if tag == b'Z' {
            return;
        }
    }
}
