//! Plugin authors' path beyond the scaffolds (plugin_scaffolds.rs): replace
//! or remove a plugin at runtime, restart from the compile cache, what
//! `plugin check` says of a broken one, and a plugin in WebAssembly text.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::{Faultgate, error_mentions, plugin_build_dir, run_to_exit};
use support::peers::{echo, echo_server};
use support::plugin_build::{Lang, scaffold};
use support::postgres::{Postgres, connect};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_plugin_in_use_keeps_open_connections_on_the_old_version() {
    // A new `noop` that, unlike the built-in, delays by 300 ms by default.
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "noop", Lang::Rust, false)
        .edit_source(|lib| {
            lib.replace(
                "attribute::integer(\"delay\", 0,",
                "attribute::integer(\"delay\", 300,",
            )
            .replace("non_negative(\"delay\", 0,", "non_negative(\"delay\", 300,")
        })
        .build();
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic("p", json!({"type": "noop", "stream": "upstream"}))
        .await;
    let mut before = TcpStream::connect(listen).await.unwrap();
    assert!(echo(&mut before, b"ping").await < Duration::from_millis(300));

    let (status, plugin) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(
        fg.expect("GET", "/plugins/noop", None, 200).await["summary"],
        plugin["summary"]
    );

    assert!(
        echo(&mut before, b"ping").await < Duration::from_millis(300),
        "an open connection changed plugin version"
    );
    let mut after = TcpStream::connect(listen).await.unwrap();
    assert!(
        echo(&mut after, b"ping").await >= Duration::from_millis(300),
        "a new connection kept the old version"
    );

    let (status, body) = fg.request("DELETE", "/plugins/noop", None).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("\"p\"") && message.contains("noop_upstream"),
        "{message}"
    );
    fg.remove_toxic("p", "noop_upstream").await;
    fg.expect("DELETE", "/plugins/noop", None, 204).await;
    let (status, _) = fg.request("GET", "/plugins/noop", None).await;
    assert_eq!(status, 404);

    let (status, body) = fg.upload_plugin(b"not a plugin".to_vec()).await;
    error_mentions(status, &body, 400, "not a WebAssembly file");
}

#[tokio::test]
async fn a_restart_takes_compiled_plugins_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let plugin = plugin_build_dir().join("faultgate_test_misbehave.wasm");
    let args = [
        "--plugin",
        plugin.to_str().unwrap(),
        "--plugin-cache",
        cache.path().to_str().unwrap(),
    ];

    let first = Faultgate::start(&args).await;
    assert!(first.log().contains("plugin compiled"), "{}", first.log());
    drop(first);
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(entries, 1, "expected one compiled plugin in the cache");

    let second = Faultgate::start(&args).await;
    assert!(
        second
            .log()
            .contains("plugin loaded from the compile cache"),
        "{}",
        second.log()
    );
    assert!(
        !second.log().contains("plugin compiled"),
        "{}",
        second.log()
    );
    second.expect("GET", "/plugins/misbehave", None, 200).await;
}

#[test]
fn plugin_check_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let noop = plugin_build_dir().join("faultgate_noop.wasm");
    let (code, output) = run_to_exit(&["plugin", "check", noop.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("noop 0.1.0 (tcp fault): Passes all data unchanged"),
        "{output}"
    );

    let mut random = vec![0u8; 4096];
    rand::RngCore::fill_bytes(
        &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3),
        &mut random,
    );
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "core.wasm",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        (
            "empty.wasm",
            b"\0asm\x0d\0\x01\0".to_vec(),
            "faultgate:plugin/meta",
        ),
        ("random.wasm", random, "not a WebAssembly file"),
        (
            "truncated.wasm",
            std::fs::read(&noop).unwrap()[..5000].to_vec(),
            "not a faultgate plugin component",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, output) = run_to_exit(&["plugin", "check", path.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name} passed the check:\n{output}");
        assert!(
            output.contains(name) && output.contains(expected),
            "{name}: {output}"
        );
    }
}

