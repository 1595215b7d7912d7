//! A container engine for the tests of faultgate's image: the `docker` CLI
//! against `DOCKER_HOST` (`scripts/container-engine` sets one up and prints
//! it; `./scripts/test` exports it), images built from the repository's
//! Dockerfiles, and containers, networks and volumes removed when dropped.
//!
//! Every engine call is bounded in time, and a failure shows what the engine
//! said. Containers run on networks of their own, which the private engine
//! keeps off the outside world; ports are published on 127.0.0.1 only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// `docker ARGS`, ended (killed) if it takes longer than `within`; panics
/// naming the command when it had to be ended or could not start.
pub fn docker_output(args: &[&str], within: Duration) -> Output {
    run_bounded(Command::new("docker").args(args), within)
}

/// `command`, bounded by `within`.
pub fn run_bounded(command: &mut Command, within: Duration) -> Output {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(within) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{shown}: {e}")),
        Err(_) => {
            // Safety: kill(2) on our own child, which has not been reaped:
            // the thread holding it is still waiting.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let output = finished.recv().ok().and_then(Result::ok);
            panic!(
                "{shown} did not finish within {within:?}: stuck (an engine or a registry that does not answer?), or slower on this machine than the test allows; the end of its output:\n{}",
                last_lines(&output.map(|o| text(&o)).unwrap_or_default(), 40)
            );
        }
    }
}

/// Stdout and stderr of `output`, one after the other.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `docker ARGS`, which must succeed within `within`: its stdout, trimmed.
pub fn docker(args: &[&str], within: Duration) -> String {
    engine();
    let output = docker_output(args, within);
    assert!(
        output.status.success(),
        "docker {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Checks once that an engine answers at `DOCKER_HOST`; panics saying what
/// to do when none does.
pub fn engine() {
    static ANSWERS: OnceLock<Result<String, String>> = OnceLock::new();
    let answer = ANSWERS.get_or_init(|| {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "(not set)".into());
        let output = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(Stdio::null())
            .output();
        match output {
            Err(e) => Err(format!(
                "no docker client ({e}): install docker.io, or run ./scripts/test, which does"
            )),
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().into()),
            Ok(o) => Err(format!(
                "no container engine answers at DOCKER_HOST={host}: start one with \
                 `export DOCKER_HOST=$(scripts/container-engine)` (./scripts/test does); the client said:\n{}",
                text(&o)
            )),
        }
    });
    if let Err(problem) = answer {
        panic!("{problem}");
    }
}

/// A name no other test of this run, nor of another checkout sharing the
/// engine, uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A tag of this checkout's own: `name:HASH` of the repository's path, so
/// checkouts sharing one engine do not replace each other's test images.
fn checkout_tag(name: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    repo_root().hash(&mut hasher);
    format!("{name}:{:016x}", hasher.finish())
}

/// `docker build -t TAG ARGS`, bounded by `within`; on failure, panics with
/// the end of the build's output, which names the failing step. Tidies up
/// after itself (`tidy_after_build`).
pub fn build(tag: &str, args: &[&str], within: Duration) -> Duration {
    engine();
    let replaced = image_id(tag);
    let started = Instant::now();
    let mut full = vec!["build", "-t", tag];
    full.extend(args);
    let output = docker_output(&full, within);
    let all = text(&output);
    if !output.status.success() {
        panic!(
            "docker {} failed ({}); the end of its output:\n{}",
            full.join(" "),
            output.status,
            last_lines(&all, 40)
        );
    }
    let took = started.elapsed();
    tidy_after_build(tag, replaced, &all);
    took
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The id of the image `tag` names, if any.
pub fn image_id(tag: &str) -> Option<String> {
    let output = docker_output(
        &["image", "inspect", "-f", "{{.Id}}", tag],
        Duration::from_secs(30),
    );
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// After a build of `tag` (its output `build_output`, the image it
/// `replaced`): removes the image the tag named before, and the build stages
/// (each holds a copy of the build context over the 1 GB Rust image) of the build
/// of `tag` before this one, recorded under target/. Each run would
/// otherwise leave its own behind; one build's stages stay, as the cache of
/// an unchanged rebuild. Images still in use are left (`docker rmi` refuses).
pub fn tidy_after_build(tag: &str, replaced: Option<String>, build_output: &str) {
    // The legacy builder prints each step's image as ` ---> ID`; a stage
    // ends where the next `FROM` step starts.
    let mut stages = Vec::new();
    let mut last_id = None;
    for line in build_output.lines() {
        let line = line.trim();
        if let Some(id) = line.strip_prefix("---> ") {
            if id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit()) {
                last_id = Some(id.to_owned());
            }
        } else if line.starts_with("Step ") && line.to_ascii_uppercase().contains(" : FROM ") {
            stages.extend(last_id.take());
        }
    }
    let record = repo_root()
        .join("target/container-build-stages")
        .join(tag.replace(['/', ':'], "_"));
    let previous = std::fs::read_to_string(&record).unwrap_or_default();
    for old in previous
        .lines()
        .filter(|id| !stages.iter().any(|s| s == id))
    {
        let _ = docker_output(&["rmi", old], Duration::from_secs(120));
    }
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(&record, stages.join("\n")).unwrap();
    if let Some(replaced) = replaced.filter(|old| image_id(tag).as_ref() != Some(old)) {
        let _ = docker_output(&["rmi", &replaced], Duration::from_secs(120));
    }
}

/// faultgate's image from the repository's Dockerfile with this test run's
/// own binary (the Dockerfile's PREBUILT argument) instead of a build from
/// source, which `container_build.rs` tests. Built once per test binary;
/// the engine's layer cache makes a rebuild of the same binary quick.
pub fn faultgate_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let tag = checkout_tag("faultgate-test");
        let context = tempfile::tempdir().unwrap();
        let binary = context.path().join("faultgate");
        std::fs::hard_link(env!("CARGO_BIN_EXE_faultgate"), &binary)
            .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_faultgate"), &binary).map(drop))
            .unwrap();
        let dockerfile = repo_root().join("Dockerfile");
        let took = build(
            &tag,
            &[
                "-f",
                dockerfile.to_str().unwrap(),
                "--build-arg",
                "PREBUILT=faultgate",
                context.path().to_str().unwrap(),
            ],
            Duration::from_secs(600),
        );
        eprintln!("faultgate's image with this run's binary: {tag}, built in {took:.1?}");
        tag
    })
}

