//! What a plugin costs in each language `faultgate plugin new` writes, side
//! by side in one run: the same template (plugin_scaffolds.rs tests what it
//! does) in Rust, Python, JavaScript and C, built with each language's own
//! tools, so the differences are the languages' runtimes and nothing else.
//!
//! ```sh
//! cargo bench --bench plugin_languages             # about 5 minutes here
//! cargo bench --bench plugin_languages -- --quick  # fewer rounds
//! ```
//!
//! For each language, in a faultgate of its own started with no compile
//! cache, on loopback only:
//! - the component's size;
//! - load: `POST /plugins`, which compiles the component (Cranelift);
//! - attach: the mean time of `POST /proxies/P/toxics` over 20 toxics, each
//!   on a proxy of its own (the API answers once the fault's instance is
//!   made), and faultgate's resident memory growth per attached toxic;
//! - TCP, per call: round trips of 16 bytes through an echo server, with the
//!   TCP template (`delay` 0) on the upstream stream, less the same without
//!   it, through the same faultgate; one on-data call each. Routes take
//!   turns in batches; the median batch counts;
//! - HTTP, per request: round trips of a request the HTTP template answers
//!   (`status` 503) on one kept-alive connection, against the same request
//!   answered by the Rust template; and faultgate's resident memory growth
//!   over those requests, per request: what the instance keeps of each.
//!
//! Needs the toolchains scripts/test installs (scripts/toolchains/*).

#![allow(clippy::print_stdout)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::peers::{echo, echo_server};
use support::plugin_build::{Lang, scaffold};
use tokio::net::TcpStream;

/// How many of each thing a run measures.
struct Rounds {
    toxics: u32,
    batches: u32,
    per_batch: u32,
}

