//! Toxiproxy's own clients against faultgate, unchanged: the Python client
//! (toxiproxy-python, from PyPI, in a venv under `target/`) and the Node.js
//! client (toxiproxy-node-client, from npm, in `proxy/tests/toxiproxy-clients`),
//! each running a script of checks of what it shows against Toxiproxy 2.12:
//! attributes at their defaults, a port in use that is not "proxy exists",
//! what Toxiproxy takes taken, populate keeping a proxy named by host name,
//! the version. `./scripts/test` installs both.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::faultgate::{Faultgate, wait_bounded};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/toxiproxy-clients")
}

/// Runs `program args` with the API's address and two ports (one free, one
/// held) in its environment; panics with what it printed unless it passed.
fn run_checks(fg: &Faultgate, program: &Path, args: &[&str]) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let child = Command::new(program)
        .args(args)
        .current_dir(clients_dir())
        .env("FAULTGATE_API", fg.api_addr().to_string())
        .env("FREE_PORT", support::free_port().to_string())
        .env("TAKEN_PORT", taken.local_addr().unwrap().port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let (status, printed) = wait_bounded(child, Duration::from_secs(60));
    assert!(
        status.success(),
        "{} {args:?} failed:\n{printed}",
        program.display()
    );
    assert!(printed.contains("all checks passed"), "{printed}");
}

#[tokio::test]
async fn toxiproxy_python_sees_what_it_sees_against_toxiproxy() {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toxiproxy-clients-venv/bin/python");
    assert!(
        python.exists(),
        "toxiproxy-python is not installed in {}: ./scripts/test installs it",
        python.display()
    );
    let fg = Faultgate::start(&[]).await;
    run_checks(&fg, &python, &["python_client.py"]);
}

#[tokio::test]
async fn toxiproxy_node_client_sees_what_it_sees_against_toxiproxy() {
    assert!(
        clients_dir()
            .join("node_modules/toxiproxy-node-client")
            .is_dir(),
        "toxiproxy-node-client is not installed: run `npm ci` in {} (./scripts/test does)",
        clients_dir().display()
    );
    let fg = Faultgate::start(&[]).await;
    run_checks(&fg, Path::new("node"), &["node_client.mjs"]);
}
