//! The control API's limits: slow or idle clients are closed, a flood of
//! connections cannot lock the API out, and at the process's open-file
//! limit the API still answers while proxies refuse (and count) what they
//! cannot serve. Limits come from the environment (each setting has a
//! variable), lowered so floods stay small and tests fast.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::faultgate::{Faultgate, Launch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closed `stream` within `within`: a read gives EOF or
/// an error (whatever had been answered is read and dropped first).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends a whole `GET /version` on `stream` and reads its answer.
async fn get_version(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the API answers")
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

/// Sends `request_line` (e.g. "GET /version") on a new connection with
/// `Connection: close`; the status and the body as JSON.
async fn one_request(fg: &Faultgate, request_line: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(fg.api_addr()).await.unwrap();
    stream
        .write_all(
            format!("{request_line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the API answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_api_connections_are_closed_after_the_header_timeout() {
    let fg = Faultgate::start_with(
        &[],
        Launch {
            env: &[("FAULTGATE_API_HEADER_TIMEOUT", "1s")],
            ..Default::default()
        },
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(fg.api_addr()).await.unwrap();
        stream
            .write_all(b"GET /version HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // One header byte every 200 ms from each, for up to 4 s: the head is
    // never finished, and the server must not wait for it.
    let started = Instant::now();
    let mut open = slow.len();
    while open > 0 && started.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = 0;
        for stream in &mut slow {
            if stream.write_all(b"X").await.is_ok()
                && !closed_within(stream, Duration::from_millis(1)).await
            {
                open += 1;
            }
        }
        // The API answers others meanwhile.
        fg.expect("GET", "/version", None, 200).await;
    }
    assert_eq!(
        open,
        0,
        "{open} of 20 slowloris connections still open after {:?} (header timeout 1 s)",
        started.elapsed()
    );
    assert!(
        fg.series("faultgate_api_connections_closed_total{reason=\"header_timeout\"}")
            .await
            .unwrap_or(0)
            >= 20,
        "{}",
        fg.request("GET", "/metrics", None).await.1
    );
    assert!(
        fg.log().contains("--api-header-timeout"),
        "closing slow clients is not logged:\n{}",
        fg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_api_connections_and_stalled_bodies_are_closed_after_the_idle_timeout() {
    let fg = Faultgate::start_with(
        &[],
        Launch {
            env: &[("FAULTGATE_API_IDLE_TIMEOUT", "1s")],
            ..Default::default()
        },
    )
    .await;
    // A keep-alive connection that made one request and then says nothing.
    let mut idle = TcpStream::connect(fg.api_addr()).await.unwrap();
    get_version(&mut idle).await;
    // A request whose body stops coming.
    let mut stalled = TcpStream::connect(fg.api_addr()).await.unwrap();
    stalled
        .write_all(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na")
        .await
        .unwrap();

    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "an idle keep-alive connection is still open 4 s on (idle timeout 1 s)"
    );
    assert!(
        closed_within(&mut stalled, Duration::from_secs(4)).await,
        "a request whose body stalled is still open 4 s on (idle timeout 1 s)"
    );
    assert_eq!(
        fg.series("faultgate_api_connections_closed_total{reason=\"idle_timeout\"}")
            .await,
        Some(2)
    );
    // The stalled request changed nothing.
    assert_eq!(
        fg.expect("GET", "/proxies", None, 200).await,
        serde_json::json!({})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_limit_idle_connections_make_way_and_busy_ones_get_a_503() {
    let fg = Faultgate::start_with(
        &[],
        Launch {
            env: &[("FAULTGATE_MAX_API_CONNECTIONS", "8")],
            ..Default::default()
        },
    )
    .await;
    // Eight idle keep-alive connections fill the limit; a new client is
    // still answered: the connection idle longest makes way.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(fg.api_addr()).await.unwrap();
        get_version(&mut stream).await;
        idle.push(stream);
        // Quiet times a few milliseconds apart, so that the longest is
        // the first one's beyond doubt.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(one_request(&fg, "GET /version").await.0, 200);
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(2)).await,
        "the connection idle longest was not closed to make way"
    );

    // Eight requests whose bodies are still coming are busy: none is closed
    // for a newcomer, which is answered 503 in Toxiproxy's error shape.
    let mut busy = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(fg.api_addr()).await.unwrap();
        stream
            .write_all(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        busy.push(stream);
        // Its head read before the next one comes: a connection whose
        // request has not begun being answered may make way itself.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, answer) = one_request(&fg, "GET /version").await;
    support::faultgate::error_mentions(status, &answer, 503, "--max-api-connections");
    for stream in &mut busy {
        assert!(
            !closed_within(stream, Duration::from_millis(10)).await,
            "a busy connection was closed to make way"
        );
    }
    drop(busy);

    support::eventually(
        "the API answers once the busy connections are gone",
        Duration::from_secs(5),
        || async { one_request(&fg, "GET /version").await.0 == 200 },
    )
    .await;
    let (_, metrics) = one_request(&fg, "GET /metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics
            .contains("faultgate_api_connections_refused_total{reason=\"connection_limit\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("faultgate_api_connections_closed_total{reason=\"evicted\"} "),
        "{metrics}"
    );
    assert!(
        fg.log().contains("--max-api-connections"),
        "reaching the limit is not logged:\n{}",
        fg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_open_file_limit_the_api_answers_and_proxies_refuse_and_count() {
    let fg = Faultgate::start_with(
        &[],
        Launch {
            open_files: Some(64),
            ..Default::default()
        },
    )
    .await;
    let (echo, _) = support::peers::echo_server().await;
    let listen = fg.proxy("p", echo).await;

    // Each relayed connection holds two files; 60 of them are more than the
    // process may open. Every one is either relayed or closed at once:
    // none is left hanging.
    let mut connected = Vec::new();
    for _ in 0..60 {
        connected.push(TcpStream::connect(listen).await.unwrap());
    }
    let mut clients = Vec::new();
    let mut refused = 0;
    for (i, mut stream) in connected.into_iter().enumerate() {
        let message = (i as u32).to_be_bytes();
        let relayed = async {
            stream.write_all(&message).await.ok()?;
            let mut back = [0u8; 4];
            stream.read_exact(&mut back).await.ok()?;
            (back == message).then_some(())
        };
        match tokio::time::timeout(Duration::from_secs(3), relayed).await {
            Ok(Some(())) => clients.push(stream),
            Ok(None) => refused += 1,
            Err(_) => panic!("connection {i} through the proxy hangs at the open-file limit"),
        }
    }
    assert!(refused > 0, "the open-file limit was not reached");

    // The API answers at the limit, and says how many were refused.
    let refused_at_limit = fg
        .series("faultgate_connections_refused_total{proxy=\"p\",reason=\"open_files\"}")
        .await
        .unwrap_or(0);
    assert!(
        refused_at_limit > 0,
        "refusals at the limit are not counted"
    );
    let (status, _): (u16, Value) = fg.request("GET", "/proxies/p", None).await;
    assert_eq!(status, 200);
    assert!(
        fg.log().contains("open-file limit"),
        "reaching the open-file limit is not logged:\n{}",
        fg.log()
    );

    // Once the clients are gone, the proxy relays again.
    drop(clients);
    support::eventually("the proxy relays again", Duration::from_secs(5), || async {
        let Ok(mut stream) = TcpStream::connect(listen).await else {
            return false;
        };
        let relayed = async {
            stream.write_all(b"again").await.ok()?;
            let mut back = [0u8; 5];
            stream.read_exact(&mut back).await.ok()?;
            (&back == b"again").then_some(())
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), relayed).await,
            Ok(Some(()))
        )
    })
    .await;
}
