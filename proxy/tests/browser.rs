//! The live page (`GET /ui`) and the HTML report (`faultgate run --html`)
//! opened in headless Chromium, checked for what a person would see
//! (`proxy/tests/browser/pages.test.mjs`, driven by playwright-core):
//! the proxy listed, a fault added through the API appearing without a
//! reload, the byte chart moving, the connection count, the page saying
//! faultgate went away and recovering when it is back; the report of a
//! real failing run showing the fault window behind the failed step, and
//! a scenario that could not run saying why.
//!
//! Needs Debian's `chromium` and `npm ci` in `proxy/tests/browser`;
//! `./scripts/test` installs both. Screenshots are kept in
//! `target/browser-artifacts/`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

#[test]
fn the_live_page_and_the_report_show_what_happened_in_a_real_browser() {
    let dir = repo_root().join("proxy/tests/browser");
    assert!(
        PathBuf::from("/usr/bin/chromium").exists(),
        "Chromium is not installed (Debian's chromium package; ./scripts/test installs it)"
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in {} (./scripts/test does)",
        dir.display()
    );
    let artifacts = repo_root().join("target/browser-artifacts");
    let mut child = Command::new("node")
        .arg("pages.test.mjs")
        .current_dir(&dir)
        .env("FAULTGATE_BIN", env!("CARGO_BIN_EXE_faultgate"))
        .env("ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed or took longer than 240s ({}):\n{text}",
        output.status
    );
    assert!(
        text.contains("# pass: the live page and the report"),
        "{text}"
    );
    for shot in ["live-page.png", "live-page-gone.png", "report.png"] {
        assert!(
            artifacts.join(shot).is_file(),
            "no screenshot {shot} in {}",
            artifacts.display()
        );
    }
}
