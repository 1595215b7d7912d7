//! faultgate against a direct connection, side by side in one run.
//!
//! ```sh
//! cargo bench --bench relay                    # full run, a few minutes
//! cargo bench --bench relay -- --quick         # under a minute
//! cargo bench --bench relay -- --json out.json # also write the figures as JSON
//! ```
//!
//! Every figure is measured on loopback, against peers (a sink and an echo)
//! in a process of their own, for each route: a direct connection,
//! faultgate with no fault, with the `noop` plugin on both directions (a
//! plugin call per chunk), with `latency` 0 on both directions, with the
//! plugin `faultgate plugin new` writes on both directions, a plain
//! tokio relay (the floor for any relay), and socat when it is installed.
//! Ratios are to the direct connection in the same run, so they mean
//! something on a noisy machine; absolute numbers do not travel. See
//! BENCHMARKS.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Sizes {
    bulk_bytes: usize,
    round_trips: usize,
    connections: usize,
    idle_connections: usize,
    switches: usize,
    startups: usize,
}

const QUICK: Sizes = Sizes {
    bulk_bytes: 256 << 20,
    round_trips: 5_000,
    connections: 2_000,
    idle_connections: 2_000,
    switches: 20,
    startups: 5,
};

const FULL: Sizes = Sizes {
    bulk_bytes: 2 << 30,
    round_trips: 50_000,
    connections: 10_000,
    idle_connections: 10_000,
    switches: 200,
    startups: 20,
};

struct Route {
    name: &'static str,
    sink: SocketAddr,
    echo: SocketAddr,
}

/// One figure of one route.
struct Figure {
    metric: &'static str,
    unit: &'static str,
    route: &'static str,
    value: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == PEERS_FLAG) {
        return run_peers();
    }
    if let Some(i) = args.iter().position(|a| a == PLAIN_RELAY_FLAG) {
        let addr = |k: usize| args[i + k].parse().expect("an upstream address");
        return run_plain_relay(addr(1), addr(2));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    raise_open_file_limit(1 << 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(if quick { QUICK } else { FULL }, quick, json_out));
}

