//! The pump driven from below: over in-memory pipes, with the real built-in
//! plugins, the proxy's chain switched as the control API would switch it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Protocol, Pump, Raw};
use crate::conn::{Connection, Ended, Stats};
use crate::faults::{Chain, Fault, FaultSpec, attributes_from_json};
use crate::plugin_host::{Direction, PluginHost, PluginLimits};
use crate::postgres::{PgSide, PostgresTls};

const PIPE: usize = 64 * 1024;

async fn host() -> PluginHost {
    let limits = PluginLimits {
        max_instances: 64,
        ..PluginLimits::default()
    };
    PluginHost::new(limits, None).await.expect("plugin host")
}

async fn fault(
    host: &PluginHost,
    kind: &str,
    stream: Direction,
    attributes: serde_json::Value,
) -> Arc<Fault> {
    let attributes = attributes.as_object().cloned().unwrap_or_default();
    let spec = FaultSpec {
        name: format!("{kind}_{stream}"),
        plugin: host
            .get(kind)
            .unwrap_or_else(|| panic!("no built-in {kind}")),
        stream,
        toxicity: 1.0,
        every: None,
        clients: None,
        contract_attributes: attributes_from_json(&attributes).unwrap(),
        attributes,
        warnings: Vec::new(),
    };
    Arc::new(Fault::new(spec, 7).await.expect("the fault's instance"))
}

fn chain(faults: &[&Arc<Fault>]) -> Arc<Chain> {
    Arc::new(Chain {
        faults: faults.iter().map(|f| Arc::clone(f)).collect(),
    })
}

fn connection(chain: &watch::Sender<Arc<Chain>>) -> Arc<Connection> {
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    Arc::new(Connection {
        id: 1,
        proxy: "test".into(),
        client,
        upstream: "127.0.0.1:1".into(),
        seed: 7,
        chain: chain.subscribe(),
        stats: Arc::new(Stats::default()),
        cancel: CancellationToken::new(),
        ending: Default::default(),
        live: Default::default(),
        requests: Default::default(),
    })
}

/// A pump running in a task: write into `input`, read from `output`.
struct Running {
    input: DuplexStream,
    output: DuplexStream,
    task: JoinHandle<Result<(), Ended>>,
}

/// Runs `pump` between two in-memory pipes.
fn spawn<P: Protocol>(mut pump: Pump<P>) -> Running {
    let (input, pump_in) = tokio::io::duplex(PIPE);
    let (pump_out, output) = tokio::io::duplex(PIPE);
    let task = tokio::spawn(async move {
        let (mut reader, _) = tokio::io::split(pump_in);
        let (_, mut writer) = tokio::io::split(pump_out);
        pump.run(&mut reader, &mut writer).await
    });
    Running {
        input,
        output,
        task,
    }
}

/// One upstream pump over plain bytes, with `initial` as the chain.
fn raw_pump(initial: Arc<Chain>) -> (watch::Sender<Arc<Chain>>, Running) {
    let chain = watch::Sender::new(initial);
    let pump = Pump::new(Direction::Upstream, connection(&chain), Raw);
    (chain, spawn(pump))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Reads exactly `len` bytes, or fails the test after `within`.
async fn read_exactly(output: &mut DuplexStream, len: usize, within: Duration) -> Vec<u8> {
    let mut got = vec![0; len];
    tokio::time::timeout(within, output.read_exact(&mut got))
        .await
        .unwrap_or_else(|_| panic!("{len} bytes did not arrive within {within:?}"))
        .expect("reading the pump's output");
    got
}

/// Whatever arrives within `wait`.
async fn read_for(output: &mut DuplexStream, wait: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(wait, output.read_to_end(&mut got)).await;
    got
}

#[tokio::test]
async fn order_is_kept_under_latency_and_slicer() {
    let host = host().await;
    let latency = fault(
        &host,
        "latency",
        Direction::Upstream,
        json!({"latency": 2, "jitter": 3}),
    )
    .await;
    let slicer = fault(
        &host,
        "slicer",
        Direction::Upstream,
        json!({"average_size": 100, "size_variation": 60, "delay": 5}),
    )
    .await;
    let (
        _chain,
        Running {
            mut input,
            mut output,
            task,
        },
    ) = raw_pump(chain(&[&latency, &slicer]));
    let data = pattern(300_000);
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            // Pieces of odd sizes, so chunks and slices never line up.
            for piece in data.chunks(7_919) {
                input.write_all(piece).await.unwrap();
            }
            input.shutdown().await.unwrap();
            input
        })
    };
    let got = read_exactly(&mut output, data.len(), Duration::from_secs(60)).await;
    assert!(got == data, "bytes were lost or reordered");
    let _input = writer.await.unwrap();
    assert!(
        read_for(&mut output, Duration::from_secs(5))
            .await
            .is_empty(),
        "bytes after the end"
    );
    assert!(task.await.unwrap().is_ok(), "the pump ended the connection");
}

