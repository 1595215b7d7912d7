//! What the integration tests share: a running `faultgate serve`, its control
//! API, and real servers started on loopback.

#![allow(dead_code)] // each test binary uses a different part of this

pub mod compose;
pub mod container;
pub mod faultgate;
pub mod git_http;
pub mod junit;
pub mod peers;
pub mod pg_wire;
pub mod plugin_build;
pub mod postgres;
pub mod prometheus;
pub mod run_stack;
pub mod tls;

use std::time::Duration;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `check` to hold, polling; panics naming `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
