//! The TCP faults for flaky links and a connection's life: `packet_loss`,
//! `limit_time`, `latency_wave`, `slow_open` and `half_close`, each against
//! a real Postgres server and its client.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::read_to_end;
use support::pg_wire::{query, session, startup_packet};
use support::postgres::{Postgres, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether a fresh session through `port` answers `SELECT 1` within `within`.
async fn query_works(port: u16, within: Duration) -> bool {
    let attempt = async {
        let client = connect(port).await.ok()?;
        client.simple_query("SELECT 1").await.ok()
    };
    matches!(tokio::time::timeout(within, attempt).await, Ok(Some(_)))
}

/// Which of `sessions` sessions, opened one after another through a fresh
/// faultgate started with `--seed seed`, got through a `packet_loss` of
/// half the client's chunks.
async fn sessions_through_packet_loss(pg: &Postgres, seed: &str, sessions: usize) -> Vec<bool> {
    let fg = Faultgate::start(&["--seed", seed]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "packet_loss", "stream": "upstream",
               "attributes": {"loss_rate": 0.5, "correlation": 0.2}}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..sessions {
        seen.push(query_works(port, Duration::from_millis(800)).await);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_drops_chunks_and_replays_the_same_losses_under_the_same_seed() {
    let pg = Postgres::start().await;
    // A session's client sends its startup packet and its query as two
    // chunks, each waiting for the server's answer to the one before: a
    // session works only if neither was lost.
    let first = sessions_through_packet_loss(&pg, "7", 12).await;
    assert!(
        first.contains(&true) && first.contains(&false),
        "half the chunks lost, yet sessions all worked or all failed: {first:?}"
    );
    let again = sessions_through_packet_loss(&pg, "7", 12).await;
    assert_eq!(first, again, "the same seed lost other chunks");
}

#[tokio::test]
async fn packet_loss_of_every_chunk_loses_the_session_and_of_none_loses_nothing() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"name": "loss", "type": "packet_loss", "stream": "upstream",
               "attributes": {"loss_rate": 0.0}}),
    )
    .await;
    for _ in 0..5 {
        assert!(query_works(port, Duration::from_secs(5)).await);
    }
    fg.expect(
        "POST",
        "/proxies/pg/toxics/loss",
        Some(json!({"attributes": {"loss_rate": 1.0}})),
        200,
    )
    .await;
    assert!(!query_works(port, Duration::from_millis(800)).await);
}

#[tokio::test]
async fn packet_loss_lists_its_attributes_and_refuses_a_probability_past_one() {
    let fg = Faultgate::start(&[]).await;
    let plugin = fg.expect("GET", "/plugins/packet_loss", None, 200).await;
    let names: Vec<&str> = plugin["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["loss_rate", "correlation"]);
    assert_eq!(plugin["attributes"][0]["type"], "float");
    fg.proxy("p", "127.0.0.1:9").await;
    for (attributes, named) in [
        (json!({"loss_rate": 1.5}), "loss_rate"),
        (json!({"correlation": -0.1}), "correlation"),
        (json!({"loss_rate": "often"}), "loss_rate"),
    ] {
        let toxic = json!({"type": "packet_loss", "attributes": attributes});
        fg.expect_error("POST", "/proxies/p/toxics", Some(toxic), 400, named)
            .await;
    }
    assert_eq!(fg.toxics("p").await, json!([]));
}

/// Opens a raw session through `port`: the startup packet sent and the
/// server's first answer read, so the session is known to be up.
async fn raw_session(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&startup_packet()).await.unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], b'R', "the server did not answer the startup");
    stream
}

#[tokio::test]
async fn limit_time_closes_a_working_session_after_its_lifetime() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "limit_time", "attributes": {"time": 700}}),
    )
    .await;
    // Data flows while the session lives.
    let client = connect(port).await.unwrap();
    let opened = Instant::now();
    client.simple_query("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let error = client.simple_query("SELECT 1").await.unwrap_err();
    assert!(error.is_closed(), "after its lifetime: {error}");

    // The cut is a close (FIN), and comes at the lifetime.
    let mut raw = raw_session(port).await;
    let started = Instant::now();
    let (_, end) = read_to_end(&mut raw).await;
    assert!(end.is_ok(), "limit_time should close (FIN), got {end:?}");
    let lived = started.elapsed();
    assert!(
        lived >= Duration::from_millis(600),
        "cut after {lived:?} (first session opened {:?} ago)",
        opened.elapsed()
    );
}

#[tokio::test]
async fn limit_time_with_reset_resets_the_session() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "limit_time", "attributes": {"time": 300, "reset": true}}),
    )
    .await;
    let mut raw = raw_session(port).await;
    let (_, end) = read_to_end(&mut raw).await;
    let error = end.expect_err("limit_time with reset should reset, not close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"name": "bad", "type": "limit_time", "attributes": {"time": -1}})),
        400,
        "time",
    )
    .await;
}

