//! The compose test bed, up: `compose/docker-compose.yml` runs the gate
//! scenarios against a real opal-server with faultgate as its sidecar and
//! passes (as `up --exit-code-from runner runner`, the command its README
//! gives), a control run with a gate that must fail exits 1 at that gate,
//! and a bed that cannot start names the service that failed, with its log.
//!
//! Official images where they can be pulled, else the stand-ins of
//! `compose/docker-compose.stand-ins.yml` (see `support::compose`); faultgate's
//! image is this run's (`support::container::faultgate_image`). Needs an
//! engine at `DOCKER_HOST` (`scripts/container-engine`).

mod support;

use std::time::Duration;

use support::compose::Bed;
use support::container::{last_lines, repo_root, text};

#[tokio::test(flavor = "multi_thread")]
async fn the_bed_passes_its_gates_and_fails_the_control_gate_for_its_reason() {
    let bed = Bed::new(&[]);

    let up = bed.compose(
        &["up", "--exit-code-from", "runner", "runner"],
        Duration::from_secs(900),
    );
    let output = text(&up);
    assert!(
        up.status.success(),
        "the bed failed ({}):\n{}\n{}",
        up.status,
        last_lines(&output, 60),
        bed.diagnosis()
    );
    assert!(output.contains("3 of 3 scenarios passed"), "{output}");
    let cases = support::junit::cases(&bed.reports.path().join("junit.xml"));
    assert_eq!(cases.len(), 3, "{cases:?}");
    assert!(cases.iter().all(|case| case.failure.is_none()), "{cases:?}");

    // The control: the same stack (still up: only the runner exited), a gate
    // whose repository hangs and which expects its scope served anyway.
    let control = repo_root().join("proxy/tests/support/bed-control-must-fail.toml");
    let mount = format!("{}:/control.toml:ro", control.display());
    let run = bed.compose(
        &[
            "run",
            "--rm",
            "-v",
            &mount,
            "runner",
            "run",
            "/control.toml",
            "--junit",
            "/reports/control.xml",
        ],
        Duration::from_secs(300),
    );
    let output = text(&run);
    // 1: a check failed (2 would be a bad file or an unreachable stack).
    assert_eq!(run.status.code(), Some(1), "{output}\n{}", bed.diagnosis());
    let failed: Vec<&str> = output.lines().filter(|l| l.contains("FAIL ")).collect();
    assert_eq!(failed.len(), 1, "{output}");
    assert!(
        failed[0].contains("the scope is served though its repository hangs"),
        "the control failed elsewhere:\n{output}"
    );
    assert!(output.contains("0 of 1 scenarios passed"), "{output}");
    let cases = support::junit::cases(&bed.reports.path().join("control.xml"));
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert!(cases[0].failure.is_some(), "{cases:?}");
    // Its teardown put the proxy back as it found it.
    let toxics: serde_json::Value = reqwest::get(format!("{}/proxies/gitea/toxics", bed.api()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(toxics, serde_json::json!([]));
}

#[test]
fn a_bed_that_cannot_start_names_the_failing_service_and_shows_its_log() {
    // Postgres runs, but its health check asks a port nobody listens on:
    // what faultgate waits for never comes (with the official image and
    // the stand-in alike).
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("postgres-never-healthy.yml");
    std::fs::write(
        &broken,
        "services:\n  postgres:\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\", \"-U\", \"postgres\", \"-p\", \"1\"]\n      interval: 1s\n      retries: 3\n",
    )
    .unwrap();
    let bed = Bed::new(&[broken]);

    let up = bed.compose(
        &["up", "--exit-code-from", "runner", "runner"],
        Duration::from_secs(300),
    );
    assert!(!up.status.success(), "{}", text(&up));
    let diagnosis = bed.diagnosis();
    assert!(
        diagnosis.contains("service postgres: running exit=0 health=unhealthy"),
        "{diagnosis}"
    );
    // The failing check's words, and the service's own log.
    assert!(diagnosis.contains("no response"), "{diagnosis}");
    assert!(
        diagnosis.contains("database system is ready to accept connections"),
        "{diagnosis}"
    );
    // What waited for it never started; nothing else is blamed.
    for waiting in ["faultgate", "opal-server", "runner"] {
        assert!(
            diagnosis.contains(&format!("service {waiting}: never started\n")),
            "{diagnosis}"
        );
    }
    assert!(!diagnosis.contains("service redis:"), "{diagnosis}");
    assert!(!diagnosis.contains("service gitea:"), "{diagnosis}");
}

/// `docker-compose config`'s services: each name with the lines of its
/// block (compose prints them indented by two spaces per level).
fn services(resolved: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut services = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_services = false;
    for line in resolved.lines() {
        if !line.starts_with(' ') {
            in_services = line == "services:";
            current = None;
        } else if in_services && line.starts_with("  ") && !line.starts_with("   ") {
            let name = line.trim().trim_end_matches(':').to_owned();
            services.insert(name.clone(), Vec::new());
            current = Some(name);
        } else if let Some(name) = &current {
            services.get_mut(name).unwrap().push(line.to_owned());
        }
    }
    services
}

#[test]
fn the_compose_file_pins_its_images_hides_no_failure_and_health_checks_what_is_waited_for() {
    let compose = repo_root().join("compose/docker-compose.yml");
    let resolved = support::container::run_bounded(
        std::process::Command::new("docker-compose")
            .arg("-f")
            .arg(&compose)
            .arg("config")
            .env_remove("FAULTGATE_BED_IMAGE"),
        Duration::from_secs(60),
    );
    assert!(resolved.status.success(), "{}", text(&resolved));
    let services = services(&String::from_utf8_lossy(&resolved.stdout));
    assert!(services.len() >= 8, "{services:?}");

    let image = |lines: &[String]| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix("    image: "))
            .map(str::to_owned)
    };
    // Images built here (faultgate's, which the runner shares) carry no
    // release; every other one is pinned to one.
    let built: Vec<String> = services
        .values()
        .filter(|lines| lines.iter().any(|l| l == "    build:"))
        .filter_map(|lines| image(lines))
        .collect();
    for (name, lines) in &services {
        let image = image(lines).unwrap_or_else(|| panic!("service {name} names no image"));
        if built.contains(&image) {
            continue;
        }
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            tag.starts_with(|c: char| c.is_ascii_digit()) && tag.contains('.'),
            "service {name}: {image} is not pinned to a release"
        );
    }

    // Every service another waits for to be healthy has a health check.
    for (name, lines) in &services {
        let mut waits_for = None;
        for line in lines {
            if let Some(dependency) = line
                .strip_prefix("      ")
                .filter(|d| !d.starts_with(' '))
                .and_then(|d| d.strip_suffix(':'))
            {
                waits_for = Some(dependency.to_owned());
            } else if line.trim() == "condition: service_healthy" {
                let dependency = waits_for
                    .as_ref()
                    .expect("a dependency before its condition");
                assert!(
                    services[dependency].iter().any(|l| l == "    healthcheck:"),
                    "{name} waits for {dependency} to be healthy, which has no health check"
                );
            }
        }
    }

    // No setup step whose failure is swallowed.
    for file in ["compose/docker-compose.yml", "compose/gitea-seed.sh"] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        assert!(
            !text.contains("|| true"),
            "{file} hides a failure behind `|| true`"
        );
    }
}