/// A plugin in another language than Rust: plugins/examples/wat-delay, written
/// by hand in the WebAssembly text format.
#[tokio::test]
async fn a_plugin_written_in_webassembly_text_delays_postgres() {
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/wat-delay/wat-delay.wat");
    let (code, output) = run_to_exit(&["plugin", "check", source.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");

    let pg = Postgres::start().await;
    let fg = Faultgate::start(&[]).await;
    let (status, plugin) = fg.upload_plugin(std::fs::read(&source).unwrap()).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["name"], "wat-delay");

    let listen = fg.proxy("pg", format!("127.0.0.1:{}", pg.port)).await;
    let client = connect(listen.port()).await.unwrap();
    // A type Toxiproxy does not have is read strictly: an attribute it
    // does not take is refused, naming what it takes.
    fg.expect_error(
        "POST",
        "/proxies/pg/toxics",
        Some(json!({"type": "wat-delay", "attributes": {"delay": 1}})),
        400,
        "takes no attributes",
    )
    .await;

    fg.add_toxic("pg", json!({"type": "wat-delay", "stream": "downstream"}))
        .await;
    for _ in 0..2 {
        let started = Instant::now();
        assert_eq!(
            client
                .query_one("SELECT 3", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            3
        );
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "wat-delay did not delay"
        );
    }
}

/// A replacement that would reject the attributes of a toxic in use is
/// refused, and the old plugin stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_that_rejects_a_live_toxic_changes_nothing() {
    // A `latency` that knows only `delay` and `reset_after`.
    let dir = tempfile::tempdir().unwrap();
    let wasm = scaffold(dir.path(), "latency", Lang::Rust, false).build();
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    let listen = fg.proxy("p", echo_addr).await;
    fg.add_toxic(
        "p",
        json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 300}}),
    )
    .await;

    let (status, body) = fg.upload_plugin(std::fs::read(&wasm).unwrap()).await;
    let message = error_mentions(status, &body, 400, "latency_upstream");
    assert!(
        message.contains("\"p\"") && message.contains("latency"),
        "{message}"
    );

    let plugin = fg.expect("GET", "/plugins/latency", None, 200).await;
    assert_eq!(plugin["source"], "builtin");
    let mut stream = TcpStream::connect(listen).await.unwrap();
    assert!(echo(&mut stream, b"still").await >= Duration::from_millis(300));
}

/// A scaffold whose `new` spins for `spin_ms` and holds `grow_mib` of
/// memory, declaring `needs` (a chain of `Description` calls) beside its
/// attributes.
fn spinning_and_growing(dir: &Path, name: &str, needs: &str) -> std::path::PathBuf {
    scaffold(dir, name, Lang::Rust, false)
        .edit_source(|lib| {
            lib.replace(
                ".attribute(attribute::integer(\"reset_after\", 0, \"reset the connection at this chunk; 0 = never\"))",
                &format!(
                    ".attribute(attribute::integer(\"reset_after\", 0, \"reset the connection at this chunk; 0 = never\"))
            .attribute(attribute::integer(\"spin_ms\", 0, \"busy for this long when made\"))
            .attribute(attribute::integer(\"grow_mib\", 0, \"memory held when made\")){needs}"
                ),
            )
            .replace(
                "        Ok(Self {\n            delay_ms",
                "        let until = host::now_us() + attrs.non_negative(\"spin_ms\", 0, \"ms\")? * 1000;
        while host::now_us() < until {}
        let held = vec![1u8; (attrs.non_negative(\"grow_mib\", 0, \"MiB\")? << 20) as usize];
        std::hint::black_box(&held);
        Ok(Self {\n            delay_ms",
            )
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_gets_the_memory_and_call_time_it_declares_beyond_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let plain = spinning_and_growing(dir.path(), "plain", "");
    let needy = spinning_and_growing(dir.path(), "needy", ".memory_mib(40).deadline_ms(1000)");
    let (code, output) = run_to_exit(&["plugin", "check", needy.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("needs: 40 MiB of memory per instance, calls of up to 1000 ms"),
        "{output}"
    );

    // The defaults: 16 MiB and 100 ms.
    let (echo_addr, _) = echo_server().await;
    let fg = Faultgate::start(&[]).await;
    for wasm in [&plain, &needy] {
        let (status, body) = fg.upload_plugin(std::fs::read(wasm).unwrap()).await;
        assert_eq!(status, 201, "{body}");
    }
    let described = fg.expect("GET", "/plugins/needy", None, 200).await;
    assert_eq!(
        (&described["memory_mib"], &described["deadline_ms"]),
        (&json!(40), &json!(1000))
    );
    let described = fg.expect("GET", "/plugins/plain", None, 200).await;
    assert!(described.get("memory_mib").is_none(), "{described}");
    fg.proxy("p", echo_addr).await;

    // Past the defaults, the plain one is refused and changes nothing; the
    // one that declared what it needs is attached.
    for (attributes, refused) in [
        (json!({"spin_ms": 300}), "time limit of 100ms"),
        (json!({"grow_mib": 24}), "memory limit of 16 MiB"),
    ] {
        let (status, body) = fg
            .request(
                "POST",
                "/proxies/p/toxics",
                Some(json!({"type": "plain", "attributes": attributes})),
            )
            .await;
        error_mentions(status, &body, 400, refused);
        assert_eq!(fg.toxics("p").await, json!([]));
        fg.add_toxic(
            "p",
            json!({"name": "needy", "type": "needy", "attributes": attributes}),
        )
        .await;
        fg.remove_toxic("p", "needy").await;
    }
}
