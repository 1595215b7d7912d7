//! A control API answer that is not 2xx leaves everything as it was: the
//! proxies, their settings, their faults, whether they listen, and the
//! connections open through them. Each test makes an operation fail part-way
//! (a listen address another socket holds, a bad fault after a good entry)
//! and checks that nothing changed, over real sockets to real servers.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server};
use support::postgres::{Postgres, connect};
use tokio::net::TcpStream;

/// A loopback port held by a socket of the test's own, so that a proxy
/// asked to listen there cannot.
fn taken_port() -> (std::net::TcpListener, SocketAddr) {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    (holder, addr)
}

/// Everything the API shows of every proxy.
async fn everything(fg: &Faultgate) -> Value {
    fg.expect("GET", "/proxies", None, 200).await
}

#[tokio::test]
async fn a_refused_update_of_a_disabled_proxy_changes_neither_its_listen_nor_its_upstream() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    fg.proxy("d1", echo_addr).await;
    fg.set_enabled("d1", false).await;
    let before = everything(&fg).await;
    let (_holder, taken) = taken_port();

    fg.expect_error(
        "POST",
        "/proxies/d1",
        Some(json!({"listen": taken.to_string(), "upstream": "127.0.0.1:9", "enabled": true})),
        500,
        &taken.to_string(),
    )
    .await;
    assert_eq!(
        everything(&fg).await,
        before,
        "a refused update changed state"
    );

    // The proxy can still be put back to work: /reset starts it where it was.
    fg.expect("POST", "/reset", None, 204).await;
    let d1 = fg.expect("GET", "/proxies/d1", None, 200).await;
    assert_eq!(d1["enabled"], true);
    assert_eq!(d1["listen"], before["d1"]["listen"]);
    let listen: SocketAddr = d1["listen"].as_str().unwrap().parse().unwrap();
    let mut client = TcpStream::connect(listen).await.unwrap();
    echo(&mut client, b"to the upstream it had").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_update_of_an_enabled_proxy_keeps_its_listener_and_its_connections() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let before = everything(&fg).await;
    let (_holder, taken) = taken_port();

    for body in [
        json!({"listen": taken.to_string(), "enabled": true}),
        json!({"listen": taken.to_string()}),
    ] {
        fg.expect_error("POST", "/proxies/pg", Some(body), 500, &taken.to_string())
            .await;
        assert_eq!(
            everything(&fg).await,
            before,
            "a refused update changed state"
        );
        // The session opened before the refusal goes on...
        let two: i32 =
            tokio::time::timeout(Duration::from_secs(10), client.query_one("SELECT 2", &[]))
                .await
                .expect("the query through the proxy hung")
                .expect("the connection open through the proxy was dropped by a refused update")
                .get(0);
        assert_eq!(two, 2);
        // ...and the proxy still accepts where it listened.
        let other = connect(listen.port()).await.unwrap();
        let three: i32 = other.query_one("SELECT 3", &[]).await.unwrap().get(0);
        assert_eq!(three, 3);
    }
}

#[tokio::test]
async fn a_refused_populate_keeps_the_proxies_it_would_replace_and_creates_none() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    let old_listen = fg.proxy("old", echo_addr).await;
    fg.add_toxic(
        "old",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
    let mut open = TcpStream::connect(old_listen).await.unwrap();
    echo(&mut open, b"before").await;
    let before = everything(&fg).await;
    let (_holder, taken) = taken_port();

    // The existing proxy's new listen address is taken.
    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([
                {"name": "fresh", "listen": "127.0.0.1:0", "upstream": echo_addr.to_string()},
                {"name": "old", "listen": taken.to_string(), "upstream": echo_addr.to_string()},
            ])),
        )
        .await;
    support::faultgate::error_mentions(status, &body, 500, &taken.to_string());
    assert_eq!(
        body["proxies"],
        json!([]),
        "a refused populate listed proxies"
    );
    assert_eq!(
        everything(&fg).await,
        before,
        "a refused populate changed state"
    );
    echo(&mut open, b"after a refused populate").await;

    // A bad fault on an entry after one that replaces a proxy.
    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([
                {"name": "old", "listen": old_listen.to_string(), "upstream": "127.0.0.1:9"},
                {"name": "fresh", "upstream": echo_addr.to_string(),
                 "toxics": [{"type": "latency", "attributes": {"latency": "slow"}}]},
            ])),
        )
        .await;
    support::faultgate::error_mentions(status, &body, 400, "latency");
    assert_eq!(
        everything(&fg).await,
        before,
        "a refused populate changed state"
    );
    echo(&mut open, b"after another refused populate").await;
}

#[tokio::test]
async fn a_refused_reset_keeps_every_toxic_and_every_disabled_proxy() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    fg.proxy("a", echo_addr).await;
    fg.add_toxic(
        "a",
        json!({"type": "latency", "attributes": {"latency": 1}}),
    )
    .await;
    let z_listen = fg.proxy("z", echo_addr).await;
    fg.add_toxic("z", json!({"type": "noop"})).await;
    fg.set_enabled("z", false).await;
    let before = everything(&fg).await;

    // Someone else takes the port of the disabled proxy.
    let holder = std::net::TcpListener::bind(z_listen).unwrap();
    fg.expect_error("POST", "/reset", None, 500, &z_listen.to_string())
        .await;
    assert_eq!(
        everything(&fg).await,
        before,
        "a refused reset changed state"
    );

    drop(holder);
    fg.expect("POST", "/reset", None, 204).await;
    let after = everything(&fg).await;
    for name in ["a", "z"] {
        assert_eq!(after[name]["enabled"], true);
        assert_eq!(after[name]["toxics"], json!([]));
    }
}