#[tokio::test]
async fn held_data_is_all_released_when_the_hold_goes() {
    let host = host().await;
    let blackhole = fault(&host, "blackhole", Direction::Upstream, json!({})).await;
    let (
        chain,
        Running {
            mut input,
            mut output,
            ..
        },
    ) = raw_pump(chain(&[&blackhole]));
    let data = pattern(200_000);
    let writer = {
        let data = data.clone();
        // More than the pump reads ahead and the pipes hold: the writer is
        // pushed back, and must finish once the hold goes.
        tokio::spawn(async move { input.write_all(&data).await.map(|()| input) })
    };
    assert!(
        read_for(&mut output, Duration::from_millis(300))
            .await
            .is_empty(),
        "a blackhole let data through"
    );
    chain.send_replace(Arc::new(Chain::default()));
    let got = read_exactly(&mut output, data.len(), Duration::from_secs(10)).await;
    assert!(got == data, "held bytes were lost or reordered");
    writer.await.unwrap().expect("the writer was let go");
}

#[tokio::test]
async fn removing_a_fault_mid_sleep_lets_the_data_go_at_once() {
    let host = host().await;
    let latency = fault(
        &host,
        "latency",
        Direction::Upstream,
        json!({"latency": 60_000}),
    )
    .await;
    let (
        chain,
        Running {
            mut input,
            mut output,
            ..
        },
    ) = raw_pump(chain(&[&latency]));
    input.write_all(b"delayed for a minute").await.unwrap();
    assert!(
        read_for(&mut output, Duration::from_millis(200))
            .await
            .is_empty()
    );
    chain.send_replace(Arc::new(Chain::default()));
    // Far less than the minute the sleep had left.
    let got = read_exactly(&mut output, 20, Duration::from_secs(10)).await;
    assert_eq!(got, b"delayed for a minute");
    // And the pump is a plain copy again.
    input.write_all(b"next").await.unwrap();
    assert_eq!(
        read_exactly(&mut output, 4, Duration::from_secs(10)).await,
        b"next"
    );
}

#[tokio::test]
async fn a_chain_replaced_mid_chunk_passes_the_rest_of_the_chunk_whole() {
    let host = host().await;
    // 16-byte pieces, 20 ms apart: a 4 KiB chunk would take five seconds.
    let slicer = fault(
        &host,
        "slicer",
        Direction::Upstream,
        json!({"average_size": 16, "size_variation": 0, "delay": 20_000}),
    )
    .await;
    let (
        chain,
        Running {
            mut input,
            mut output,
            ..
        },
    ) = raw_pump(chain(&[&slicer]));
    let data = pattern(4096);
    input.write_all(&data).await.unwrap();
    let first = read_for(&mut output, Duration::from_millis(200)).await;
    assert!(
        !first.is_empty() && first.len() < data.len(),
        "the slicer should be part way: {} bytes",
        first.len()
    );
    // A new chain with a different fault, as `PUT .../toxics` makes.
    let noop = fault(&host, "noop", Direction::Upstream, json!({})).await;
    chain.send_replace(chain_of(&noop));
    let rest = read_exactly(
        &mut output,
        data.len() - first.len(),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        [first, rest].concat() == data,
        "bytes were lost or reordered at the swap"
    );
}

fn chain_of(fault: &Arc<Fault>) -> Arc<Chain> {
    chain(&[fault])
}

/// A typed Postgres message.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn startup_packet() -> Vec<u8> {
    let body = b"\x00\x03\x00\x00user\x00test\x00\x00";
    let mut m = (body.len() as u32 + 4).to_be_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