/// How long `SELECT 1` takes on `client`.
async fn round_trip(client: &tokio_postgres::Client) -> Duration {
    let started = Instant::now();
    client.simple_query("SELECT 1").await.unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_wave_ramp_makes_the_database_slowly_slower() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    let client = connect(port).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"type": "latency_wave", "stream": "upstream",
               "attributes": {"from": 0, "to": 1000, "period": 1500, "shape": "ramp"}}),
    )
    .await;
    let attached = Instant::now();
    let early = round_trip(&client).await;
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(attached.elapsed())).await;
    // Past the ramp: the latency stays at `to`.
    let late = round_trip(&client).await;
    let later = round_trip(&client).await;
    assert!(late >= Duration::from_millis(950), "at the top: {late:?}");
    assert!(
        later >= Duration::from_millis(950),
        "after the top: {later:?}"
    );
    assert!(
        early + Duration::from_millis(500) < late,
        "the ramp did not climb: {early:?} at its start, {late:?} at its top"
    );
}

#[tokio::test]
async fn latency_wave_triangle_comes_back_down_and_bad_shapes_are_refused() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    let client = connect(port).await.unwrap();
    fg.add_toxic(
        "pg",
        json!({"type": "latency_wave", "stream": "upstream",
               "attributes": {"from": 0, "to": 800, "period": 2000, "shape": "triangle"}}),
    )
    .await;
    let attached = Instant::now();
    // Halfway through the period: at its peak.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let peak = round_trip(&client).await;
    assert!(peak >= Duration::from_millis(650), "at the peak: {peak:?}");
    // A full period on: back at `from`.
    tokio::time::sleep(Duration::from_millis(2000).saturating_sub(attached.elapsed())).await;
    let trough = round_trip(&client).await;
    assert!(
        trough + Duration::from_millis(400) < peak,
        "the wave did not come back down: {peak:?} at its peak, {trough:?} a period on"
    );

    for (attributes, named) in [
        (json!({"shape": "zigzag"}), "shape"),
        (json!({"period": 0}), "period"),
        (json!({"to": -5}), "to"),
    ] {
        let toxic = json!({"type": "latency_wave", "attributes": attributes});
        fg.expect_error("POST", "/proxies/pg/toxics", Some(toxic), 400, named)
            .await;
    }
    let plugin = fg.expect("GET", "/plugins/latency_wave", None, 200).await;
    let names: Vec<&str> = plugin["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["from", "to", "period", "shape"]);
}

#[tokio::test]
async fn slow_open_dials_the_upstream_only_after_its_delay() {
    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "slow_open", "stream": "upstream", "attributes": {"delay": 1500}}),
    )
    .await;
    let started = Instant::now();
    let client = connect(port).await.unwrap();
    // How long the server has had the connection (its backend starts when
    // it accepts it), against how long the client has.
    let row = client
        .query_one(
            "SELECT extract(epoch FROM clock_timestamp() - backend_start)::float8 \
             FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let server_had = Duration::from_secs_f64(row.get(0));
    let client_had = started.elapsed();
    let late = client_had.saturating_sub(server_had);
    assert!(
        late >= Duration::from_millis(1450),
        "the server saw the connection {late:?} after the client connected"
    );
    // Only the opening waits: the session then answers at once.
    assert!(round_trip(&client).await < Duration::from_millis(1400));

    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"name": "bad", "type": "slow_open", "attributes": {"delay": "soon"}})),
        400,
        "delay",
    )
    .await;
}

#[tokio::test]
async fn half_close_gives_the_client_eof_while_its_statements_still_reach_the_server() {
    let pg = Postgres::start().await;
    let direct = pg.direct().await;
    direct
        .batch_execute("CREATE TABLE seen (n int)")
        .await
        .unwrap();
    let fg = Faultgate::start(&[]).await;
    let port = fg
        .proxy("pg", format!("127.0.0.1:{}", pg.port))
        .await
        .port();
    fg.add_toxic(
        "pg",
        json!({"type": "half_close", "stream": "downstream", "attributes": {"delay": 1000}}),
    )
    .await;
    let opened = Instant::now();
    let mut stream = session(port).await;
    // The server's side ends: the client reads the end of stream, a FIN.
    let (rest, end) = read_to_end(&mut stream).await;
    assert!(rest.is_empty(), "the server said more: {rest:?}");
    assert!(
        end.is_ok(),
        "half_close should end the direction with a FIN, got {end:?}"
    );
    assert!(opened.elapsed() >= Duration::from_millis(1000));
    // The client's side goes on: what it sends still reaches the server.
    stream
        .write_all(&query("INSERT INTO seen VALUES (42)"))
        .await
        .unwrap();
    support::eventually(
        "the statement sent after the half-close ran",
        Duration::from_secs(10),
        || async {
            let row = direct
                .query_one("SELECT count(*) FROM seen WHERE n = 42", &[])
                .await
                .unwrap();
            row.get::<_, i64>(0) == 1
        },
    )
    .await;
}
