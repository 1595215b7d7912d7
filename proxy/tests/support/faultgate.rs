//! `faultgate serve` as a child process, and a client for its control API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// A running `faultgate serve`, killed when dropped. Its log is kept and
/// printed if the test fails.
pub struct Faultgate {
    child: Child,
    pub api: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

/// Where build.rs put the plugins it built, including the test-only ones.
pub fn plugin_build_dir() -> PathBuf {
    PathBuf::from(env!("FAULTGATE_PLUGIN_BUILD_DIR"))
}

/// How a `faultgate serve` is started, beyond its flags.
#[derive(Default)]
pub struct Launch<'a> {
    /// Environment variables (settings can come from these too).
    pub env: &'a [(&'a str, &'a str)],
    /// The process's limit on open files, soft and hard (`RLIMIT_NOFILE`),
    /// to reach it with a small flood.
    pub open_files: Option<u64>,
}

impl Faultgate {
    /// Starts `faultgate serve --api 127.0.0.1:0 EXTRA...` (with `--seed 7`
    /// and `--no-plugin-cache` unless EXTRA says otherwise) and waits until
    /// its API is ready.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, Launch::default()).await
    }

    /// Like [`Faultgate::start`], with environment variables and limits.
    pub async fn start_with(extra: &[&str], launch: Launch<'_>) -> Self {
        let seed: &[&str] = if extra.contains(&"--seed") {
            &[]
        } else {
            &["--seed", "7"]
        };
        // Tests do not write compiled plugins into the user's cache.
        let cache: &[&str] = if extra.contains(&"--plugin-cache") {
            &[]
        } else {
            &["--no-plugin-cache"]
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_faultgate"));
        command
            .args(["serve", "--api", "127.0.0.1:0"])
            .args(seed)
            .args(cache)
            .args(extra)
            .env("RUST_LOG", "info,faultgate=debug")
            .envs(launch.env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(open_files) = launch.open_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            // Safety: setrlimit between fork and exec touches only the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("starting faultgate");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("control API ready") {
                        // Text logs say `api=ADDR`; JSON logs carry it in `fields`.
                        let addr = match serde_json::from_str::<Value>(&line) {
                            Ok(json) => json["fields"]["api"].as_str().unwrap_or("").to_owned(),
                            Err(_) => line.split("api=").nth(1).unwrap_or("").trim().to_owned(),
                        };
                        let _ = ready_tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut ready = None;
        while ready.is_none()
            && std::time::Instant::now() < deadline
            && child.try_wait().unwrap().is_none()
        {
            ready = ready_rx.recv_timeout(Duration::from_millis(50)).ok();
        }
        // The last lines of output of a process that exited are still wanted.
        std::thread::sleep(Duration::from_millis(if ready.is_some() { 0 } else { 100 }));
        let api = match ready {
            // Tests talk to loopback only.
            Some(addr) if addr.starts_with("127.0.0.1:") => format!("http://{addr}"),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "faultgate did not become ready; its output:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            child,
            api,
            log,
            http: reqwest::Client::new(),
        }
    }

    /// What faultgate has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process now, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/PID/status")
            * 1024
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        // Safety: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits up to `within` for the process to exit; its exit code, or
    /// `None` if it is still running (or was killed by a signal).
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends a request to the API; returns the status and the body as JSON
    /// (`Value::Null` for an empty body, a string for a non-JSON one).
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        api_request(&self.http, &self.api, method, path, body).await
    }

    /// Sends a plugin component to `POST /plugins`, waiting as long as the
    /// first compile of a large one (a Python interpreter) takes on a busy
    /// machine.
    pub async fn upload_plugin(&self, bytes: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/plugins", self.api))
            .header("Content-Type", "application/wasm")
            .body(bytes)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .expect("control API request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Like `request`, but the status must be `expected`.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, value) = self.request(method, path, body).await;
        assert_eq!(status, expected, "{method} {path} answered {value}");
        value
    }

    /// The proxy's fault chain, as `GET /proxies/{proxy}/toxics` lists it.
    pub async fn toxics(&self, proxy: &str) -> Value {
        self.expect("GET", &format!("/proxies/{proxy}/toxics"), None, 200)
            .await
    }

    /// Sends a request that must fail with `status` and Toxiproxy's error
    /// body, whose message mentions `mentions`; returns the message.
    pub async fn expect_error(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        mentions: &str,
    ) -> String {
        let (got, answer) = self.request(method, path, body).await;
        error_mentions(got, &answer, status, mentions)
    }

    /// Creates a proxy to `upstream` on a free loopback port; returns its address.
    pub async fn proxy(&self, name: &str, upstream: impl std::fmt::Display) -> SocketAddr {
        let body =
            json!({ "name": name, "listen": "127.0.0.1:0", "upstream": upstream.to_string() });
        let created = self.expect("POST", "/proxies", Some(body), 201).await;
        created["listen"].as_str().unwrap().parse().unwrap()
    }

    /// Creates a proxy from a full JSON spec (listening on a free loopback
    /// port unless it says otherwise); returns its address.
    pub async fn proxy_with(&self, mut spec: Value) -> SocketAddr {
        if spec.get("listen").is_none() {
            spec["listen"] = json!("127.0.0.1:0");
        }
        let created = self.expect("POST", "/proxies", Some(spec), 201).await;
        created["listen"].as_str().unwrap().parse().unwrap()
    }

    /// Attaches a toxic; returns its JSON.
    pub async fn add_toxic(&self, proxy: &str, toxic: Value) -> Value {
        self.expect(
            "POST",
            &format!("/proxies/{proxy}/toxics"),
            Some(toxic),
            200,
        )
        .await
    }

    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) {
        self.expect(
            "DELETE",
            &format!("/proxies/{proxy}/toxics/{toxic}"),
            None,
            204,
        )
        .await;
    }

    pub async fn set_enabled(&self, proxy: &str, enabled: bool) {
        self.expect(
            "PATCH",
            &format!("/proxies/{proxy}"),
            Some(json!({ "enabled": enabled })),
            200,
        )
        .await;
    }

    /// The API's address, for raw TCP clients.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.trim_start_matches("http://").parse().unwrap()
    }

    /// The value of the series `series` (a name and its labels, as
    /// `/metrics` writes them), if `/metrics` has it.
    pub async fn series(&self, series: &str) -> Option<u64> {
        let (_, body) = self.request("GET", "/metrics", None).await;
        let prefix = format!("{series} ");
        body.as_str()
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().unwrap())
    }

    /// The value of a metric line `name{proxy="proxy"}`.
    pub async fn metric(&self, name: &str, proxy: &str) -> u64 {
        let (_, body) = self.request("GET", "/metrics", None).await;
        let text = body.as_str().unwrap_or_default().to_owned();
        let prefix = format!("{name}{{proxy=\"{proxy}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
            .parse()
            .unwrap()
    }
}