#[tokio::test]
async fn a_reply_waits_for_the_servers_answers_to_what_the_client_sent_before() {
    let host = host().await;
    let chain = watch::Sender::new(Arc::new(Chain::default()));
    let conn = connection(&chain);
    let (up, down) = PgSide::pair(PostgresTls::Refuse);
    let Running {
        input: mut client,
        output: mut to_server,
        ..
    } = spawn(Pump::new(Direction::Upstream, conn.clone(), up));
    let Running {
        input: mut server,
        output: mut to_client,
        ..
    } = spawn(Pump::new(Direction::Downstream, conn, down));

    // The startup handshake, then a first query the server has not answered.
    client.write_all(&startup_packet()).await.unwrap();
    read_exactly(
        &mut to_server,
        startup_packet().len(),
        Duration::from_secs(5),
    )
    .await;
    let ready = [message(b'R', &[0, 0, 0, 0]), message(b'Z', b"I")].concat();
    server.write_all(&ready).await.unwrap();
    assert_eq!(
        read_exactly(&mut to_client, ready.len(), Duration::from_secs(5)).await,
        ready
    );
    let first = message(b'Q', b"SELECT 1\0");
    client.write_all(&first).await.unwrap();
    assert_eq!(
        read_exactly(&mut to_server, first.len(), Duration::from_secs(5)).await,
        first
    );

    // The client's next message is answered by the fault: FATAL, then close.
    let terminate = fault(
        &host,
        "pg_terminate",
        Direction::Upstream,
        json!({"when": "next"}),
    )
    .await;
    chain.send_replace(chain_of(&terminate));
    tokio::time::sleep(Duration::from_millis(50)).await;
    client
        .write_all(&message(b'Q', b"SELECT 2\0"))
        .await
        .unwrap();
    assert!(
        read_for(&mut to_client, Duration::from_millis(300))
            .await
            .is_empty(),
        "the fault's reply overtook the server's answer to the first query"
    );

    // The server answers the first query; the client gets that answer
    // whole, then the fault's error, then the end.
    let answer = [
        message(b'T', b"\x00\x01?column?\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x00"),
        message(b'D', b"\x00\x01\x00\x00\x00\x011"),
        message(b'C', b"SELECT 1\0"),
        message(b'Z', b"I"),
    ]
    .concat();
    server.write_all(&answer).await.unwrap();
    let got = read_for(&mut to_client, Duration::from_secs(5)).await;
    assert!(
        got.len() > answer.len(),
        "no reply after the answer: {got:?}"
    );
    assert_eq!(
        &got[..answer.len()],
        &answer[..],
        "the server's answer was not first"
    );
    let reply = &got[answer.len()..];
    assert_eq!(reply[0], b'E', "the fault's reply is an ErrorResponse");
    assert!(reply.windows(5).any(|w| w == b"57P01"), "{reply:?}");
}

/// Both pumps of one `postgres` connection over in-memory pipes: the
/// client's end (write to the proxy, read what it sends back), the server's.
struct PgConnection {
    chain: watch::Sender<Arc<Chain>>,
    client: DuplexStream,
    to_server: DuplexStream,
    server: DuplexStream,
    to_client: DuplexStream,
}

fn pg_connection(initial: Arc<Chain>) -> PgConnection {
    let chain = watch::Sender::new(initial);
    let conn = connection(&chain);
    let (up, down) = PgSide::pair(PostgresTls::Refuse);
    let up = spawn(Pump::new(Direction::Upstream, conn.clone(), up));
    let down = spawn(Pump::new(Direction::Downstream, conn, down));
    PgConnection {
        chain,
        client: up.input,
        to_server: up.output,
        server: down.input,
        to_client: down.output,
    }
}

/// The startup handshake through `pg`: the startup packet to the server,
/// AuthenticationOk and ReadyForQuery back.
async fn start_session(pg: &mut PgConnection) {
    pg.client.write_all(&startup_packet()).await.unwrap();
    let startup = startup_packet();
    let got = read_exactly(&mut pg.to_server, startup.len(), Duration::from_secs(5)).await;
    assert_eq!(got, startup);
    let ready = [message(b'R', &[0, 0, 0, 0]), message(b'Z', b"I")].concat();
    pg.server.write_all(&ready).await.unwrap();
    let got = read_exactly(&mut pg.to_client, ready.len(), Duration::from_secs(5)).await;
    assert_eq!(got, ready);
}

/// A simple query.
fn query(sql: &str) -> Vec<u8> {
    message(b'Q', &[sql.as_bytes(), b"\0"].concat())
}

/// A server's whole answer to a simple query: one row holding `value`.
fn answer(value: &str) -> Vec<u8> {
    // One column "v" of type text (oid 25).
    let column =
        b"\x00\x01v\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00";
    let mut row = vec![0, 1];
    row.extend_from_slice(&(value.len() as u32).to_be_bytes());
    row.extend_from_slice(value.as_bytes());
    [
        message(b'T', column),
        message(b'D', &row),
        message(b'C', b"SELECT 1\0"),
        message(b'Z', b"I"),
    ]
    .concat()
}