async fn run(sizes: Sizes, quick: bool, json_out: Option<PathBuf>) {
    let peers = Peers::start();
    let (sink, echo) = (peers.sink, peers.echo);
    let scaffold = scaffold_plugin();
    let scaffold_arg = scaffold.as_ref().map(|p| p.display().to_string());
    let faultgate = match &scaffold_arg {
        Some(path) => Faultgate::start(&["--plugin", path]).await,
        None => Faultgate::start(&[]).await,
    };
    let mut routes = vec![Route {
        name: "direct",
        sink,
        echo,
    }];
    let mut chains: Vec<(&str, Value)> = vec![
        ("faultgate", json!([])),
        (
            "noop",
            json!([
            {"name": "up", "type": "noop", "stream": "upstream"},
            {"name": "down", "type": "noop", "stream": "downstream"}]),
        ),
        (
            "latency0",
            json!([
            {"name": "up", "type": "latency", "stream": "upstream", "attributes": {"latency": 0}},
            {"name": "down", "type": "latency", "stream": "downstream", "attributes": {"latency": 0}}]),
        ),
    ];
    if scaffold.is_some() {
        // What `faultgate plugin new` writes, as it is (a delay of 0).
        chains.push((
            "scaffold",
            json!([
            {"name": "up", "type": SCAFFOLD_NAME, "stream": "upstream"},
            {"name": "down", "type": SCAFFOLD_NAME, "stream": "downstream"}]),
        ));
    }
    for (name, chain) in chains {
        let sink = faultgate.proxy(&format!("{name}-sink"), sink, &chain).await;
        let echo = faultgate.proxy(&format!("{name}-echo"), echo, &chain).await;
        routes.push(Route { name, sink, echo });
    }
    let plain = Helper::start(&[PLAIN_RELAY_FLAG.into(), sink.to_string(), echo.to_string()]);
    routes.push(Route {
        name: "plain relay",
        sink: plain.addrs[0],
        echo: plain.addrs[1],
    });
    let socat = Socat::start(sink, echo);
    if let Some(s) = &socat {
        routes.push(Route {
            name: "socat",
            sink: s.sink,
            echo: s.echo,
        });
    }

    // A measurement that fails (socat resets some connections under load)
    // is reported as missing, with its reason, instead of ending the run.
    std::panic::set_hook(Box::new(|info| eprintln!("  measurement failed: {info}")));
    let mut figures = Vec::new();
    eprintln!("measuring round trips, the routes taking turns");
    let echoes = routes.iter().map(|r| r.echo).collect();
    let mut round_trip_times = round_trips(echoes, sizes.round_trips).await.into_iter();
    for route in &routes {
        eprintln!("measuring {}", route.name);
        let (sink, echo) = (route.sink, route.echo);
        let mut push = |metric, unit, value: Option<f64>| {
            if let Some(value) = value {
                figures.push(Figure {
                    metric,
                    unit,
                    route: route.name,
                    value,
                });
            }
        };
        for (metric, conns) in [
            ("throughput one way, 1 connection", 1),
            ("throughput one way, 16 connections", 16),
        ] {
            push(
                metric,
                "GB/s",
                measure(one_way(sink, sizes.bulk_bytes, conns)).await,
            );
        }
        for (metric, conns) in [
            ("throughput both ways, 1 connection", 1),
            ("throughput both ways, 16 connections", 16),
        ] {
            push(
                metric,
                "GB/s",
                measure(both_ways(echo, sizes.bulk_bytes, conns)).await,
            );
        }
        if let Some(rtts) = round_trip_times.next().flatten() {
            for (metric, q) in [
                ("round trip p50", 0.5),
                ("round trip p99", 0.99),
                ("round trip p99.9", 0.999),
            ] {
                push(metric, "µs", Some(percentile(&rtts, q)));
            }
        }
        push(
            "new connections per second",
            "conn/s",
            measure(connection_rate(echo, sizes.connections)).await,
        );
    }
    let _ = std::panic::take_hook();

    eprintln!("measuring idle connections");
    let (rss_mib, held) = idle_memory(peers.holder, sizes.idle_connections).await;
    figures.push(alone(
        "resident memory, idle connections with a fault",
        "MiB",
        rss_mib,
    ));

    eprintln!("measuring fault switches");
    let switch = faultgate.proxy("switch", echo, &json!([])).await;
    let effects = switch_effect(&faultgate, switch, sizes.switches).await;
    figures.push(alone(
        "fault switch to effect p50",
        "ms",
        percentile(&effects, 0.5) / 1000.0,
    ));
    figures.push(alone(
        "fault switch to effect p99",
        "ms",
        percentile(&effects, 0.99) / 1000.0,
    ));

    eprintln!("measuring start-up");
    let startups = startup_times(sizes.startups).await;
    figures.push(alone(
        "start-up to ready API, median",
        "ms",
        percentile(&startups, 0.5) / 1000.0,
    ));
    figures.push(alone(
        "start-up to ready API, worst",
        "ms",
        percentile(&startups, 1.0) / 1000.0,
    ));

    drop(socat);
    report(&figures, &routes, held, quick, json_out);
}

/// The plugin type `faultgate plugin new` is asked to write for the bench.
const SCAFFOLD_NAME: &str = "bench_scaffold";

