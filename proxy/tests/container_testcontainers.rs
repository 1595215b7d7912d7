//! faultgate's image as a drop-in for Toxiproxy's, tried with a real
//! Testcontainers module from the npm registry: `@testcontainers/toxiproxy`
//! starts the image, creates a proxy to a Redis container, adds a latency
//! toxic whose delay the host sees, and removes it
//! (`proxy/tests/testcontainers/toxiproxy.test.mjs`).
//!
//! Needs an engine at `DOCKER_HOST` (`scripts/container-engine`) and the
//! module installed (`npm ci` in `proxy/tests/testcontainers`); `./scripts/test`
//! sets up both.

mod support;

use std::process::Command;
use std::time::Duration;

use support::container::{engine, faultgate_image, repo_root, run_bounded, stand_in_image, text};

#[test]
fn testcontainers_toxiproxy_module_drives_the_image_in_place_of_toxiproxys() {
    engine();
    let dir = repo_root().join("proxy/tests/testcontainers");
    assert!(
        dir.join("node_modules/@testcontainers/toxiproxy").is_dir(),
        "the Testcontainers module is not installed: run `npm ci` in {} (./scripts/test does)",
        dir.display()
    );
    let faultgate = faultgate_image();
    let redis = stand_in_image("redis");

    let output = run_bounded(
        Command::new("node")
            .args(["--test", "toxiproxy.test.mjs"])
            .current_dir(&dir)
            .env("FAULTGATE_IMAGE", faultgate)
            .env("REDIS_IMAGE", &redis)
            // No reaper container (its image cannot be pulled everywhere);
            // the test stops what it starts.
            .env("TESTCONTAINERS_RYUK_DISABLED", "true")
            // Published ports are on loopback; Testcontainers would otherwise
            // guess the engine's bridge address when it thinks it runs in a
            // container.
            .env("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1"),
        Duration::from_secs(300),
    );
    let output_text = text(&output);
    assert!(
        output.status.success(),
        "the Testcontainers test failed ({}):\n{output_text}",
        output.status
    );
    assert!(output_text.contains("# pass 1"), "{output_text}");
}