/// Checks an answer is Toxiproxy's error body with `status`, and that its
/// message mentions `mentions`; returns the message.
pub fn error_mentions(got: u16, answer: &Value, status: u16, mentions: &str) -> String {
    assert_eq!(got, status, "expected {status}, got {got}: {answer}");
    assert_eq!(
        answer["status"], status,
        "error body without its status: {answer}"
    );
    let message = answer["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains(mentions),
        "the error does not mention {mentions:?}: {answer}"
    );
    message
}

impl Drop for Faultgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- faultgate log ---\n{}\n---", self.log());
        }
    }
}

/// Runs `faultgate ARGS...` to completion (killed after 30 s); returns its
/// exit code and everything it printed.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_faultgate"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting faultgate");
    let (status, text) = wait_bounded(child, Duration::from_secs(30));
    (status.code(), text)
}

/// Waits for `child` (its stdout and stderr piped), killing it after
/// `limit`; returns how it ended and everything it printed.
pub fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// Sends a request to the control API at `base` (e.g. `http://127.0.0.1:8474`),
/// however that faultgate was started; returns the status and the body as
/// JSON (`Value::Null` for an empty body, a string for a non-JSON one).
pub async fn api_request(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http
        .request(method, format!("{base}{path}"))
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.expect("control API request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}