/// Builds the plugin `faultgate plugin new` writes, as it is, and returns
/// its `.wasm`; `None` (and the route is left out) if it cannot be built.
fn scaffold_plugin() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-scaffold");
    let root = dir.join(SCAFFOLD_NAME);
    if !root.exists() {
        let made = Command::new(env!("CARGO_BIN_EXE_faultgate"))
            .args(["plugin", "new", SCAFFOLD_NAME, "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status();
        if !matches!(made, Ok(status) if status.success()) {
            eprintln!("leaving out the scaffold route: `faultgate plugin new` failed");
            return None;
        }
    }
    eprintln!("building the scaffolded plugin");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status();
    if !matches!(built, Ok(status) if status.success()) {
        eprintln!("leaving out the scaffold route: its build failed");
        return None;
    }
    Some(
        dir.join("target/wasm32-wasip2/release")
            .join(format!("{SCAFFOLD_NAME}.wasm")),
    )
}

/// Runs a measurement in its own task: `None` if it failed.
async fn measure<T: Send + 'static>(
    run: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    tokio::spawn(run).await.ok()
}

/// A figure of faultgate alone, with no direct route to compare with.
fn alone(metric: &'static str, unit: &'static str, value: f64) -> Figure {
    Figure {
        metric,
        unit,
        route: "faultgate",
        value,
    }
}

// --- peers -------------------------------------------------------------------

/// Run as `relay --peers`, this binary serves the peers and nothing else.
const PEERS_FLAG: &str = "--peers";
/// Run as `relay --plain-relay SINK ECHO`, it is the plainest relay tokio
/// makes, in front of the two.
const PLAIN_RELAY_FLAG: &str = "--plain-relay";

/// A process of this benchmark's own, started with `args`: it prints the
/// addresses it serves on one line, then serves until its stdin closes (the
/// benchmark ended, however it ended).
struct Helper {
    child: Child,
    addrs: Vec<SocketAddr>,
}

impl Helper {
    fn start(args: &[String]) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the benchmark's own path"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting a helper process");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .expect("reading a helper's addresses");
        let addrs = line
            .split_whitespace()
            .map(|a| a.parse().expect("an address"))
            .collect();
        Self { child, addrs }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a helper's servers on a runtime of its own, prints their addresses
/// and serves until stdin closes.
fn run_helper<F: std::future::Future<Output = Vec<SocketAddr>>>(start: impl FnOnce() -> F) {
    raise_open_file_limit(1 << 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addrs = start().await;
        let line: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        println!("{}", line.join(" "));
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    });
}

/// The servers every route leads to, in a process of their own: a client and
/// its server are two processes in every real use, so a direct connection
/// pays for waking the other process as a proxied one does. (Peers inside
/// the measuring process would be served by the same threads as the
/// client, often with no wake-up at all, and the ratios would charge that
/// difference to the proxy.)
struct Peers {
    _process: Helper,
    sink: SocketAddr,
    echo: SocketAddr,
    /// Reads one byte, then closes: for idle connections.
    holder: SocketAddr,
}

impl Peers {
    fn start() -> Self {
        let process = Helper::start(&[PEERS_FLAG.into()]);
        let [sink, echo, holder] = process.addrs[..] else {
            panic!("the peers gave {:?}", process.addrs);
        };
        Self {
            _process: process,
            sink,
            echo,
            holder,
        }
    }
}

fn run_peers() {
    run_helper(|| async {
        vec![
            sink_server().await,
            echo_server().await,
            serve(|mut stream| async move {
                let mut buf = [0u8; 1];
                let _ = stream.read(&mut buf).await;
            })
            .await,
        ]
    });
}

/// The floor for any relay built on tokio, in a process of its own:
/// accept, connect, copy both ways, nothing else (no faults, no API,
/// no metrics). What faultgate costs beyond it is faultgate's own.
fn run_plain_relay(sink: SocketAddr, echo: SocketAddr) {
    run_helper(|| async move {
        let mut addrs = Vec::new();
        for upstream in [sink, echo] {
            addrs.push(
                serve(move |mut client| async move {
                    let _ = client.set_nodelay(true);
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = server.set_nodelay(true);
                        // The same read size as faultgate's.
                        let _ = tokio::io::copy_bidirectional_with_sizes(
                            &mut client,
                            &mut server,
                            256 << 10,
                            256 << 10,
                        )
                        .await;
                    }
                })
                .await,
            );
        }
        addrs
    });
}

