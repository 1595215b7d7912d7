//! The Dockerfile built as a user builds it: `docker build -t faultgate .`
//! at the top of the repository, from source, the file untouched. The image
//! it makes turns healthy, carries the built-in plugins the build script
//! compiled, runs as its own user, and is as large as README.md says.
//!
//! The other container tests use an image from the same Dockerfile with
//! this run's binary (quicker); this one is the build a user does. Needs an
//! engine at `DOCKER_HOST` with the Dockerfile's base images
//! (`scripts/container-engine` makes them where none can be pulled).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::container::{
    Container, Network, docker, engine, image_id, last_lines, repo_root, run_bounded, text,
    tidy_after_build,
};

/// The size README.md gives for the image: "about N MB".
fn readme_size_mb() -> f64 {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let at = readme
        .find("uncompressed")
        .expect("README.md gives the image's size, uncompressed");
    let before = &readme[..at];
    let about = before.rfind("about ").expect("\"about N MB uncompressed\"");
    before[about + "about ".len()..]
        .trim()
        .trim_end_matches("MB")
        .trim()
        .parse()
        .expect("a number of MB")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dockerfile_builds_from_source_as_a_user_builds_it() {
    engine();
    let root = repo_root();
    let dockerfile_before = std::fs::read(root.join("Dockerfile")).unwrap();

    let replaced = image_id("faultgate");
    let started = Instant::now();
    let build = run_bounded(
        Command::new("docker")
            .args(["build", "-t", "faultgate", "."])
            .current_dir(&root),
        Duration::from_secs(45 * 60),
    );
    let took = started.elapsed();
    let output = text(&build);
    assert!(
        build.status.success(),
        "docker build -t faultgate . failed ({}); the end of its output:\n{}",
        build.status,
        last_lines(&output, 40)
    );
    tidy_after_build("faultgate", replaced, &output);
    eprintln!("docker build -t faultgate . took {took:.0?}");
    assert_eq!(
        std::fs::read(root.join("Dockerfile")).unwrap(),
        dockerfile_before,
        "the build changed the Dockerfile"
    );

    let network = Network::create();
    let fg = Container::run(&network, &["-p", "127.0.0.1::8474"], "faultgate", &[]);
    fg.wait_healthy(Duration::from_secs(60));
    let version: serde_json::Value = reqwest::get(format!("{}/version", fg.api()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["faultgate"], env!("CARGO_PKG_VERSION"));
    // The build script's plugins, compiled for wasm32-wasip2 and embedded.
    let plugins: serde_json::Value = reqwest::get(format!("{}/plugins", fg.api()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = plugins
        .as_array()
        .expect("GET /plugins lists plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for builtin in ["latency", "http_abort", "pg_error"] {
        assert!(names.contains(&builtin), "{builtin} missing: {names:?}");
    }
    assert_eq!(fg.inspect("{{.Config.User}}"), "faultgate");

    let bytes: f64 = docker(
        &["image", "inspect", "-f", "{{.Size}}", "faultgate"],
        Duration::from_secs(30),
    )
    .parse()
    .unwrap();
    let measured = bytes / 1e6;
    let stated = readme_size_mb();
    eprintln!("the image is {measured:.1} MB uncompressed; README.md says about {stated} MB");
    assert!(
        (measured - stated).abs() <= stated * 0.1,
        "the image is {measured:.1} MB uncompressed; README.md says about {stated} MB"
    );
}
