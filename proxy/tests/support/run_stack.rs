//! What `faultgate run`'s tests run against: a real Postgres and a real git
//! smart-HTTP server, each behind a proxy of a real faultgate, and the
//! environment a scenario finds them in.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use super::faultgate::Faultgate;
use super::git_http::GitHttpServer;
use super::postgres::Postgres;

/// A faultgate with a postgres-mode proxy "pg" in front of Postgres and an
/// http-mode proxy "git" in front of a git server with the repositories
/// `alpha` and `beta`.
pub struct RunStack {
    _pg: Postgres,
    _git: GitHttpServer,
    pub fg: Faultgate,
    /// `FAULTGATE_API`, `PG` (a connection string through the proxy),
    /// `PG_ADDRESS` (the proxy's address) and `GIT` (its base URL), in
    /// that order.
    pub env: Vec<(String, String)>,
    /// Where the scenario files and reports go.
    pub dir: tempfile::TempDir,
}

impl RunStack {
    pub async fn start() -> Self {
        let pg = Postgres::start().await;
        let git = GitHttpServer::start(&["alpha", "beta"]);
        let fg = Faultgate::start(&[]).await;
        let pg_listen = fg
            .proxy_with(json!({ "name": "pg", "mode": "postgres", "upstream": format!("127.0.0.1:{}", pg.port) }))
            .await;
        let git_listen = fg
            .proxy_with(json!({ "name": "git", "mode": "http", "upstream": git.address() }))
            .await;
        let env = vec![
            ("FAULTGATE_API".to_owned(), fg.api.clone()),
            (
                "PG".to_owned(),
                format!(
                    "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5",
                    pg_listen.port()
                ),
            ),
            ("PG_ADDRESS".to_owned(), pg_listen.to_string()),
            ("GIT".to_owned(), format!("http://{git_listen}")),
        ];
        Self {
            _pg: pg,
            _git: git,
            fg,
            env,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `text` to `name` in the stack's directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The path of `name` in the stack's directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// `faultgate run ARGS` with the stack's environment, to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        run(&self.env, args).await
    }
}

/// `faultgate run ARGS` with `env`, its output captured, not started.
pub fn faultgate_run(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_faultgate"));
    command
        .arg("run")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `faultgate run ARGS` with `env`, to completion.
pub async fn run(env: &[(String, String)], args: &[&str]) -> Output {
    let mut command = faultgate_run(env, args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Its stdout and stderr, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `--json` results on its stdout.
pub fn results(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON on stdout ({e}): {}", text(out)))
}
