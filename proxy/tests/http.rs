//! `http` mode in front of a real git smart-HTTP server (git http-backend
//! behind lighttpd), driven by the real git client: request-aware faults on
//! one repository leave the others alone, and removing them restores it.

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::json;
use support::faultgate::Faultgate;
use support::git_http::{self, GitHttpServer, run_git};

/// Faultgate with an http-mode proxy "git" in front of `server`; returns
/// the proxy's base URL.
async fn git_proxy(faultgate: &Faultgate, server: &GitHttpServer) -> String {
    let listen = faultgate
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    format!("http://{listen}")
}

async fn clone(url: String, dest: PathBuf) -> Output {
    git_http::clone(url, dest, None).await
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn clone_fetch_and_push_pass_through_unharmed() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let url = format!("{base}/git/alpha.git");
    let scratch = server.scratch();

    let out = clone(url.clone(), scratch.join("one")).await;
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(scratch.join("one/README")).unwrap(),
        "repository alpha\n"
    );

    // Push a commit with a megabyte of incompressible data (a body larger
    // than any buffer on the way), then fetch it into a second clone.
    let out = clone(url.clone(), scratch.join("two")).await;
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    let one = scratch.join("one");
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(one.join("data.bin"), &data).unwrap();
    run_git(&one, &["add", "data.bin"]);
    run_git(&one, &["commit", "-q", "-m", "data"]);
    run_git(&one, &["push", "-q", "origin", "main"]);
    let pushed = run_git(&one, &["rev-parse", "HEAD"]);
    assert_eq!(
        run_git(&server.repo_path("alpha"), &["rev-parse", "main"]),
        pushed,
        "the push did not reach the server"
    );
    let two = scratch.join("two");
    run_git(&two, &["pull", "-q", "--ff-only"]);
    assert_eq!(run_git(&two, &["rev-parse", "HEAD"]), pushed);
    assert_eq!(std::fs::read(two.join("data.bin")).unwrap(), data);

    assert!(
        faultgate
            .metric("faultgate_http_requests_total", "git")
            .await
            >= 6
    );
    assert_eq!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_limited_to_one_repository_fails_only_its_clone() {
    let server = GitHttpServer::start(&["alpha", "beta"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let scratch = server.scratch();
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "down", "type": "http_abort", "stream": "upstream",
                    "attributes": { "status": 503, "body": "maintenance", "path_prefix": "/git/alpha.git/" } }),
        )
        .await;

    let out = clone(format!("{base}/git/alpha.git"), scratch.join("alpha")).await;
    assert!(
        !out.status.success(),
        "clone of the aborted repository worked"
    );
    assert!(
        stderr(&out).contains("503"),
        "git did not see the 503: {}",
        stderr(&out)
    );
    let out = clone(format!("{base}/git/beta.git"), scratch.join("beta")).await;
    assert!(
        out.status.success(),
        "the other repository was harmed: {}",
        stderr(&out)
    );
    assert!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await
            >= 1
    );

    faultgate.remove_toxic("git", "down").await;
    let out = clone(format!("{base}/git/alpha.git"), scratch.join("alpha")).await;
    assert!(out.status.success(), "not restored: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn delay_on_upload_pack_slows_the_clone_by_at_least_the_delay() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "http_delay", "stream": "upstream",
                    "attributes": { "delay": 1500, "path_regex": "/git-upload-pack$", "method": "POST" } }),
        )
        .await;
    let started = Instant::now();
    let out = clone(format!("{base}/git/alpha.git"), server.scratch().join("a")).await;
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the clone took {:?}, less than the delay",
        started.elapsed()
    );
    // Only the pack requests (POST) matched, not GET info/refs.
    let injected = faultgate
        .metric("faultgate_faults_injected_total", "git")
        .await;
    let requests = faultgate
        .metric("faultgate_http_requests_total", "git")
        .await;
    assert!(
        injected >= 1 && injected < requests,
        "{injected} of {requests} requests delayed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blackhole_on_one_repository_hangs_only_its_clone_until_removed() {
    let server = GitHttpServer::start(&["alpha", "beta"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let scratch = server.scratch();
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "hole", "type": "http_blackhole",
                    "attributes": { "path_prefix": "/git/alpha.git/" } }),
        )
        .await;

    let alpha = clone(format!("{base}/git/alpha.git"), scratch.join("alpha"));
    let beta = clone(format!("{base}/git/beta.git"), scratch.join("beta"));
    let started = Instant::now();
    let (alpha, beta) = tokio::join!(alpha, beta);
    assert!(
        beta.status.success(),
        "the healthy repository was blocked: {}",
        stderr(&beta)
    );
    assert!(!alpha.status.success(), "the blackholed clone finished");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "the blackholed clone failed fast ({:?}) instead of hanging: {}",
        started.elapsed(),
        stderr(&alpha)
    );

    faultgate.remove_toxic("git", "hole").await;
    let out = clone(format!("{base}/git/alpha.git"), scratch.join("alpha")).await;
    assert!(out.status.success(), "not restored: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_switched_at_runtime_apply_to_the_next_request_on_a_kept_alive_connection() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    // One HTTP/1.1 connection, held by the test: every request below must
    // go over it.
    let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut get = async || {
        let request = hyper::Request::get("/git/alpha.git/info/refs?service=git-upload-pack")
            .header("host", "git.test")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.ready().await.expect("the connection was kept");
        let answer = sender
            .send_request(request)
            .await
            .expect("the connection was kept");
        let status = answer.status().as_u16();
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap();
        (
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        )
    };

    assert_eq!(get().await.0, 200);
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "teapot", "type": "http_abort", "attributes": { "status": 418, "body": "short and stout" } }),
        )
        .await;
    assert_eq!(get().await, (418, "short and stout".to_owned()));
    faultgate.remove_toxic("git", "teapot").await;
    assert_eq!(get().await.0, 200);
    assert_eq!(
        faultgate.metric("faultgate_connections_total", "git").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn byte_level_faults_still_apply_on_an_http_proxy() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "latency", "attributes": { "latency": 400 } }),
        )
        .await;
    let started = Instant::now();
    let answer = reqwest::get(format!(
        "{base}/git/alpha.git/info/refs?service=git-upload-pack"
    ))
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_is_a_502_that_says_so() {
    let faultgate = Faultgate::start(&[]).await;
    let port = support::free_port();
    let listen = faultgate
        .proxy_with(
            json!({ "name": "gone", "mode": "http", "upstream": format!("127.0.0.1:{port}") }),
        )
        .await;
    let answer = reqwest::get(format!("http://{listen}/anything"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert_eq!(answer.headers()["x-faultgate-error"], "upstream");
    let body = answer.text().await.unwrap();
    assert!(body.contains(&format!("127.0.0.1:{port}")), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_faults_are_refused_on_tcp_proxies_and_modes_do_not_change() {
    let faultgate = Faultgate::start(&[]).await;
    faultgate.proxy("plain", "127.0.0.1:1").await;
    faultgate
        .expect_error(
            "POST",
            "/proxies/plain/toxics",
            Some(json!({ "type": "http_abort" })),
            400,
            "http mode",
        )
        .await;
    faultgate
        .expect_error(
            "PATCH",
            "/proxies/plain",
            Some(json!({ "mode": "http" })),
            400,
            "cannot change",
        )
        .await;
    faultgate
        .expect_error(
            "POST",
            "/proxies",
            Some(json!({ "name": "odd", "upstream": "127.0.0.1:1", "mode": "gopher" })),
            400,
            "gopher",
        )
        .await;
    faultgate
        .proxy_with(json!({ "name": "web", "mode": "http", "upstream": "127.0.0.1:1" }))
        .await;
    faultgate
        .expect_error(
            "POST",
            "/proxies/web/toxics",
            Some(json!({ "type": "http_abort", "attributes": { "path_regex": "([" } })),
            400,
            "path_regex",
        )
        .await;
    let proxy = faultgate.expect("GET", "/proxies/web", None, 200).await;
    assert_eq!(proxy["mode"], "http");
    assert_eq!(proxy["toxics"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pack_of_200_mib_clones_through_in_bounded_memory() {
    const PACK: u64 = 200 << 20;
    let server = GitHttpServer::start(&["big"]);
    // A commit of 200 MiB that does not compress, packed once, so the clone
    // streams the pack as it is.
    let work = server.scratch().join("seed");
    let out = clone(
        format!("file://{}", server.repo_path("big").display()),
        work.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut file = std::fs::File::create(work.join("big.bin")).unwrap();
    for _ in 0..PACK >> 20 {
        for word in chunk.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        std::io::Write::write_all(&mut file, &chunk).unwrap();
    }
    drop(file);
    run_git(&work, &["-c", "core.compression=0", "add", "big.bin"]);
    run_git(&work, &["commit", "-q", "-m", "big"]);
    run_git(&work, &["push", "-q", "origin", "main"]);
    run_git(
        &server.repo_path("big"),
        &["-c", "pack.compression=0", "repack", "-a", "-d", "-q"],
    );

    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let baseline = faultgate.rss_bytes();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peak = {
        let sampling = sampling.clone();
        let pid = faultgate.pid();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    let rss = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        * 1024;
                    peak = peak.max(rss);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let dest = server.scratch().join("clone");
    let out = clone(format!("{base}/git/big.git"), dest.clone()).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.join().unwrap();
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    assert_eq!(
        std::fs::metadata(dest.join("big.bin")).unwrap().len(),
        PACK,
        "the clone is not whole"
    );
    let grown = peak.saturating_sub(baseline);
    eprintln!("faultgate RSS: {baseline} bytes at rest, {peak} at peak, grew {grown}");
    assert!(
        grown < PACK / 8,
        "faultgate grew by {grown} bytes while relaying a {PACK}-byte pack: it buffers"
    );
}

/// Reads from `stream` until `marker` has arrived (or 10 s pass); returns
/// what was read.
async fn read_until(stream: &mut tokio::net::TcpStream, marker: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.windows(marker.len()).any(|w| w == marker) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited for {:?}, got {:?}",
                    String::from_utf8_lossy(marker),
                    String::from_utf8_lossy(&seen)
                )
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {:?}: {:?}",
            String::from_utf8_lossy(marker),
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    use tokio::io::AsyncWriteExt;
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    // An upload-pack request that only flushes: the server answers with
    // nothing to send, once it has the body.
    stream
        .write_all(
            b"POST /git/alpha.git/git-upload-pack HTTP/1.1\r\nHost: git.test\r\n\
              Content-Type: application/x-git-upload-pack-request\r\n\
              Content-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let interim = read_until(&mut stream, b"\r\n\r\n").await;
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"0000").await.unwrap();
    // git http-backend sends its response head before it reads the body,
    // so the 200 may already have come with the 100.
    let head_end = interim.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut answer = interim[head_end..].to_vec();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrades_are_passed_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (echo, _) = support::peers::echo_server().await;
    let server = GitHttpServer::start_with_websocket(&["alpha"], echo);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: git.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_until(&mut stream, b"\r\n\r\n").await;
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(text.contains("upgrade: websocket"), "{text}");
    // RFC 6455's example key has this accept value.
    assert!(text.contains("s3pplmbitxaq9kygzzhzrbk+xoo="), "{text}");

    // One masked binary frame out; the echo comes back as a binary frame.
    let payload = b"through the upgrade";
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
    let mut reply = vec![0u8; 2 + payload.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut reply))
        .await
        .expect("no echo through the upgraded connection")
        .unwrap();
    assert_eq!(reply[0], 0x82);
    assert_eq!(usize::from(reply[1]), payload.len());
    assert_eq!(&reply[2..], payload);
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_are_served_and_faulted_per_request() {
    let server = GitHttpServer::start(&["alpha", "beta"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "http_abort", "stream": "upstream",
                    "attributes": { "status": 503, "path_prefix": "/git/beta.git/" } }),
        )
        .await;
    // HTTP/2 with prior knowledge, over one connection.
    let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (repo, status) in [("alpha", 200), ("beta", 503), ("alpha", 200)] {
        let request = hyper::Request::get(format!(
            "http://git.test/git/{repo}.git/info/refs?service=git-upload-pack"
        ))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
        let answer = sender.send_request(request).await.unwrap();
        assert_eq!(answer.version(), hyper::Version::HTTP_2);
        assert_eq!(answer.status().as_u16(), status, "{repo}");
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        if status == 200 {
            assert!(
                String::from_utf8_lossy(&body).contains("# service=git-upload-pack"),
                "not the server's answer"
            );
        }
    }
}

/// The statuses of `count` GETs of `path` (with `headers`) over one
/// HTTP/1.1 connection to `base`.
async fn statuses(base: &str, path: &str, headers: &[(&str, &str)], count: usize) -> Vec<u16> {
    let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut seen = Vec::new();
    for _ in 0..count {
        let mut request = hyper::Request::get(path).header("host", "git.test");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.ready().await.expect("the connection was kept");
        let answer = sender.send_request(request).await.unwrap();
        seen.push(answer.status().as_u16());
        http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn header_matching_and_toxicity_pick_requests_and_replay_under_a_seed() {
    let server = GitHttpServer::start(&["alpha"]);
    let refs = "/git/alpha.git/info/refs?service=git-upload-pack";
    let mut runs = Vec::new();
    for _ in 0..2 {
        let faultgate = Faultgate::start(&["--seed", "42"]).await;
        let base = git_proxy(&faultgate, &server).await;
        faultgate
            .add_toxic(
                "git",
                json!({ "name": "canary", "type": "http_abort", "stream": "upstream",
                        "attributes": { "status": 500, "header": "X-Canary: yes" } }),
            )
            .await;
        faultgate
            .add_toxic(
                "git",
                json!({ "name": "flaky", "type": "http_abort", "stream": "upstream", "toxicity": 0.5,
                        "attributes": { "status": 503, "header": "X-Flaky" } }),
            )
            .await;
        assert_eq!(statuses(&base, refs, &[], 3).await, [200, 200, 200]);
        assert_eq!(
            statuses(&base, refs, &[("x-canary", "yes")], 2).await,
            [500, 500]
        );
        assert_eq!(statuses(&base, refs, &[("x-canary", "no")], 1).await, [200]);
        let flaky = statuses(&base, refs, &[("x-flaky", "1")], 40).await;
        let failed = flaky.iter().filter(|s| **s == 503).count();
        assert!(
            (8..=32).contains(&failed),
            "toxicity 0.5 failed {failed} of 40 requests: {flaky:?}"
        );
        assert!(flaky.iter().all(|s| *s == 503 || *s == 200), "{flaky:?}");
        runs.push(flaky);
    }
    assert_eq!(runs[0], runs[1], "the same seed drew differently");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_that_ask_see_request_bodies_and_the_body_still_goes_upstream() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let plugin = support::faultgate::plugin_build_dir().join("faultgate_test_body_match.wasm");
    let (status, shown) = faultgate
        .upload_plugin(std::fs::read(plugin).unwrap())
        .await;
    assert_eq!(status, 201, "{shown}");
    let base = git_proxy(&faultgate, &server).await;
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "test_body_match", "stream": "upstream", "attributes": { "needle": "secret" } }),
        )
        .await;
    let client = reqwest::Client::new();
    let pack = format!("{base}/git/alpha.git/git-upload-pack");
    let post = |body: &'static str| {
        client
            .post(&pack)
            .header("content-type", "application/x-git-upload-pack-request")
            .body(body)
            .send()
    };
    let answer = post("0000 a secret in the body").await.unwrap();
    assert_eq!(answer.status(), 403);
    assert_eq!(answer.text().await.unwrap(), "found secret");
    // A body without the needle was shown too (else 400), and went on to
    // git, which answers a bare flush-pkt with 200.
    let answer = post("0000").await.unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
}