#[tokio::test]
async fn a_message_too_long_for_a_fault_streams_past_it_with_the_faults_steps() {
    let host = host().await;
    // Every statement, the one whose SQL it is not shown too.
    let delay = fault(
        &host,
        "pg_delay_query",
        Direction::Upstream,
        json!({"delay": 300}),
    )
    .await;
    let mut pg = pg_connection(chain_of(&delay));
    start_session(&mut pg).await;

    let big = query(&"x".repeat(3 * crate::postgres::STREAM_ABOVE));
    let small = query("SELECT 1");
    let started = std::time::Instant::now();
    let whole_written = std::sync::atomic::AtomicBool::new(false);
    // The pipes hold 64 KiB: the client writes while the server reads.
    let client = async {
        pg.client.write_all(&big).await.unwrap();
        whole_written.store(true, std::sync::atomic::Ordering::Relaxed);
        pg.client.write_all(&small).await.unwrap();
    };
    let server = async {
        let got = read_exactly(
            &mut pg.to_server,
            crate::postgres::STREAM_ABOVE + 1,
            Duration::from_secs(5),
        )
        .await;
        // Not held until it is whole: a part went through, after the
        // fault's delay, before the client could write the rest.
        assert!(
            !whole_written.load(std::sync::atomic::Ordering::Relaxed),
            "held until whole"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "not delayed"
        );
        let rest = read_exactly(
            &mut pg.to_server,
            big.len() + small.len() - got.len(),
            Duration::from_secs(5),
        )
        .await;
        [got, rest].concat()
    };
    let ((), through) = tokio::join!(client, server);
    assert!(
        through == [big.clone(), small].concat(),
        "the messages changed on the way"
    );

    // A fault whose steps replace the message: pg_error has the server raise
    // its error in place of it, and swallows the rest as it comes.
    let error = fault(&host, "pg_error", Direction::Upstream, json!({})).await;
    pg.chain.send_replace(chain_of(&error));
    let (head, tail) = big.split_at(2 * crate::postgres::STREAM_ABOVE);
    pg.client.write_all(head).await.unwrap();
    let raised = read_for(&mut pg.to_server, Duration::from_millis(500)).await;
    assert_eq!(raised[0], b'Q');
    assert!(
        raised.windows(7).any(|w| w == b"RAISE E") && raised.len() < 2_000,
        "{} bytes: {:?}",
        raised.len(),
        String::from_utf8_lossy(&raised[..raised.len().min(200)])
    );
    // The fault is removed while the message streams past it: what it
    // answered for the whole message still holds (the rest is swallowed),
    // and the next message passes untouched.
    pg.chain.send_replace(chain(&[]));
    let next = query("SELECT 2");
    // Written while the server reads: were the rest to pass, it would not
    // fit the pipe.
    let client = async {
        let write = async {
            pg.client.write_all(tail).await.unwrap();
            pg.client.write_all(&next).await.unwrap();
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
    };
    let ((), after) = tokio::join!(
        client,
        read_for(&mut pg.to_server, Duration::from_millis(500))
    );
    assert!(
        after == next,
        "{} bytes reached the server after the fault left, not the next query",
        after.len()
    );
}

#[tokio::test]
async fn a_reply_due_inside_a_chunk_goes_right_after_the_message_that_makes_it_due() {
    let host = host().await;
    host.load_file(
        &std::path::Path::new(env!("FAULTGATE_PLUGIN_BUILD_DIR"))
            .join("faultgate_test_pg_answer.wasm"),
    )
    .await
    .expect("the pg_answer test plugin");
    let answering = fault(
        &host,
        "pg_answer",
        Direction::Upstream,
        json!({"sql_regex": "answer_me"}),
    )
    .await;
    let mut pg = pg_connection(chain_of(&answering));
    start_session(&mut pg).await;

    // Pipelined: the fault answers the second; the server the others.
    let (first, third) = (query("SELECT 'one'"), query("SELECT 'three'"));
    let sent = [first.clone(), query("SELECT 'answer_me'"), third.clone()].concat();
    pg.client.write_all(&sent).await.unwrap();
    let got = read_exactly(
        &mut pg.to_server,
        first.len() + third.len(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(got, [first, third].concat());
    // The server's two answers in one write: the fault's goes between them.
    let (one, three) = (answer("one"), answer("three"));
    pg.server
        .write_all(&[one.clone(), three.clone()].concat())
        .await
        .unwrap();
    let got = read_for(&mut pg.to_client, Duration::from_millis(500)).await;
    assert!(
        got.starts_with(&one),
        "the server's first answer is not first"
    );
    assert!(
        got.ends_with(&three),
        "the server's second answer is not last"
    );
    let between = &got[one.len()..got.len() - three.len()];
    assert!(
        between.windows(21).any(|w| w == b"answered by faultgate"),
        "the fault's answer is not between the server's: {:?}",
        String::from_utf8_lossy(&got)
    );
}
