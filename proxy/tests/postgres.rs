//! A real Postgres behind faultgate, driven by a real client (tokio-postgres).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::postgres::{Postgres, connect, listener};

async fn setup() -> (Postgres, Faultgate, u16) {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    (pg, fg, listen.port())
}

fn is_reset(error: &tokio_postgres::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionReset;
        }
        source = e.source();
    }
    false
}

#[tokio::test]
async fn queries_pass_through_with_no_fault() {
    let (_pg, _fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
        .await
        .unwrap();
    let row = client
        .query_one("SELECT count(*), sum(id) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 5000);
    assert_eq!(row.get::<_, i64>(1), 5000 * 5001 / 2);
    // A prepared statement with a parameter (the extended protocol).
    let row = client
        .query_one("SELECT v FROM t WHERE id = $1", &[&42i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0).len(), 32);
}

#[tokio::test]
async fn downstream_latency_delays_every_query() {
    let (_pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"type": "latency", "stream": "downstream", "attributes": {"latency": 300}}),
    )
    .await;
    let started = Instant::now();
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    let took = started.elapsed();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(
        took >= Duration::from_millis(300),
        "SELECT 1 took {took:?} under 300 ms of latency"
    );

    fg.remove_toxic("pg", "latency_downstream").await;
    let started = Instant::now();
    client.query_one("SELECT 1", &[]).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "latency still applied after removal"
    );
}

#[tokio::test]
async fn reset_peer_resets_the_client() {
    let (_pg, fg, port) = setup().await;
    fg.add_toxic(
        "pg",
        json!({"type": "reset_peer", "attributes": {"timeout": 0}}),
    )
    .await;
    let error = connect(port).await.expect_err("connect under reset_peer");
    assert!(
        is_reset(&error),
        "expected a connection reset, got {error:?}"
    );

    // An open connection is reset at its next answer: the client's
    // connection task sees the reset, the pending query fails.
    fg.remove_toxic("pg", "reset_peer_downstream").await;
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    fg.add_toxic(
        "pg",
        json!({"type": "reset_peer", "attributes": {"timeout": 0}}),
    )
    .await;
    assert!(client.query_one("SELECT 1", &[]).await.is_err());
    let error = connection
        .await
        .unwrap()
        .expect_err("connection under reset_peer");
    assert!(
        is_reset(&error),
        "expected a connection reset, got {error:?}"
    );
}

#[tokio::test]
async fn blackhole_hangs_a_query_until_removed_then_it_completes() {
    let (_pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    fg.add_toxic("pg", json!({"type": "blackhole", "stream": "downstream"}))
        .await;
    let query = tokio::spawn(async move { client.query_one("SELECT 42", &[]).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !query.is_finished(),
        "the query answered through a blackhole"
    );

    fg.remove_toxic("pg", "blackhole_downstream").await;
    let row = tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .expect("the query did not resume after the blackhole was removed")
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[tokio::test]
async fn disabled_proxy_refuses_connections_and_closes_open_ones() {
    let (_pg, fg, port) = setup().await;
    let client = connect(port).await.unwrap();
    fg.set_enabled("pg", false).await;

    let error = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect_err("connected to a disabled proxy");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        client.query_one("SELECT 1", &[]).await.is_err(),
        "an open connection survived disabling"
    );

    fg.set_enabled("pg", true).await;
    let client = connect(port).await.unwrap();
    assert_eq!(
        client
            .query_one("SELECT 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );
}

#[tokio::test]
async fn listen_notify_passes_through() {
    let (pg, _fg, port) = setup().await;
    let (listener, mut notes) = listener(port).await;
    listener
        .batch_execute("LISTEN policy_updates")
        .await
        .unwrap();

    let direct = pg.direct().await;
    for i in 0..3 {
        direct
            .batch_execute(&format!("NOTIFY policy_updates, 'change {i}'"))
            .await
            .unwrap();
    }
    for i in 0..3 {
        let note = tokio::time::timeout(Duration::from_secs(5), notes.recv())
            .await
            .expect("notification through the proxy")
            .unwrap();
        assert_eq!(note, ("policy_updates".to_owned(), format!("change {i}")));
    }
}