/// The stand-in image `name` of `compose/stand-ins/` (postgres, redis,
/// gitea), tagged as `compose/docker-compose.stand-ins.yml` tags it, so the
/// compose bed finds it built. Built once per test binary (the layer cache
/// makes it quick after the first time on an engine).
pub fn stand_in_image(name: &str) -> String {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let tag = match name {
        "postgres" => "faultgate-stand-in/postgres:15",
        "redis" => "faultgate-stand-in/redis:7",
        "gitea" => "faultgate-stand-in/gitea:latest",
        other => panic!("no stand-in image {other}"),
    }
    .to_owned();
    let mut built = BUILT.lock().unwrap();
    if !built.contains(&tag) {
        let dir = repo_root().join("compose/stand-ins").join(name);
        let took = build(&tag, &[dir.to_str().unwrap()], Duration::from_secs(900));
        eprintln!("stand-in {tag} built in {took:.1?}");
        built.push(tag.clone());
    }
    tag
}

/// A network of its own for a test's containers, removed when dropped.
pub struct Network {
    pub name: String,
}

impl Network {
    pub fn create() -> Self {
        let name = unique("faultgate-test-net");
        docker(&["network", "create", &name], Duration::from_secs(30));
        Self { name }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker_output(&["network", "rm", &self.name], Duration::from_secs(30));
    }
}

/// A named volume, removed when dropped.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn create() -> Self {
        let name = unique("faultgate-test-volume");
        docker(&["volume", "create", &name], Duration::from_secs(30));
        Self { name }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker_output(&["volume", "rm", "-f", &self.name], Duration::from_secs(30));
    }
}

/// A container, removed (with its anonymous volumes) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name NAME --network NETWORK OPTIONS... IMAGE COMMAND...`.
    pub fn run(network: &Network, options: &[&str], image: &str, command: &[&str]) -> Self {
        let name = unique("faultgate-test");
        let mut args = vec!["run", "-d", "--name", &name, "--network", &network.name];
        args.extend(options);
        args.push(image);
        args.extend(command);
        docker(&args, Duration::from_secs(60));
        Self { name }
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker(
            &["inspect", "-f", format, &self.name],
            Duration::from_secs(30),
        )
    }

    /// Its output so far (stdout and stderr).
    pub fn logs(&self) -> String {
        text(&docker_output(
            &["logs", &self.name],
            Duration::from_secs(30),
        ))
    }

    /// The address on 127.0.0.1 where `port` (e.g. "8474") is published.
    pub fn published(&self, port: &str) -> std::net::SocketAddr {
        let bindings = docker(
            &["port", &self.name, &format!("{port}/tcp")],
            Duration::from_secs(30),
        );
        let first = bindings.lines().next().unwrap_or_default();
        let address: std::net::SocketAddr = first.parse().unwrap_or_else(|_| {
            panic!(
                "port {port} of {} is not published: {bindings:?}",
                self.name
            )
        });
        assert!(
            address.ip().is_loopback(),
            "port {port} of {} is published on {address}, not on loopback",
            self.name
        );
        address
    }

    /// The base URL of the control API, published from port 8474.
    pub fn api(&self) -> String {
        format!("http://{}", self.published("8474"))
    }

    /// `docker exec NAME COMMAND...`.
    pub fn exec(&self, command: &[&str]) -> Output {
        let mut args = vec!["exec", &self.name];
        args.extend(command);
        docker_output(&args, Duration::from_secs(60))
    }

    /// Waits until the engine reports the container's health check healthy;
    /// panics with the container's log when it turns unhealthy, exits or
    /// takes longer than `within`.
    pub fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let state = self.inspect("{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-health-check{{end}}");
            match state.split_once(' ') {
                Some((_, "healthy")) => return,
                Some(("running", "starting")) if Instant::now() < deadline => {}
                _ => panic!(
                    "{} is not healthy ({state}) after {:?}; its log:\n{}\nits health checks:\n{}",
                    self.name,
                    within - deadline.saturating_duration_since(Instant::now()),
                    self.logs(),
                    self.inspect("{{json .State.Health}}")
                ),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the container has exited, at most `within`; its exit code.
    pub fn wait_exit(&self, within: Duration) -> i64 {
        let seconds = within.as_secs().max(1).to_string();
        let output = run_bounded(
            Command::new("timeout")
                .arg(&seconds)
                .args(["docker", "wait", &self.name]),
            within + Duration::from_secs(10),
        );
        assert!(
            output.status.success(),
            "{} did not exit within {within:?}:\n{}\nits log:\n{}",
            self.name,
            text(&output),
            self.logs()
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {}:\n{}", self.name, self.logs());
        }
        let _ = docker_output(&["rm", "-f", "-v", &self.name], Duration::from_secs(60));
    }
}
