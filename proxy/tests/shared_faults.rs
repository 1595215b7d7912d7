//! One plugin instance per fault, shared by its connections: faults that
//! count and keep time across connections (flap, http_quota, `every`),
//! each connection's random stream still its own under a seed, and a
//! failing instance ending only its own toxic's connections.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::git_http::GitHttpServer;
use support::peers::{echo, echo_server};
use support::postgres::{Postgres, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether a fresh session through `port` answers `SELECT 1` in time.
async fn query_works(port: u16) -> bool {
    let attempt = async {
        let client = connect(port).await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(600), attempt).await,
        Ok(Some(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flap_lets_queries_through_in_up_windows_and_fails_them_in_down_windows() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    // A session opened before, idle across the first down window.
    let idle = connect(port).await.unwrap();

    fg.add_toxic(
        "pg",
        json!({"type": "flap", "attributes": {"up": 1000, "down": 1000}}),
    )
    .await;
    let attached = Instant::now();

    // New sessions, one after another, for four windows. Those started well
    // inside an up window must work, those inside a down window must fail;
    // near a window's edge either may happen.
    let mut seen = Vec::new();
    while attached.elapsed() < Duration::from_millis(4000) {
        let at = attached.elapsed().as_millis() as u64;
        let worked = query_works(port).await;
        seen.push((at, worked));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut up = 0;
    let mut down = 0;
    for (at, worked) in &seen {
        let into = at % 2000;
        if (150..800).contains(&into) {
            up += 1;
            assert!(
                worked,
                "a session at {at} ms (an up window) failed: {seen:?}"
            );
        } else if (1150..1800).contains(&into) {
            down += 1;
            assert!(
                !worked,
                "a session at {at} ms (a down window) worked: {seen:?}"
            );
        }
    }
    assert!(up >= 4 && down >= 4, "too few clear samples: {seen:?}");

    // The session opened before the fault was cut when the first down
    // window began.
    assert!(
        idle.simple_query("SELECT 1").await.is_err(),
        "a session open across a down window was not cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flap_keep_open_spares_open_connections_and_refuses_new_ones_while_down() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "flap", "attributes": {"up": 300, "down": 3000, "keep_open": true}}),
    )
    .await;
    let mut kept = TcpStream::connect(listen).await.unwrap();
    echo(&mut kept, b"up").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Down now: the open connection goes on, a new one is reset at once.
    echo(&mut kept, b"still").await;
    assert!(
        is_reset_at_once(listen).await,
        "a new connection while down must be reset"
    );
}

/// Whether a new connection to `listen` is reset before it can echo: the
/// reset may even come before the connect has returned.
async fn is_reset_at_once(listen: std::net::SocketAddr) -> bool {
    let mut stream = match TcpStream::connect(listen).await {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
        Err(e) => panic!("connecting to {listen}: {e}"),
    };
    let _ = stream.write_all(b"ping").await;
    let mut back = [0u8; 4];
    match stream.read_exact(&mut back).await {
        Ok(_) => {
            assert_eq!(&back, b"ping");
            false
        }
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// `count` GETs of `path` on one kept-alive connection to `base`.
async fn statuses_on_one_connection(
    base: &str,
    path: &str,
    count: usize,
) -> Vec<(u16, Option<String>)> {
    let tcp = TcpStream::connect(base).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut seen = Vec::new();
    for _ in 0..count {
        let request = hyper::Request::get(path)
            .header("host", "git.test")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.ready().await.expect("the connection was kept alive");
        let answer = sender.send_request(request).await.unwrap();
        let retry_after = answer
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.push((answer.status().as_u16(), retry_after));
        http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_quota_counts_requests_across_connections_and_clients() {
    let server = GitHttpServer::start(&["alpha"]);
    let fg = Faultgate::start(&[]).await;
    let listen = fg
        .proxy_with(json!({"name": "git", "mode": "http", "upstream": server.address()}))
        .await
        .to_string();
    fg.add_toxic(
        "git",
        json!({"type": "http_quota", "stream": "upstream",
               "attributes": {"requests": 5, "window": 60000, "path_prefix": "/git/alpha.git/info/"}}),
    )
    .await;
    let refs = "/git/alpha.git/info/refs?service=git-upload-pack";
    // Three clients, each on its own kept-alive connection, at once.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let listen = listen.clone();
            tokio::spawn(async move { statuses_on_one_connection(&listen, refs, 4).await })
        })
        .collect();
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    let passed = all.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = all.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(passed, 5, "the quota of 5 let {passed} of 12 pass: {all:?}");
    assert_eq!(refused.len(), 7, "{all:?}");
    for (_, retry_after) in refused {
        let seconds: u64 = retry_after
            .as_deref()
            .expect("a refusal says when to retry")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    }
    // Requests the quota does not match are not counted, nor refused.
    let other = statuses_on_one_connection(&listen, "/git/alpha.git/HEAD", 3).await;
    assert!(other.iter().all(|(s, _)| *s == 200), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_applies_a_fault_to_every_nth_connection_and_request() {
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    let toxic = fg
        .add_toxic("p", json!({"type": "refuse", "every": 3}))
        .await;
    assert_eq!(toxic["every"], 3, "{toxic}");
    let mut pattern = Vec::new();
    for _ in 0..9 {
        pattern.push(!is_reset_at_once(listen).await);
    }
    assert_eq!(
        pattern,
        [true, true, false, true, true, false, true, true, false],
        "every third connection is refused"
    );

    // Per request in http mode, across connections.
    let server = GitHttpServer::start(&["alpha"]);
    let web = fg
        .proxy_with(json!({"name": "git", "mode": "http", "upstream": server.address()}))
        .await
        .to_string();
    fg.add_toxic(
        "git",
        json!({"type": "http_abort", "stream": "upstream", "every": 2, "attributes": {"status": 503}}),
    )
    .await;
    let refs = "/git/alpha.git/info/refs?service=git-upload-pack";
    let mut seen = statuses_on_one_connection(&web, refs, 3).await;
    seen.extend(statuses_on_one_connection(&web, refs, 3).await);
    let codes: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes, [200, 503, 200, 503, 200, 503]);

    fg.expect_error(
        "POST",
        "/proxies/p/toxics",
        Some(json!({"name": "both", "type": "refuse", "every": 2, "toxicity": 0.5})),
        400,
        "toxicity or every",
    )
    .await;
    fg.expect_error(
        "POST",
        "/proxies/p/toxics",
        Some(json!({"name": "zero", "type": "refuse", "every": 0})),
        400,
        "every",
    )
    .await;
}

/// The sizes of the pieces a slicer cut each of two connections' data
/// into, with the connections taking turns as `order` says.
async fn slices(order: &[usize]) -> [Vec<usize>; 2] {
    let (echo_addr, mut reads) = echo_server().await;
    let fg = Faultgate::start(&["--seed", "4242"]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "slicer", "stream": "upstream",
               "attributes": {"average_size": 40, "size_variation": 30, "delay": 10_000}}),
    )
    .await;
    // Connection ids follow the order of accept: 0 first, then 1.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(listen).await.unwrap();
        echo(&mut stream, b"hello").await;
        streams.push(stream);
    }
    while reads.try_recv().is_ok() {}
    let mut sizes = [Vec::new(), Vec::new()];
    for &which in order {
        echo(&mut streams[which], &[7u8; 400]).await;
        while let Ok(n) = reads.try_recv() {
            sizes[which].push(n);
        }
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_draws_its_own_stream_under_a_seed_however_they_interleave() {
    let first = slices(&[0, 1, 0, 1]).await;
    let second = slices(&[1, 1, 0, 0]).await;
    assert_eq!(first, second, "the same seed drew differently");
    assert_ne!(first[0], first[1], "two connections drew the same stream");
}
