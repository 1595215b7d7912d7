//! The open connections of a proxy, listed (`GET /proxies/{p}/connections`)
//! and cut one at a time (`DELETE /proxies/{p}/connections/{id}`), over real
//! sockets: an echo server for exact byte counts, a real Postgres with
//! tokio-postgres sessions for a client that must go on while its neighbour
//! is cut.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server};
use support::postgres::{Postgres, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn listed(fg: &Faultgate, proxy: &str) -> Vec<Value> {
    let list = fg
        .expect("GET", &format!("/proxies/{proxy}/connections"), None, 200)
        .await;
    list.as_array().expect("an array").clone()
}

/// The entry whose client is `client`'s local address.
fn entry_of<'a>(list: &'a [Value], client: &TcpStream) -> &'a Value {
    let addr = client.local_addr().unwrap().to_string();
    list.iter()
        .find(|c| c["client"] == addr.as_str())
        .unwrap_or_else(|| panic!("no connection from {addr} in {list:?}"))
}

/// Waits until every listed connection shows the byte counts `expect` says.
async fn settled(fg: &Faultgate, proxy: &str, expect: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = listed(fg, proxy).await;
        if expect(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list never settled: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn open_connections_are_listed_with_their_bytes_and_toxics_and_one_is_cut_alone() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let listen = fg.proxy("e", echo_addr).await;
    assert_eq!(listed(&fg, "e").await, Vec::<Value>::new());
    fg.add_toxic(
        "e",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;

    let mut a = TcpStream::connect(listen).await.unwrap();
    let mut b = TcpStream::connect(listen).await.unwrap();
    echo(&mut a, &[1u8; 1000]).await;
    echo(&mut b, &[2u8; 10]).await;
    echo(&mut b, &[3u8; 20]).await;

    // Counted once passed on, which may be a moment after the peer read it.
    let bytes = |c: &TcpStream, l: &[Value]| {
        let addr = c.local_addr().unwrap().to_string();
        l.iter()
            .find(|e| e["client"] == addr.as_str())
            .map(|e| (e["bytes_upstream"].clone(), e["bytes_downstream"].clone()))
    };
    let list = settled(&fg, "e", |l| {
        l.len() == 2
            && bytes(&a, l) == Some((json!(1000), json!(1000)))
            && bytes(&b, l) == Some((json!(30), json!(30)))
    })
    .await;
    let ids: Vec<u64> = list.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert!(ids[0] < ids[1], "not sorted by id: {list:?}");
    let (ea, eb) = (entry_of(&list, &a), entry_of(&list, &b));
    assert_eq!(ea["bytes_upstream"], 1000, "{ea}");
    assert_eq!(ea["bytes_downstream"], 1000, "{ea}");
    assert_eq!(eb["bytes_upstream"], 30, "{eb}");
    assert_eq!(eb["bytes_downstream"], 30, "{eb}");
    assert_eq!(ea["upstream"], echo_addr.to_string());
    assert_eq!(ea["toxics"], json!(["latency_downstream"]));
    assert_eq!(ea["held"], false);
    assert!(ea["age_ms"].is_u64(), "{ea}");
    let (a_id, b_id) = (ea["id"].as_u64().unwrap(), eb["id"].as_u64().unwrap());

    // Bad requests change nothing.
    fg.expect_error(
        "DELETE",
        &format!("/proxies/e/connections/{a_id}?how=gently"),
        None,
        400,
        "how",
    )
    .await;
    fg.expect_error(
        "DELETE",
        "/proxies/e/connections/999999",
        None,
        404,
        "999999",
    )
    .await;
    fg.expect_error("DELETE", "/proxies/e/connections/x", None, 404, "x")
        .await;
    fg.expect_error(
        "GET",
        "/proxies/nope/connections",
        None,
        404,
        "proxy not found",
    )
    .await;
    fg.expect_error(
        "DELETE",
        &format!("/proxies/nope/connections/{a_id}"),
        None,
        404,
        "proxy not found",
    )
    .await;
    assert_eq!(listed(&fg, "e").await.len(), 2);

    // RST by default: the client's read fails with a reset.
    fg.expect(
        "DELETE",
        &format!("/proxies/e/connections/{a_id}"),
        None,
        204,
    )
    .await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), a.read(&mut buf))
        .await
        .expect("the cut connection stayed open");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a cut is a reset by default"
    );
    echo(&mut b, b"still here").await;
    let list = settled(&fg, "e", |l| l.len() == 1).await;
    assert_eq!(list[0]["id"], b_id);
    fg.expect_error(
        "DELETE",
        &format!("/proxies/e/connections/{a_id}"),
        None,
        404,
        &a_id.to_string(),
    )
    .await;

    // FIN with how=close: the client reads the end of the stream.
    fg.expect(
        "DELETE",
        &format!("/proxies/e/connections/{b_id}?how=close"),
        None,
        204,
    )
    .await;
    let read = tokio::time::timeout(Duration::from_secs(5), b.read(&mut buf))
        .await
        .expect("the closed connection stayed open");
    assert_eq!(read.map_err(|e| e.kind()), Ok(0), "how=close is a FIN");
    settled(&fg, "e", |l| l.is_empty()).await;
}

