//! `http_tamper` and `http_duplicate` in front of a real git smart-HTTP
//! server (git http-backend behind lighttpd), driven by reqwest and the
//! real git client: the answer the client gets is altered as asked and
//! otherwise the server's; a duplicated request reaches the server the
//! asked number of times (lighttpd's access log, a push's effect).

mod support;

use std::time::Duration;

use serde_json::json;
use support::eventually;
use support::faultgate::Faultgate;
use support::git_http::{self, GitHttpServer, run_git};

const REFS: &str = "/git/alpha.git/info/refs?service=git-upload-pack";

/// Faultgate with an http-mode proxy "git" in front of `server`; returns
/// the proxy's base URL.
async fn git_proxy(faultgate: &Faultgate, server: &GitHttpServer) -> String {
    let listen = faultgate
        .proxy_with(json!({ "name": "git", "mode": "http", "upstream": server.address() }))
        .await;
    format!("http://{listen}")
}

/// Status, headers and body of a GET of `url`.
async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let answer = reqwest::get(url).await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (status, headers, answer.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tamper_alters_the_head_and_keeps_the_servers_body() {
    let server = GitHttpServer::start(&["alpha", "beta"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let (_, direct_headers, direct_body) = get(&format!("http://{}{REFS}", server.address())).await;
    assert!(
        header(&direct_headers, "expires").is_some(),
        "git sends Expires"
    );
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "tamper", "type": "http_tamper",
                    "attributes": { "path_prefix": "/git/alpha.git/",
                                    "set_headers": "X-Tampered: yes\nCache-Control: public, max-age=60",
                                    "remove_headers": "Expires" } }),
        )
        .await;

    let (status, headers, body) = get(&format!("{base}{REFS}")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-tampered"), Some("yes"));
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=60"),
        "the upstream's value was not replaced"
    );
    assert_eq!(header(&headers, "expires"), None, "not removed");
    assert_eq!(
        header(&headers, "content-type"),
        header(&direct_headers, "content-type"),
        "a header not named was changed"
    );
    assert_eq!(body, direct_body, "the server's body did not pass whole");
    // A clone through the altered answers works: only the head changed.
    let out = git_http::clone(
        format!("{base}/git/alpha.git"),
        server.scratch().join("alpha"),
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another repository is not matched.
    let (_, headers, _) = get(&format!(
        "{base}/git/beta.git/info/refs?service=git-upload-pack"
    ))
    .await;
    assert_eq!(header(&headers, "x-tampered"), None);
    assert!(header(&headers, "expires").is_some());

    // The status and the body, replaced.
    faultgate.remove_toxic("git", "tamper").await;
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "tamper", "type": "http_tamper", "stream": "upstream",
                    "attributes": { "path_prefix": "/git/alpha.git/", "status": 500,
                                    "body": "tampered body\n" } }),
        )
        .await;
    let (status, headers, body) = get(&format!("{base}{REFS}")).await;
    assert_eq!(status, 500);
    assert_eq!(body, b"tampered body\n");
    assert_eq!(header(&headers, "content-length"), Some("14"));
    assert_eq!(
        header(&headers, "content-type"),
        header(&direct_headers, "content-type"),
        "the server's headers were not kept"
    );
    let out = git_http::clone(
        format!("{base}/git/alpha.git"),
        server.scratch().join("alpha-500"),
        None,
    )
    .await;
    assert!(!out.status.success(), "a clone through 500s worked");
    assert!(String::from_utf8_lossy(&out.stderr).contains("500"));

    // An empty body in place of the server's.
    faultgate.remove_toxic("git", "tamper").await;
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "tamper", "type": "http_tamper", "attributes": { "empty_body": true } }),
        )
        .await;
    let (status, headers, body) = get(&format!("{base}{REFS}")).await;
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&headers, "content-length"), Some("0"));

    // Removed, the server's answer passes as it was.
    faultgate.remove_toxic("git", "tamper").await;
    let (status, headers, body) = get(&format!("{base}{REFS}")).await;
    assert_eq!(status, 200);
    assert!(header(&headers, "expires").is_some());
    assert_eq!(body, direct_body);
    assert!(
        faultgate
            .metric("faultgate_faults_injected_total", "git")
            .await
            >= 3
    );
}

