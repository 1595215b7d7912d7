//! `X-Toxiproxy-Request-Id` on every answer, as Toxiproxy sends it: a
//! unique id of the request, in the same form (20 characters of base32hex,
//! lower case, for 12 bytes: the time in seconds, a process tag, the
//! process id and a counter), so that a client that logs or parses it gets
//! what it gets from Toxiproxy. The id is also in the request's log lines.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-toxiproxy-request-id";

/// Adds the request's id to its answer.
pub async fn stamp(request: axum::extract::Request, next: Next) -> Response {
    let id = next_id();
    tracing::debug!(request_id = %id, method = %request.method(), path = %request.uri().path(), "API request");
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// What makes this process's ids its own: a random tag, its pid, and where
/// its counter starts.
struct Process {
    tag: [u8; 3],
    pid: u16,
    counter: AtomicU32,
}

fn process() -> &'static Process {
    static PROCESS: OnceLock<Process> = OnceLock::new();
    PROCESS.get_or_init(|| {
        // The standard library's hasher keys come from the system's
        // random source.
        let random = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        )
        .to_be_bytes();
        Process {
            tag: [random[0], random[1], random[2]],
            pid: std::process::id() as u16,
            counter: AtomicU32::new(u32::from_be_bytes([0, random[3], random[4], random[5]])),
        }
    })
}

/// A fresh id.
pub fn next_id() -> String {
    let process = process();
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let count = process.counter.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 12];
    raw[..4].copy_from_slice(&seconds.to_be_bytes());
    raw[4..7].copy_from_slice(&process.tag);
    raw[7..9].copy_from_slice(&process.pid.to_be_bytes());
    raw[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    base32hex(&raw)
}

/// Base32 with the "extended hex" alphabet (RFC 4648 §7), lower case, no
/// padding: 96 bits make 20 characters, whose order sorts as the bytes do.
fn base32hex(bytes: &[u8; 12]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(20);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_twenty_base32hex_characters_and_unique() {
        let (a, b) = (next_id(), next_id());
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 20, "{id}");
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'v')),
                "{id}"
            );
        }
    }

    #[test]
    fn base32hex_is_rfc_4648_extended_hex() {
        // RFC 4648's test vector "foobar" is CPNMUOJ1E8; twelve bytes here.
        let mut bytes = [0u8; 12];
        bytes[..6].copy_from_slice(b"foobar");
        assert!(base32hex(&bytes).starts_with("cpnmuoj1e8"));
        assert_eq!(base32hex(&[0; 12]), "00000000000000000000");
        assert_eq!(base32hex(&[0xff; 12]), "vvvvvvvvvvvvvvvvvvvg");
    }
}