#[tokio::test]
async fn a_connection_a_fault_holds_is_shown_held_and_the_toxics_are_those_that_picked_it() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let listen = fg.proxy("h", echo_addr).await;
    fg.add_toxic("h", json!({"type": "blackhole", "stream": "upstream"}))
        .await;
    // Toxicity 0 picks no connection: it is on the proxy but acts on none.
    fg.add_toxic(
        "h",
        json!({"type": "latency", "name": "never", "toxicity": 0.0, "attributes": {"latency": 1}}),
    )
    .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"into the hole").await.unwrap();
    let list = settled(&fg, "h", |l| l.len() == 1 && l[0]["held"] == true).await;
    assert_eq!(list[0]["toxics"], json!(["blackhole_upstream"]));
    assert_eq!(list[0]["bytes_upstream"], 0);

    fg.remove_toxic("h", "blackhole_upstream").await;
    let mut back = [0u8; 13];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"into the hole");
    let list = settled(&fg, "h", |l| {
        l[0]["held"] == false && l[0]["bytes_upstream"] == 13
    })
    .await;
    assert_eq!(list[0]["toxics"], json!([]));
    assert_eq!(list[0]["bytes_upstream"], 13);
}

#[tokio::test]
async fn an_http_proxy_lists_its_client_connections() {
    let fg = Faultgate::start(&[]).await;
    // Nothing listens upstream: faultgate answers 502 itself, and the
    // client's keep-alive connection stays open.
    let upstream = format!("127.0.0.1:{}", support::free_port());
    let listen = fg
        .proxy_with(
            json!({"name": "web", "mode": "http", "upstream": format!("http://{upstream}")}),
        )
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
    client.write_all(request).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = client.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 502"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    let list = settled(&fg, "web", |l| {
        l.len() == 1 && l[0]["bytes_upstream"] == request.len() && l[0]["bytes_downstream"] == n
    })
    .await;
    assert_eq!(list[0]["bytes_upstream"], request.len(), "{list:?}");
    assert_eq!(list[0]["client"], client.local_addr().unwrap().to_string());

    let id = list[0]["id"].as_u64().unwrap();
    fg.expect(
        "DELETE",
        &format!("/proxies/web/connections/{id}"),
        None,
        204,
    )
    .await;
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut answer))
        .await
        .expect("the cut connection stayed open");
    assert!(read.is_err(), "a cut is a reset: {read:?}");
}

#[tokio::test]
async fn of_two_postgres_sessions_the_cut_one_ends_and_the_other_goes_on() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(
            json!({"name": "pg", "mode": "postgres", "upstream": format!("127.0.0.1:{}", pg.port)}),
        )
        .await;
    let big = connect(listen.port()).await.unwrap();
    let small = connect(listen.port()).await.unwrap();
    let rows = big
        .simple_query("SELECT repeat('x', 200000)")
        .await
        .unwrap();
    assert!(!rows.is_empty());
    small.simple_query("SELECT 1").await.unwrap();

    let down = |c: &Value| c["bytes_downstream"].as_u64().unwrap();
    let up = |c: &Value| c["bytes_upstream"].as_u64().unwrap();
    let list = settled(&fg, "pg", |l| {
        l.len() == 2 && down(&l[0]) > 200_000 && down(&l[1]) > 0
    })
    .await;
    let (first, second) = (&list[0], &list[1]);
    // The first session opened first (lower id) and read the long row.
    assert!(down(first) > 200_000, "{first}");
    assert!(down(second) < 10_000, "{second}");
    assert!(up(first) > 0 && up(second) > 0, "{list:?}");

    let (big_id, small_id) = (
        first["id"].as_u64().unwrap(),
        second["id"].as_u64().unwrap(),
    );
    fg.expect(
        "DELETE",
        &format!("/proxies/pg/connections/{big_id}"),
        None,
        204,
    )
    .await;
    let error = big
        .simple_query("SELECT 1")
        .await
        .expect_err("the cut session answered");
    assert!(
        error.is_closed() || io_kind(&error) == Some(std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    let rows = small.simple_query("SELECT 2").await.unwrap();
    assert!(!rows.is_empty(), "the other session stopped answering");
    let list = settled(&fg, "pg", |l| l.len() == 1).await;
    assert_eq!(list[0]["id"], small_id);

    // Reset and close are told apart by the client: a reset ends its
    // connection with an I/O error, a close with none.
    let (reset, reset_ended) = connect_watched(listen.port()).await;
    let (closed, closed_ended) = connect_watched(listen.port()).await;
    let list = settled(&fg, "pg", |l| l.len() == 3).await;
    let (reset_id, closed_id) = (
        list[1]["id"].as_u64().unwrap(),
        list[2]["id"].as_u64().unwrap(),
    );
    fg.expect(
        "DELETE",
        &format!("/proxies/pg/connections/{reset_id}?how=reset"),
        None,
        204,
    )
    .await;
    fg.expect(
        "DELETE",
        &format!("/proxies/pg/connections/{closed_id}?how=close"),
        None,
        204,
    )
    .await;
    let within = Duration::from_secs(5);
    let reset_end = tokio::time::timeout(within, reset_ended)
        .await
        .expect("reset session still open")
        .unwrap();
    let closed_end = tokio::time::timeout(within, closed_ended)
        .await
        .expect("closed session still open")
        .unwrap();
    assert_eq!(
        reset_end.as_ref().err().and_then(io_kind),
        Some(std::io::ErrorKind::ConnectionReset),
        "{reset_end:?}"
    );
    assert_eq!(
        closed_end.as_ref().err().and_then(io_kind),
        None,
        "{closed_end:?}"
    );
    assert!(
        reset
            .simple_query("SELECT 1")
            .await
            .unwrap_err()
            .is_closed()
    );
    assert!(
        closed
            .simple_query("SELECT 1")
            .await
            .unwrap_err()
            .is_closed()
    );
    small.simple_query("SELECT 3").await.unwrap();
}

/// A session through `port`, and how its connection ended once it has.
async fn connect_watched(
    port: u16,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=10"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    (client, tokio::spawn(connection))
}

/// The I/O error under a tokio-postgres error, if it is one.
fn io_kind(error: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = inner.source();
    }
    None
}
