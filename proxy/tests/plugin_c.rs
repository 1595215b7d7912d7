//! Plugins in C (clang and wasm-tools, installed by scripts/toolchains/c),
//! beyond the scaffolds (plugin_scaffolds.rs): `c_corrupt`, a real fault in
//! C; a C plugin that aborts; and components built against a contract
//! faultgate does not speak.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::faultgate::{Faultgate, error_mentions, run_to_exit};
use support::git_http::GitHttpServer;
use support::peers::{echo, echo_server, read_to_end};
use support::plugin_build::{Lang, scaffold};
use support::postgres::{Postgres, connect};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// plugins/c/c_corrupt, built as a C scaffold with its code.
fn c_corrupt(dir: &Path) -> PathBuf {
    scaffold(dir, "c_corrupt", Lang::C, false)
        .with_code_of_repo_plugin()
        .build()
}

/// `size` bytes that do not repeat, for a download to compare.
fn pseudo_random(size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    rand::RngCore::fill_bytes(
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(11),
        &mut bytes,
    );
    bytes
}

/// lighttpd serving `file` as /file.bin.
fn file_server(file: &[u8]) -> GitHttpServer {
    let server = GitHttpServer::start(&["seed"]);
    // The server's document root is its directory's www/.
    let www = server
        .repo_path("seed")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("www");
    std::fs::write(www.join("file.bin"), file).unwrap();
    server
}

/// GET /file.bin through `proxy` as HTTP/1.0 (the server closes after it);
/// the last `len` bytes of the answer: the body, as it arrived.
async fn download(proxy: std::net::SocketAddr, len: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream
        .write_all(b"GET /file.bin HTTP/1.0\r\nHost: files\r\n\r\n")
        .await
        .unwrap();
    let (answer, end) = tokio::time::timeout(Duration::from_secs(30), read_to_end(&mut stream))
        .await
        .expect("the download did not finish in 30 s");
    end.expect("the download ended with an error");
    assert!(answer.len() > len, "a short answer: {} bytes", answer.len());
    answer[answer.len() - len..].to_vec()
}

