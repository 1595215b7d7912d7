//! The compose test bed without Docker: `compose/without-docker.sh` starts
//! Redis, Postgres, a git smart-HTTP server, faultgate and a real
//! opal-server on loopback and runs the gate scenarios of
//! `compose/scenarios/` against them, as the compose stack's runner does.

mod support;

use std::path::Path;
use std::process::Command;

#[test]
fn the_gate_scenarios_pass_against_a_real_opal_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("OPAL_VENV")
        .map(Into::into)
        .unwrap_or_else(|| root.join("target/opal-venv"));
    assert!(
        venv.join("bin/opal-server").exists(),
        "no opal-server in {}: ./scripts/test installs it (see compose/without-docker.sh)",
        venv.display()
    );
    let reports = tempfile::tempdir().unwrap();
    let junit = reports.path().join("junit.xml");

    let out = Command::new(root.join("compose/without-docker.sh"))
        .env("FAULTGATE", env!("CARGO_BIN_EXE_faultgate"))
        .env("OPAL_VENV", &venv)
        .env("JUNIT", &junit)
        .output()
        .expect("running compose/without-docker.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the test bed failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("3 of 3 scenarios passed"),
        "{stdout}\n{stderr}"
    );

    // The report a CI system would read: one passing case per scenario.
    let cases = support::junit::cases(&junit);
    assert_eq!(cases.len(), 3, "{cases:?}");
    assert!(cases.iter().all(|case| case.failure.is_none()), "{cases:?}");
}