/// How many times the server has logged `line` (a request line).
fn logged(server: &GitHttpServer, line: &str) -> usize {
    server
        .requests_logged()
        .iter()
        .filter(|l| *l == line)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_sends_matching_requests_again_and_the_client_gets_one_answer() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let refs_line = format!("GET {REFS} HTTP/1.1");
    let pack_line = "POST /git/alpha.git/git-upload-pack HTTP/1.1";
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "twice", "type": "http_duplicate",
                    "attributes": { "times": 3, "path_prefix": "/git/alpha.git/" } }),
        )
        .await;

    let (status, _, body) = get(&format!("{base}{REFS}")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("# service=git-upload-pack"));
    eventually(
        "3 GETs in the access log",
        Duration::from_secs(10),
        || async { logged(&server, &refs_line) == 3 },
    )
    .await;

    // A POST with a body of a known length: each copy carries it (git
    // answers a bare flush-pkt with 200, anything cut short with an error).
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{base}/git/alpha.git/git-upload-pack"))
        .header("content-type", "application/x-git-upload-pack-request")
        .body("0000")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    eventually(
        "3 POSTs in the access log",
        Duration::from_secs(10),
        || async { logged(&server, pack_line) == 3 },
    )
    .await;
    let statuses: Vec<u16> = server
        .access_log()
        .into_iter()
        .filter(|(request, _)| request == pack_line)
        .map(|(_, status)| status)
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 200],
        "a copy was not the whole request"
    );

    // A chunked body cannot be held: sent once, and still answered.
    let address = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(
        b"POST /git/alpha.git/git-upload-pack HTTP/1.1\r\nHost: git.test\r\n\
          Content-Type: application/x-git-upload-pack-request\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\n0000\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("no answer to the chunked request")
        .unwrap();
    // (lighttpd answers a chunked body for CGI with 411; what counts is
    // that it came once.)
    assert!(
        answer.starts_with(b"HTTP/1.1 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    eventually(
        "the chunked POST in the access log",
        Duration::from_secs(10),
        || async { logged(&server, pack_line) == 4 },
    )
    .await;
    assert!(
        faultgate.log().contains("it is sent once"),
        "the single send was not logged"
    );

    // Removed: once again.
    faultgate.remove_toxic("git", "twice").await;
    get(&format!("{base}{REFS}")).await;
    eventually("one more GET", Duration::from_secs(10), || async {
        logged(&server, &refs_line) == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        logged(&server, &refs_line),
        4,
        "sent more than once with no fault"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_answered_by_its_duplicate_is_reported_failed_though_the_server_took_it() {
    let server = GitHttpServer::start(&["alpha"]);
    let faultgate = Faultgate::start(&[]).await;
    let base = git_proxy(&faultgate, &server).await;
    let work = server.scratch().join("work");
    let out = git_http::clone(format!("{base}/git/alpha.git"), work.clone(), None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(work.join("NEW"), "new\n").unwrap();
    run_git(&work, &["add", "NEW"]);
    run_git(&work, &["commit", "-q", "-m", "new"]);
    let pushed = run_git(&work, &["rev-parse", "HEAD"]);
    // The client hears the second send's answer: by then the first moved
    // the branch, so the second's update no longer applies.
    faultgate
        .add_toxic(
            "git",
            json!({ "name": "retry", "type": "http_duplicate",
                    "attributes": { "method": "POST", "path_prefix": "/git/alpha.git/git-receive-pack",
                                    "answer": "last" } }),
        )
        .await;
    let out = git_http::git(&work)
        .args(["push", "origin", "main"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push looked fine: {stderr}");
    assert_eq!(
        run_git(&server.repo_path("alpha"), &["rev-parse", "main"]),
        pushed,
        "the first send did not update the branch: {stderr}"
    );
    eventually(
        "2 pushes in the access log",
        Duration::from_secs(10),
        || async { logged(&server, "POST /git/alpha.git/git-receive-pack HTTP/1.1") == 2 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_http_faults_describe_themselves_and_refuse_bad_attributes_by_name() {
    let faultgate = Faultgate::start(&[]).await;
    let plugins = faultgate.expect("GET", "/plugins", None, 200).await;
    let attributes = |name: &str| -> Vec<String> {
        let plugin = plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {plugins}"));
        plugin["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (plugin, wanted) in [
        (
            "http_tamper",
            &[
                "status",
                "set_headers",
                "remove_headers",
                "body",
                "empty_body",
                "path_prefix",
            ][..],
        ),
        (
            "http_duplicate",
            &["times", "answer", "method", "path_prefix"][..],
        ),
        (
            "grpc_abort",
            &["code", "message", "path_prefix", "header"][..],
        ),
    ] {
        let got = attributes(plugin);
        for name in wanted {
            assert!(
                got.iter().any(|g| g == name),
                "{plugin} lacks {name}: {got:?}"
            );
        }
    }

    faultgate
        .proxy_with(json!({ "name": "h", "mode": "http", "upstream": "127.0.0.1:9" }))
        .await;
    for (plugin, attributes, mentions) in [
        ("http_tamper", json!({ "status": 42 }), "status"),
        (
            "http_tamper",
            json!({ "set_headers": "Content-Length: 5" }),
            "set_headers",
        ),
        (
            "http_tamper",
            json!({ "set_headers": "no colon" }),
            "set_headers",
        ),
        (
            "http_tamper",
            json!({ "remove_headers": "bad name" }),
            "remove_headers",
        ),
        (
            "http_tamper",
            json!({ "body": "x", "empty_body": true }),
            "empty_body",
        ),
        (
            "http_tamper",
            json!({ "path_prefix": "/a" }),
            "nothing would change",
        ),
        ("http_duplicate", json!({ "times": 1 }), "times"),
        ("http_duplicate", json!({ "times": 11 }), "times"),
        ("http_duplicate", json!({ "answer": "middle" }), "answer"),
        ("grpc_abort", json!({ "code": 0 }), "code"),
        ("grpc_abort", json!({ "code": 17 }), "code"),
        ("grpc_abort", json!({ "message": 5 }), "message"),
    ] {
        faultgate
            .expect_error(
                "POST",
                "/proxies/h/toxics",
                Some(json!({ "type": plugin, "attributes": attributes })),
                400,
                mentions,
            )
            .await;
    }
    assert_eq!(
        faultgate.toxics("h").await,
        json!([]),
        "a refused toxic was kept"
    );
}