/// One language's figures.
struct Figures {
    size: u64,
    load: Duration,
    attach: Duration,
    rss_per_toxic: u64,
    tcp_call: Duration,
    tcp_base: Duration,
    http_request: Duration,
    http_growth: u64,
    http_requests: u32,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick {
        Rounds {
            toxics: 5,
            batches: 5,
            per_batch: 100,
        }
    } else {
        Rounds {
            toxics: 20,
            batches: 20,
            per_batch: 250,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(rounds));
}

async fn run(rounds: Rounds) {
    let dir = tempfile::tempdir().unwrap();
    let mut table = Vec::new();
    for lang in Lang::ALL {
        let tcp = scaffold(dir.path(), &format!("tcp-{}", lang.flag()), lang, false).build();
        let http = scaffold(dir.path(), &format!("http-{}", lang.flag()), lang, true).build();
        eprintln!("measuring {lang:?}");
        table.push((lang, measure(lang, &tcp, &http, &rounds).await));
    }
    print_table(&table);
}

async fn measure(lang: Lang, tcp: &Path, http: &Path, rounds: &Rounds) -> Figures {
    let fg = Faultgate::start(&[]).await;
    let tcp_type = format!("tcp-{}", lang.flag());
    let http_type = format!("http-{}", lang.flag());

    let started = Instant::now();
    upload(&fg, tcp).await;
    let load = started.elapsed();
    upload(&fg, http).await;

    // Attach: toxics on proxies of their own, to an upstream nobody serves.
    for n in 0..rounds.toxics {
        fg.proxy(&format!("idle{n}"), "127.0.0.1:9").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = fg.rss_bytes();
    let started = Instant::now();
    for n in 0..rounds.toxics {
        fg.add_toxic(
            &format!("idle{n}"),
            json!({"type": tcp_type, "stream": "upstream"}),
        )
        .await;
    }
    let attach = started.elapsed() / rounds.toxics;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_per_toxic = fg.rss_bytes().saturating_sub(rss_before) / u64::from(rounds.toxics);

    // TCP: the same echo through a proxy with the fault and one without.
    let (echo_addr, _reads) = echo_server().await;
    let faulted = fg.proxy("faulted", echo_addr).await;
    let plain = fg.proxy("plain", echo_addr).await;
    fg.add_toxic(
        "faulted",
        json!({"type": tcp_type, "stream": "upstream", "attributes": {"delay": 0}}),
    )
    .await;
    let mut with_fault = TcpStream::connect(faulted).await.unwrap();
    let mut without = TcpStream::connect(plain).await.unwrap();
    with_fault.set_nodelay(true).unwrap();
    without.set_nodelay(true).unwrap();
    let (mut calls, mut bases) = (Vec::new(), Vec::new());
    for batch in 0..=rounds.batches {
        let call = echo_batch(&mut with_fault, rounds.per_batch).await;
        let base = echo_batch(&mut without, rounds.per_batch).await;
        // The first batch warms both up.
        if batch > 0 {
            calls.push(call);
            bases.push(base);
        }
    }

    // HTTP: a request the fault answers, on one kept-alive connection.
    let answering = fg
        .proxy_with(json!({"name": "answering", "mode": "http", "upstream": "127.0.0.1:9"}))
        .await;
    fg.add_toxic(
        "answering",
        json!({"type": http_type, "stream": "upstream", "attributes": {"status": 503}}),
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://{answering}/x");
    let rss_before = fg.rss_bytes();
    // Fewer than the TCP round trips: a JavaScript instance outgrows even
    // 64 MiB after about 5,000 requests (see plugins/languages/js.md).
    let per_batch = rounds.per_batch / 2;
    let mut requests = Vec::new();
    for batch in 0..=rounds.batches {
        let started = Instant::now();
        for _ in 0..per_batch {
            let answer = client.get(&url).send().await.unwrap();
            assert_eq!(
                answer.status(),
                503,
                "the {lang:?} HTTP template did not answer"
            );
            answer.bytes().await.unwrap();
        }
        if batch > 0 {
            requests.push(started.elapsed() / per_batch);
        }
    }

    Figures {
        size: std::fs::metadata(tcp).unwrap().len(),
        load,
        attach,
        rss_per_toxic,
        tcp_call: median(calls),
        tcp_base: median(bases),
        http_request: median(requests),
        http_growth: fg.rss_bytes().saturating_sub(rss_before),
        http_requests: (rounds.batches + 1) * per_batch,
    }
}

/// `POST /plugins`, which must take the component.
async fn upload(fg: &Faultgate, wasm: &Path) {
    let (status, body) = fg.upload_plugin(std::fs::read(wasm).unwrap()).await;
    assert_eq!(status, 201, "{} was refused: {body}", wasm.display());
}

/// The mean round trip of `count` echoes of 16 bytes.
async fn echo_batch(stream: &mut TcpStream, count: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        echo(stream, b"0123456789abcdef").await;
    }
    started.elapsed() / count
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn print_table(table: &[(Lang, Figures)]) {
    let rust = &table
        .iter()
        .find(|(lang, _)| *lang == Lang::Rust)
        .expect("Rust is measured")
        .1;
    let per_call = |f: &Figures| f.tcp_call.saturating_sub(f.tcp_base);
    println!(
        "| figure | {} |",
        columns(table, |lang, _| format!("{lang:?}"))
    );
    println!("| --- | {} |", columns(table, |_, _| "---".to_owned()));
    let rows: [(&str, Cell); 7] = [
        (
            "component",
            Box::new(|f| format!("{:.2} MB", f.size as f64 / 1e6)),
        ),
        (
            "load (POST /plugins, compiles)",
            Box::new(|f| format!("{:.2} s", f.load.as_secs_f64())),
        ),
        (
            "attach (POST a toxic)",
            Box::new(|f| {
                format!(
                    "{:.2} ms ({:.1}×)",
                    ms(f.attach),
                    ms(f.attach) / ms(rust.attach)
                )
            }),
        ),
        (
            "memory per attached toxic",
            Box::new(|f| format!("{:.0} KiB", f.rss_per_toxic as f64 / 1024.0)),
        ),
        (
            "TCP: per on-data call",
            Box::new(|f| {
                format!(
                    "{:.0} µs ({:.0} µs with the fault, {:.0} without)",
                    us(per_call(f)),
                    us(f.tcp_call),
                    us(f.tcp_base)
                )
            }),
        ),
        (
            "HTTP: a request the fault answers",
            Box::new(|f| {
                format!(
                    "{:.0} µs ({:.1}×)",
                    us(f.http_request),
                    us(f.http_request) / us(rust.http_request)
                )
            }),
        ),
        (
            "HTTP: memory kept per request",
            Box::new(|f| {
                format!(
                    "{:.1} KiB ({:.1} MiB over {})",
                    f.http_growth as f64 / 1024.0 / f64::from(f.http_requests),
                    f.http_growth as f64 / (1024.0 * 1024.0),
                    f.http_requests
                )
            }),
        ),
    ];
    for (label, cell) in rows {
        println!("| {label} | {} |", columns(table, |_, f| cell(f)));
    }
}

/// How a row shows one language's figures.
type Cell<'a> = Box<dyn Fn(&Figures) -> String + 'a>;

fn columns(table: &[(Lang, Figures)], cell: impl Fn(Lang, &Figures) -> String) -> String {
    table
        .iter()
        .map(|(lang, f)| cell(*lang, f))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
