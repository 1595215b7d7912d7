//! The compose test bed (`compose/docker-compose.yml`) as a test runs it:
//! `docker-compose` (or `docker compose`) with a project of its own, free
//! loopback ports, a report directory of its own and faultgate's image from
//! this run, taken down with its volumes when dropped.
//!
//! Where the bed's official images cannot be pulled, the stand-ins of
//! `compose/docker-compose.stand-ins.yml` are built and used instead. When a
//! compose command fails, `diagnosis` names the services that failed (exited
//! non-zero, unhealthy, never started) with their last log lines.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::container::{
    docker_output, engine, faultgate_image, last_lines, repo_root, run_bounded, text, unique,
};
use super::free_port;

pub struct Bed {
    project: String,
    files: Vec<PathBuf>,
    pub api_port: u16,
    pub opal_port: u16,
    pub reports: tempfile::TempDir,
}

/// `docker-compose` when installed (Debian's 1.29), else the engine CLI's
/// `docker compose`.
fn compose_program() -> Vec<String> {
    let have = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("docker-compose", &["version"]) {
        vec!["docker-compose".into()]
    } else if have("docker", &["compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else {
        panic!(
            "neither docker-compose nor `docker compose` is installed: ./scripts/test installs Debian's docker-compose"
        );
    }
}

impl Bed {
    /// The bed, with `extra` compose files after the main one (and the
    /// stand-ins' when needed), images built, nothing started.
    pub fn new(extra: &[PathBuf]) -> Self {
        engine();
        let compose_dir = repo_root().join("compose");
        let mut files = vec![compose_dir.join("docker-compose.yml")];
        let reports = tempfile::tempdir().unwrap();
        let mut bed = Self {
            project: unique("faultgate-bed"),
            files: files.clone(),
            api_port: free_port(),
            opal_port: free_port(),
            reports,
        };
        if !bed.official_images_available() {
            files.push(compose_dir.join("docker-compose.stand-ins.yml"));
        }
        files.extend(extra.iter().cloned());
        bed.files = files;
        if bed
            .files
            .iter()
            .any(|f| f.ends_with("docker-compose.stand-ins.yml"))
        {
            // One build at a time: beds of the same test binary share the images.
            static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
            let out = bed.compose(
                &["build", "postgres", "redis", "gitea", "opal-server"],
                Duration::from_secs(1200),
            );
            assert!(
                out.status.success(),
                "building the stand-in images failed:\n{}",
                last_lines(&text(&out), 40)
            );
        }
        bed
    }

    /// Whether every image of the main file but faultgate's is present or
    /// can be pulled; says why not when not.
    fn official_images_available(&self) -> bool {
        // The resolved file; compose 1.29 has no `config --images`.
        let resolved = self.compose(&["config"], Duration::from_secs(60));
        assert!(resolved.status.success(), "{}", text(&resolved));
        let resolved = String::from_utf8_lossy(&resolved.stdout).into_owned();
        let mut images: Vec<&str> = resolved
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .collect();
        images.sort();
        images.dedup();
        let own = faultgate_image();
        for image in images {
            if image == own
                || docker_output(&["image", "inspect", image], Duration::from_secs(30))
                    .status
                    .success()
            {
                continue;
            }
            let pulled = docker_output(&["pull", "-q", image], Duration::from_secs(300));
            if !pulled.status.success() {
                eprintln!(
                    "{image} cannot be pulled ({}): the bed runs with compose/docker-compose.stand-ins.yml",
                    text(&pulled).trim()
                );
                return false;
            }
        }
        true
    }

    /// A compose command on this bed, bounded by `within`.
    pub fn compose(&self, args: &[&str], within: Duration) -> Output {
        let program = compose_program();
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]).args(["-p", &self.project]);
        for file in &self.files {
            command.arg("-f").arg(file);
        }
        command
            .args(args)
            .env("FAULTGATE_BED_IMAGE", faultgate_image())
            .env("FAULTGATE_BED_API_PORT", self.api_port.to_string())
            .env("FAULTGATE_BED_OPAL_PORT", self.opal_port.to_string())
            .env("FAULTGATE_BED_REPORTS", self.reports.path())
            // Compose 1.29 would ask on a terminal; none here.
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
        run_bounded(&mut command, within)
    }

    /// Each service that failed, named, with its state and last log lines.
    pub fn diagnosis(&self) -> String {
        let listed = self.compose(&["config", "--services"], Duration::from_secs(60));
        let mut report = String::new();
        for service in String::from_utf8_lossy(&listed.stdout).lines() {
            let ids = self.compose(&["ps", "-a", "-q", service], Duration::from_secs(60));
            let ids = String::from_utf8_lossy(&ids.stdout).trim().to_owned();
            let Some(id) = ids.lines().last() else {
                report.push_str(&format!("service {service}: never started\n"));
                continue;
            };
            let out = docker_output(
                &["inspect", "-f", "{{json .State}}", id],
                Duration::from_secs(30),
            );
            let state: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            let status = state["Status"].as_str().unwrap_or("unknown");
            let exit = state["ExitCode"].as_i64().unwrap_or(-1);
            let health = state["Health"]["Status"].as_str();
            let fine = match (status, health) {
                ("running", Some("unhealthy")) => false,
                ("running", _) => true,
                ("exited", _) => exit == 0,
                _ => false,
            };
            if fine {
                continue;
            }
            let mut summary = format!("{status} exit={exit}");
            if let Some(health) = health {
                // The last check's own words say why it failed.
                let last = state["Health"]["Log"]
                    .as_array()
                    .and_then(|checks| checks.last())
                    .and_then(|check| check["Output"].as_str())
                    .unwrap_or("")
                    .trim();
                summary.push_str(&format!(" health={health} (last check: {last:?})"));
            }
            let logs = self.compose(
                &["logs", "--no-color", "--tail", "30", service],
                Duration::from_secs(60),
            );
            report.push_str(&format!(
                "service {service}: {summary}; its last log lines:\n{}\n",
                text(&logs).trim_end()
            ));
        }
        if report.is_empty() {
            report.push_str("(every service is running or exited 0)\n");
        }
        report
    }

    /// The control API of the bed's faultgate, published on 127.0.0.1.
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = self.compose(
            &["down", "-v", "--remove-orphans", "-t", "5"],
            Duration::from_secs(120),
        );
    }
}