/// A fresh faultgate with `--seed SEED` and c_corrupt at `probability` on
/// the downstream of a proxy in front of `server`: the body one download got.
async fn corrupted_download(
    wasm: &Path,
    server: &GitHttpServer,
    seed: &str,
    probability: f64,
    len: usize,
) -> Vec<u8> {
    let fg = Faultgate::start(&["--plugin", wasm.to_str().unwrap(), "--seed", seed]).await;
    let listen = fg.proxy("files", server.address()).await;
    fg.add_toxic(
        "files",
        json!({"type": "c_corrupt", "stream": "downstream", "attributes": {"probability": probability}}),
    )
    .await;
    download(listen, len).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_corrupt_passes_every_byte_at_zero_and_corrupts_the_same_bytes_under_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = c_corrupt(dir.path());
    let (code, output) = run_to_exit(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("probability (float, default 0.001)"),
        "{output}"
    );

    let big = pseudo_random(10 << 20);
    let server = file_server(&big);
    let intact = corrupted_download(&wasm, &server, "7", 0.0, big.len()).await;
    assert!(intact == big, "a byte changed with probability 0");

    // One byte in a thousand of 1 MB: some flipped, by one bit each, and
    // the same ones again under the same seed, other ones under another.
    let small = pseudo_random(1 << 20);
    let server = file_server(&small);
    let first = corrupted_download(&wasm, &server, "7", 0.001, small.len()).await;
    let again = corrupted_download(&wasm, &server, "7", 0.001, small.len()).await;
    let other = corrupted_download(&wasm, &server, "8", 0.001, small.len()).await;
    let flipped: Vec<usize> = (0..small.len()).filter(|&i| first[i] != small[i]).collect();
    assert!(
        (500..2000).contains(&flipped.len()),
        "{} of {} bytes corrupted at probability 0.001",
        flipped.len(),
        small.len()
    );
    assert!(
        flipped
            .iter()
            .all(|&i| (first[i] ^ small[i]).count_ones() == 1)
    );
    assert!(first == again, "the same seed corrupted other bytes");
    assert!(first != other, "another seed corrupted the same bytes");

    let (status, body) = {
        let fg = Faultgate::start(&["--plugin", wasm.to_str().unwrap()]).await;
        fg.proxy("files", server.address()).await;
        fg.request(
            "POST",
            "/proxies/files/toxics",
            Some(json!({"type": "c_corrupt", "attributes": {"probability": 1.5}})),
        )
        .await
    };
    error_mentions(
        status,
        &body,
        400,
        "probability: expected a number from 0 to 1",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_corrupt_at_one_makes_postgres_refuse_the_startup_and_the_proxy_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = c_corrupt(dir.path());
    let pg = Postgres::start().await;
    let mut fg = Faultgate::start(&["--plugin", wasm.to_str().unwrap()]).await;
    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    fg.add_toxic(
        "pg",
        json!({"name": "flip", "type": "c_corrupt", "stream": "upstream", "attributes": {"probability": 1}}),
    )
    .await;

    // Every byte of the startup message has a bit flipped, its length
    // first: the server cannot read it and says so.
    let refused = connect(listen.port()).await;
    assert!(refused.is_err(), "Postgres accepted a corrupted startup");
    support::eventually(
        "Postgres to log the corrupted startup",
        Duration::from_secs(10),
        || async { pg.log().contains("invalid length of startup packet") },
    )
    .await;

    assert!(fg.alive(), "faultgate died");
    fg.remove_toxic("pg", "flip").await;
    let client = connect(listen.port()).await.unwrap();
    let row = client.query_one("SELECT 6", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_that_aborts_fails_its_toxic_as_any_plugin_does() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "aborts", Lang::C, false)
        .edit_source(|c| {
            c.replace(
                "  self->chunks_seen++;\n",
                "  self->chunks_seen++;\n  if (len == 4) abort();\n",
            )
        })
        .build();

    let (echo_addr, _) = echo_server().await;
    let mut fg = Faultgate::start(&["--plugin", wasm.to_str().unwrap()]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"name": "a", "type": "aborts", "stream": "upstream"}),
    )
    .await;
    let mut stream = TcpStream::connect(listen).await.unwrap();
    echo(&mut stream, b"hello").await;
    stream.write_all(b"boom").await.unwrap();
    let (answer, end) = tokio::time::timeout(Duration::from_secs(10), read_to_end(&mut stream))
        .await
        .expect("the connection of an aborted plugin was not ended");
    assert!(answer.is_empty(), "data passed an aborted plugin");
    assert_eq!(
        end.expect_err("a TCP connection whose plugin failed is reset")
            .kind(),
        std::io::ErrorKind::ConnectionReset
    );

    assert!(fg.alive(), "faultgate died when a C plugin aborted");
    let (_, toxic) = fg.request("GET", "/proxies/p/toxics/a", None).await;
    assert_eq!(toxic["plugin_failures"], 1, "{toxic}");
    let last = toxic["plugin_last_failure"].as_str().unwrap_or_default();
    assert!(last.contains("wasm trap"), "the toxic says {last:?}");
    let log = fg.log();
    assert!(
        log.contains("plugin \"aborts\": on-data failed: wasm trap: wasm `unreachable`")
            && log.contains("instance is ended"),
        "the log does not say which plugin trapped, and in which hook:\n{log}"
    );
    // The next connection gets a fresh instance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fresh = TcpStream::connect(listen).await.unwrap();
    echo(&mut fresh, b"again").await;
}

/// The scaffold built after `edit` changed the contract and the bindings
/// alike, as a plugin built against another contract would be.
fn built_against(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let plugin = scaffold(dir, "foreign", Lang::C, false);
    plugin.edit("wit/faultgate.wit", &edit);
    // The bindings follow the contract wherever they spell the name.
    for file in ["bindings/tcp_plugin.c", "bindings/tcp_plugin.h"] {
        let path = plugin.root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(&text)).unwrap();
    }
    plugin.build()
}

async fn refused_naming(wasm: &Path, names: &str) {
    let (code, output) = run_to_exit(&["plugin", "check", wasm.to_str().unwrap()]);
    assert_eq!(code, Some(2), "plugin check passed it:\n{output}");
    assert!(
        output.contains(names),
        "plugin check does not name {names:?}:\n{output}"
    );
    let fg = Faultgate::start(&[]).await;
    let (status, body) = fg.upload_plugin(std::fs::read(wasm).unwrap()).await;
    error_mentions(status, &body, 400, names);
    let (_, plugins) = fg.request("GET", "/plugins", None).await;
    assert!(!plugins.to_string().contains("\"foreign\""), "{plugins}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_a_contract_with_a_renamed_function_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = built_against(dir.path(), |text| text.replace("on-wake", "on-timer"));
    refused_naming(&wasm, "on-wake").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_an_older_contract_is_refused_naming_the_interface() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = built_against(dir.path(), |text| text.replace("@0.2.0", "@0.1.0"));
    refused_naming(&wasm, "faultgate:plugin/host@0.1.0").await;
}