/// Reads to EOF, then answers with the byte count (8 bytes) and closes.
async fn sink_server() -> SocketAddr {
    serve(|mut stream| async move {
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let _ = stream.write_all(&total.to_le_bytes()).await;
    })
    .await
}

/// Sends back everything, until EOF.
async fn echo_server() -> SocketAddr {
    serve(|stream| async move {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let _ = tokio::io::copy(&mut reader, &mut writer).await;
        let _ = writer.shutdown().await;
    })
    .await
}

async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

// --- measurements --------------------------------------------------------------

/// Sends `total` bytes over `conns` connections to the sink; GB/s.
async fn one_way(addr: SocketAddr, total: usize, conns: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let block = vec![0x5au8; 1 << 20];
                let mut left = total / conns;
                while left > 0 {
                    let n = left.min(block.len());
                    stream.write_all(&block[..n]).await.unwrap();
                    left -= n;
                }
                stream.shutdown().await.unwrap();
                let mut count = [0u8; 8];
                stream.read_exact(&mut count).await.unwrap();
                assert_eq!(
                    u64::from_le_bytes(count) as usize,
                    total / conns,
                    "bytes lost"
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (total / conns * conns) as f64 / started.elapsed().as_secs_f64() / 1e9
}

/// Sends `total` bytes over `conns` connections to the echo while reading
/// them back; GB/s counting both directions.
async fn both_ways(addr: SocketAddr, total: usize, conns: usize) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(async move {
                let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
                let each = total / conns;
                let sender = tokio::spawn(async move {
                    let block = vec![0xa5u8; 1 << 20];
                    let mut left = each;
                    while left > 0 {
                        let n = left.min(block.len());
                        writer.write_all(&block[..n]).await.unwrap();
                        left -= n;
                    }
                    writer.shutdown().await.unwrap();
                });
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0;
                while got < each {
                    let n = reader.read(&mut buf).await.unwrap();
                    assert!(n > 0, "echo ended early");
                    got += n;
                }
                sender.await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    2.0 * (total / conns * conns) as f64 / started.elapsed().as_secs_f64() / 1e9
}

/// 64-byte request/response round trips, `count` on one connection per
/// route; µs each, by route (`None`: the route failed).
///
/// The routes take turns, a batch each, so that every route meets the same
/// machine: on a virtual machine the cost of waking a process swings by an
/// order of magnitude with what the host is doing (whether an idle virtual
/// CPU is still being polled or was descheduled), and routes measured one
/// after another would compare different moments instead of different
/// routes.
async fn round_trips(echoes: Vec<SocketAddr>, count: usize) -> Vec<Option<Vec<f64>>> {
    const BATCHES: usize = 20;
    let mut streams = Vec::new();
    for addr in &echoes {
        let stream = TcpStream::connect(addr).await;
        streams.push(stream.ok().filter(|s| s.set_nodelay(true).is_ok()));
    }
    let mut times: Vec<Option<Vec<f64>>> = streams
        .iter()
        .map(|s| s.as_ref().map(|_| Vec::with_capacity(count)))
        .collect();
    let message = [7u8; 64];
    let mut back = [0u8; 64];
    // The first batch warms up and is not kept.
    for batch in 0..=BATCHES {
        for (stream, times) in streams.iter_mut().zip(&mut times) {
            let Some(connection) = stream else { continue };
            for _ in 0..count / BATCHES {
                let started = Instant::now();
                let answered = connection.write_all(&message).await.is_ok()
                    && connection.read_exact(&mut back).await.is_ok();
                if !answered {
                    eprintln!("  a round trip failed; the route's round trips are left out");
                    (*stream, *times) = (None, None);
                    break;
                }
                if batch > 0 {
                    let elapsed = started.elapsed().as_secs_f64() * 1e6;
                    times.as_mut().expect("kept with its stream").push(elapsed);
                }
            }
        }
    }
    times
}

/// Connections opened, used for one round trip and aborted, by 4 workers.
async fn connection_rate(addr: SocketAddr, count: usize) -> f64 {
    const WORKERS: usize = 4;
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..count / WORKERS {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.write_all(b"x").await.unwrap();
                    let mut back = [0u8; 1];
                    stream.read_exact(&mut back).await.unwrap();
                    // RST instead of FIN: no TIME_WAIT to run out of ports.
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (count / WORKERS * WORKERS) as f64 / started.elapsed().as_secs_f64()
}

/// A fresh faultgate with `count` idle connections through a proxy with a
/// fault attached; its resident memory in MiB, and how many were held.
async fn idle_memory(holder: SocketAddr, count: usize) -> (f64, usize) {
    let faultgate = Faultgate::start(&[]).await;
    let proxy = faultgate
        .proxy(
            "idle",
            holder,
            &json!([{"type": "noop", "stream": "downstream"}]),
        )
        .await;
    let baseline = faultgate.rss_mib();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        match TcpStream::connect(proxy).await {
            Ok(stream) => held.push(stream),
            Err(error) => {
                eprintln!("stopped at {} idle connections: {error}", held.len());
                break;
            }
        }
    }
    // Wait until faultgate has taken every connection (each opens its
    // resource in the fault's instance at accept), or has stopped taking
    // them (its open-file limit leaves the rest in the listener's backlog).
    let (mut open, mut last_change) = (0, Instant::now());
    while open < held.len() as u64 && last_change.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = faultgate.metric("faultgate_connections_open").await;
        if now != open {
            (open, last_change) = (now, Instant::now());
        }
    }
    // And until every connection's resource is open (a counter per open).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = faultgate.rss_mib();
    // What faultgate holds, which its own open-file limit may have capped
    // below what the client opened.
    let open = faultgate.metric("faultgate_connections_open").await as usize;
    eprintln!(
        "  faultgate holds {open} of {} connections and {} plugin instances; resident {rss:.1} MiB (before any: {baseline:.1} MiB)",
        held.len(),
        faultgate.metric("faultgate_plugin_instances_total").await,
    );
    drop(held);
    (rss, open)
}

/// Time from sending a fault switch to the API until an open connection that
/// is busy with round trips is closed by the new fault; µs each.
async fn switch_effect(faultgate: &Faultgate, proxy: SocketAddr, count: usize) -> Vec<f64> {
    let closing = json!([{"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 0}}]);
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut back = [0u8; 1];
            loop {
                let alive = stream.write_all(b"p").await.is_ok()
                    && matches!(stream.read(&mut back).await, Ok(1));
                if !alive {
                    let _ = ended_tx.send(Instant::now());
                    return;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let started = Instant::now();
        faultgate.put_chain("switch", &closing).await;
        let ended = ended_rx.await.unwrap();
        times.push(ended.duration_since(started).as_secs_f64() * 1e6);
        faultgate.put_chain("switch", &json!([])).await;
    }
    times
}

/// Time from spawning `faultgate serve` to its API answering; µs each.
async fn startup_times(count: usize) -> Vec<f64> {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
            .args([
                "serve",
                "--no-plugin-cache",
                "--api",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/healthz");
        loop {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "faultgate did not start"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1e6);
        let _ = child.kill();
        let _ = child.wait();
    }
    times
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

// --- faultgate and socat as child processes -------------------------------------

struct Faultgate {
    child: Child,
    api: String,
    http: reqwest::Client,
}

impl Faultgate {
    async fn start(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
            .args([
                "serve",
                "--seed",
                "1",
                "--no-plugin-cache",
                "--api",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting faultgate");
        let fg = Self {
            child,
            api: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        while fg
            .http
            .get(format!("{}/healthz", fg.api))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "faultgate did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fg
    }

    async fn proxy(&self, name: &str, upstream: SocketAddr, chain: &Value) -> SocketAddr {
        let created: Value = self
            .http
            .post(format!("{}/proxies", self.api))
            .body(
                json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream.to_string()})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.put_chain(name, chain).await;
        created["listen"].as_str().unwrap().parse().unwrap()
    }

    async fn put_chain(&self, proxy: &str, chain: &Value) {
        let response = self
            .http
            .put(format!("{}/proxies/{proxy}/toxics", self.api))
            .body(chain.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "PUT toxics: {}",
            response.text().await.unwrap()
        );
    }

    /// Sum of a metric over every proxy.
    async fn metric(&self, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN);
        kib / 1024.0
    }
}

impl Drop for Faultgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Socat {
    children: Vec<Child>,
    sink: SocketAddr,
    echo: SocketAddr,
}

impl Socat {
    fn start(sink: SocketAddr, echo: SocketAddr) -> Option<Self> {
        let installed = Command::new("socat")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!("socat not installed: skipping it");
            return None;
        }
        let mut children = Vec::new();
        let mut addrs = Vec::new();
        for upstream in [sink, echo] {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            children.push(
                Command::new("socat")
                    // Wait for the other side after a half-close, as a proxy should.
                    .args(["-t", "30"])
                    .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                    .arg(format!("TCP:{upstream}"))
                    .spawn()
                    .ok()?,
            );
            addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
        }
        std::thread::sleep(Duration::from_millis(300));
        Some(Self {
            children,
            sink: addrs[0],
            echo: addrs[1],
        })
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// --- report ----------------------------------------------------------------------

fn report(
    figures: &[Figure],
    routes: &[Route],
    idle_held: usize,
    quick: bool,
    json_out: Option<PathBuf>,
) {
    let mut metrics: Vec<(&str, &str)> = Vec::new();
    for f in figures {
        if !metrics.iter().any(|(m, _)| *m == f.metric) {
            metrics.push((f.metric, f.unit));
        }
    }
    let value = |metric: &str, route: &str| {
        figures
            .iter()
            .find(|f| f.metric == metric && f.route == route)
            .map(|f| f.value)
    };
    println!(
        "\n{:<48} {:>8}  {}",
        "",
        "unit",
        routes
            .iter()
            .map(|r| format!("{:>20}", r.name))
            .collect::<String>()
    );
    let mut rows = Vec::new();
    for (metric, unit) in &metrics {
        let direct = value(metric, "direct");
        let mut line = format!("{metric:<48} {unit:>8}  ");
        for route in routes.iter().map(|r| r.name) {
            match (value(metric, route), direct) {
                (Some(v), Some(d)) if route != "direct" => {
                    line += &format!("{:>20}", format!("{v:.3} ({:.2}x)", v / d))
                }
                (Some(v), _) => line += &format!("{:>20}", format!("{v:.3}")),
                (None, _) => line += &format!("{:>20}", "-"),
            }
        }
        println!("{line}");
        for route in routes.iter().map(|r| r.name) {
            if let Some(v) = value(metric, route) {
                rows.push(
                    json!({"metric": metric, "unit": unit, "route": route, "value": v,
                    "ratio_to_direct": direct.filter(|_| route != "direct").map(|d| v / d)}),
                );
            }
        }
    }
    println!(
        "\n(idle connections held: {idle_held}; mode: {})",
        if quick { "quick" } else { "full" }
    );
    if let Some(path) = json_out {
        let doc = json!({"mode": if quick { "quick" } else { "full" }, "machine": machine(), "idle_connections": idle_held, "figures": rows});
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        println!("wrote {}", path.display());
    }
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines().find_map(|l| {
            l.strip_prefix("model name")?
                .split(':')
                .nth(1)
                .map(|s| s.trim().to_owned())
        })
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned());
    json!({"cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).ok(), "kernel": kernel})
}

/// Root may lift the hard limit too; 10,000 idle connections need 20,000
/// sockets here and 20,000 in faultgate.
fn raise_open_file_limit(wanted: u64) {
    // Safety: setrlimit only reads the struct passed.
    unsafe {
        let limit = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            eprintln!(
                "could not raise the open file limit to {wanted}; idle-connection figures may stop short"
            );
        }
    }
}
