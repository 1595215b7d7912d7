//! TLS: faultgate terminating it on a listener and originating it to an
//! upstream, in both modes, with a CA made by the test; and the errors for
//! bad certificates and keys.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::json;
use support::faultgate::Faultgate;
use support::git_http::{self, GitHttpServer, git};
use support::tls::TestCa;

/// `git clone` trusting only `ca`.
async fn clone_trusting(ca: &Path, url: &str, dest: &Path) -> Output {
    git_http::clone(url.to_owned(), dest.to_owned(), Some(ca.to_owned())).await
}

fn assert_cloned(out: &Output, dest: &Path, repo: &str) {
    assert!(
        out.status.success(),
        "clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("README")).unwrap(),
        format!("repository {repo}\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn git_over_https_through_a_listener_that_terminates_tls() {
    let server = GitHttpServer::start(&["alpha"]);
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    let cert = ca.issue("proxy");
    let faultgate = Faultgate::start(&[]).await;
    let listen = faultgate
        .proxy_with(json!({
            "name": "git", "mode": "http", "upstream": server.address(),
            "tls": { "cert": cert.cert, "key": cert.key },
        }))
        .await;
    let dest = server.scratch().join("https");
    let out = clone_trusting(&ca.ca, &format!("https://{listen}/git/alpha.git"), &dest).await;
    assert_cloned(&out, &dest, "alpha");

    // Faults apply to the decrypted requests.
    faultgate
        .add_toxic(
            "git",
            json!({ "type": "http_abort", "stream": "upstream", "attributes": { "status": 503 } }),
        )
        .await;
    let out = clone_trusting(
        &ca.ca,
        &format!("https://{listen}/git/alpha.git"),
        &server.scratch().join("x"),
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));

    // A client that does not trust the CA is refused by its own TLS check.
    let out = tokio::task::spawn_blocking(move || {
        git(Path::new("/"))
            .args(["ls-remote", &format!("https://{listen}/git/alpha.git")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_originates_tls_to_an_https_upstream() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    let server = GitHttpServer::start_tls(&["alpha"], &ca.issue("upstream"));
    let faultgate = Faultgate::start(&[]).await;

    let trusted = faultgate
        .proxy_with(json!({
            "name": "trusted", "mode": "http", "upstream": format!("https://{}", server.address()),
            "upstream_tls": { "ca": ca.ca },
        }))
        .await;
    let dest = server.scratch().join("trusted");
    let out = clone_trusting(&ca.ca, &format!("http://{trusted}/git/alpha.git"), &dest).await;
    assert_cloned(&out, &dest, "alpha");

    let insecure = faultgate
        .proxy_with(json!({
            "name": "insecure", "mode": "http", "upstream": format!("https://{}", server.address()),
            "upstream_tls": { "insecure": true },
        }))
        .await;
    let dest = server.scratch().join("insecure");
    let out = clone_trusting(&ca.ca, &format!("http://{insecure}/git/alpha.git"), &dest).await;
    assert_cloned(&out, &dest, "alpha");

    // Trusting another CA: the handshake fails, and the 502 says why.
    let other = tempfile::tempdir().unwrap();
    let other_ca = TestCa::new(other.path());
    let untrusted = faultgate
        .proxy_with(json!({
            "name": "untrusted", "mode": "http", "upstream": format!("https://{}", server.address()),
            "upstream_tls": { "ca": other_ca.ca },
        }))
        .await;
    let answer = reqwest::get(format!("http://{untrusted}/git/alpha.git/info/refs"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    let body = answer.text().await.unwrap();
    assert!(
        body.contains("TLS handshake") && body.contains("certificate"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_proxy_terminates_and_originates_tls() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    let server = GitHttpServer::start_tls(&["alpha"], &ca.issue("upstream"));
    let cert = ca.issue("proxy");
    let faultgate = Faultgate::start(&[]).await;
    let listen = faultgate
        .proxy_with(json!({
            "name": "bytes", "upstream": format!("tls://{}", server.address()),
            "upstream_tls": { "ca": ca.ca },
            "tls": { "cert": cert.cert, "key": cert.key },
        }))
        .await;
    let dest = server.scratch().join("tcp");
    let out = clone_trusting(&ca.ca, &format!("https://{listen}/git/alpha.git"), &dest).await;
    assert_cloned(&out, &dest, "alpha");
    let shown = faultgate.expect("GET", "/proxies/bytes", None, 200).await;
    assert_eq!(shown["mode"], "tcp");
    assert_eq!(shown["tls"]["cert"], json!(cert.cert));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_certificates_and_keys_are_refused_naming_the_setting() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path());
    let good = ca.issue("good");
    let other = ca.issue("other");
    let junk = certs.path().join("junk.pem");
    std::fs::write(&junk, "this is not PEM\n").unwrap();
    let missing = certs.path().join("missing.pem");
    let faultgate = Faultgate::start(&[]).await;
    let create =
        |tls: serde_json::Value| json!({ "name": "secure", "upstream": "127.0.0.1:1", "tls": tls });

    for (tls, mentions) in [
        (
            json!({ "cert": missing, "key": good.key }),
            "tls.cert: cannot read",
        ),
        (json!({ "cert": junk, "key": good.key }), "tls.cert"),
        (json!({ "cert": good.cert, "key": junk }), "tls.key"),
        (
            json!({ "cert": good.cert, "key": other.key }),
            "does not go with the certificate",
        ),
        (json!({ "cert": good.cert }), "key"),
    ] {
        faultgate
            .expect_error("POST", "/proxies", Some(create(tls)), 400, mentions)
            .await;
    }
    faultgate
        .expect_error(
            "POST",
            "/proxies",
            Some(
                json!({ "name": "up", "upstream": "127.0.0.1:1", "upstream_tls": { "ca": junk } }),
            ),
            400,
            "not TLS",
        )
        .await;
    faultgate
        .expect_error(
            "POST",
            "/proxies",
            Some(json!({ "name": "up", "upstream": "https://127.0.0.1:1", "upstream_tls": { "ca": junk } })),
            400,
            "upstream_tls.ca",
        )
        .await;
    // Nothing was created, and a good one still is.
    assert_eq!(
        faultgate.expect("GET", "/proxies", None, 200).await,
        json!({})
    );
    faultgate
        .proxy_with(create(json!({ "cert": good.cert, "key": good.key })))
        .await;
}