#[tokio::test]
async fn a_populate_naming_a_proxy_twice_is_refused_before_anything_changes() {
    let fg = Faultgate::start(&[]).await;
    let (echo_addr, _) = echo_server().await;
    fg.proxy("db", echo_addr).await;
    let before = everything(&fg).await;
    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([
                {"name": "new", "upstream": echo_addr.to_string()},
                {"name": "db", "upstream": "127.0.0.1:9"},
                {"name": "db", "upstream": "127.0.0.1:10"},
            ])),
        )
        .await;
    let message = support::faultgate::error_mentions(status, &body, 400, "\"db\"");
    assert!(message.contains("2") && message.contains("3"), "{message}");
    assert_eq!(everything(&fg).await, before);
}

/// What a refusal must not break: a populate that replaces a proxy on the
/// same address (its socket goes to the replacement), one that moves a port
/// from one proxy to another, and a proxy moved between two addresses.
#[tokio::test]
async fn populate_and_update_may_reuse_the_ports_they_release() {
    let fg = Faultgate::start(&[]).await;
    let (first_echo, _) = echo_server().await;
    let (second_echo, mut second_reads) = echo_server().await;
    let a = fg.proxy("a", first_echo).await;

    // Same address, new upstream: the replacement listens on the same port.
    let done = fg
        .expect(
            "POST",
            "/populate",
            Some(json!([{"name": "a", "listen": a.to_string(), "upstream": second_echo.to_string()}])),
            201,
        )
        .await;
    assert_eq!(done["proxies"][0]["listen"], a.to_string());
    let mut client = TcpStream::connect(a).await.unwrap();
    echo(&mut client, b"to the second upstream").await;
    assert!(second_reads.recv().await.is_some());

    // A's port goes to a new proxy b, while a moves to a fresh port.
    let done = fg
        .expect(
            "POST",
            "/populate",
            Some(json!([
                {"name": "a", "listen": "127.0.0.1:0", "upstream": first_echo.to_string()},
                {"name": "b", "listen": a.to_string(), "upstream": second_echo.to_string()},
            ])),
            201,
        )
        .await;
    assert_eq!(done["proxies"][1]["listen"], a.to_string());
    let moved: SocketAddr = done["proxies"][0]["listen"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(moved, a);
    for at in [a, moved] {
        let mut client = TcpStream::connect(at).await.unwrap();
        echo(&mut client, b"through both").await;
    }

    // And back by update: b to a fresh port, then a to b's old one.
    let b = fg
        .expect(
            "POST",
            "/proxies/b",
            Some(json!({"listen": "127.0.0.1:0"})),
            200,
        )
        .await;
    assert_ne!(b["listen"], a.to_string());
    fg.expect(
        "POST",
        "/proxies/a",
        Some(json!({"listen": a.to_string()})),
        200,
    )
    .await;
    let mut client = TcpStream::connect(a).await.unwrap();
    echo(&mut client, b"a is back").await;
}

/// A proxy moved to another address of its own port must let go of its
/// socket before it can bind the new one; if the new one still cannot be
/// bound (another process holds an address of that port), the proxy gets
/// its socket back and its connections never notice.
#[tokio::test]
async fn a_refused_move_that_had_to_release_its_port_gets_its_listener_back() {
    let fg = Faultgate::start(&["--allow-non-loopback-listen"]).await;
    let (echo_addr, _) = echo_server().await;
    let listen = fg.proxy("p", echo_addr).await;
    let mut open = TcpStream::connect(listen).await.unwrap();
    echo(&mut open, b"before").await;
    let before = everything(&fg).await;
    // Another address of the same port, which every-address conflicts with.
    let _holder = std::net::TcpListener::bind(("127.0.0.2", listen.port())).unwrap();
    let everywhere = format!("0.0.0.0:{}", listen.port());

    fg.expect_error(
        "PATCH",
        "/proxies/p",
        Some(json!({"listen": everywhere})),
        500,
        &everywhere,
    )
    .await;
    let (status, body) = fg
        .request(
            "POST",
            "/populate",
            Some(json!([
                {"name": "q", "upstream": echo_addr.to_string()},
                {"name": "p", "listen": everywhere, "upstream": echo_addr.to_string()},
            ])),
        )
        .await;
    support::faultgate::error_mentions(status, &body, 500, &everywhere);

    assert_eq!(
        everything(&fg).await,
        before,
        "a refused move changed state"
    );
    echo(&mut open, b"after").await;
    let mut again = TcpStream::connect(listen).await.unwrap();
    echo(&mut again, b"and a new connection").await;
    assert!(
        fg.log().contains("proxy stopped"),
        "the move did not have to release the port, so this test shows nothing:\n{}",
        fg.log()
    );
}
