//! A real git smart-HTTP server: `git http-backend` behind lighttpd, serving
//! bare repositories from a temporary directory on its own loopback port.
//!
//! Repositories are at `/git/NAME.git`; each starts with one commit, and
//! accepts pushes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;
use super::tls::TestCert;

pub struct GitHttpServer {
    child: Child,
    pub port: u16,
    scheme: &'static str,
    dir: tempfile::TempDir,
}

/// The git used by the tests, with no user or system config in the way.
pub fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "faultgate")
        .env("GIT_AUTHOR_EMAIL", "tests@faultgate.invalid")
        .env("GIT_COMMITTER_NAME", "faultgate")
        .env("GIT_COMMITTER_EMAIL", "tests@faultgate.invalid");
    command
}

/// Runs git and panics with its output when it fails.
pub fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git clone URL DEST` (DEST emptied first) that gives up when nothing
/// arrives for 3 s, so a hanging server makes it fail rather than hang.
/// `ca`: the only CA to trust for https.
pub async fn clone(url: String, dest: PathBuf, ca: Option<PathBuf>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(&dest);
        let mut command = git(Path::new("/"));
        if let Some(ca) = ca {
            // http.sslCAInfo given with -c is not honoured by every build
            // of git; the variable is.
            command.env("GIT_SSL_CAINFO", ca);
        }
        command
            .args(["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=3"])
            .args(["clone", "-q", &url])
            .arg(&dest)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn http_backend() -> PathBuf {
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    [PathBuf::from(exec_path), PathBuf::from("/usr/lib/git-core")]
        .into_iter()
        .map(|dir| dir.join("git-http-backend"))
        .find(|path| path.exists())
        .expect("git-http-backend not found")
}

impl GitHttpServer {
    /// Serves `repos` over plain HTTP.
    pub fn start(repos: &[&str]) -> Self {
        Self::start_with(repos, None, None)
    }

    /// Serves `repos` over HTTPS with `cert`.
    pub fn start_tls(repos: &[&str], cert: &TestCert) -> Self {
        Self::start_with(repos, Some(cert), None)
    }

    /// Serves `repos`, and WebSocket at `/ws` (lighttpd's mod_wstunnel),
    /// relayed as binary frames to the TCP server at `backend`.
    pub fn start_with_websocket(repos: &[&str], backend: std::net::SocketAddr) -> Self {
        Self::start_with(repos, None, Some(backend))
    }

    fn start_with(
        repos: &[&str],
        cert: Option<&TestCert>,
        websocket: Option<std::net::SocketAddr>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repos");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        for name in repos {
            let work = dir.path().join("seed").join(name);
            std::fs::create_dir_all(&work).unwrap();
            run_git(&work, &["init", "-q", "-b", "main"]);
            std::fs::write(work.join("README"), format!("repository {name}\n")).unwrap();
            run_git(&work, &["add", "README"]);
            run_git(&work, &["commit", "-q", "-m", "first"]);
            let bare = root.join(format!("{name}.git"));
            run_git(
                dir.path(),
                &[
                    "clone",
                    "-q",
                    "--bare",
                    work.to_str().unwrap(),
                    bare.to_str().unwrap(),
                ],
            );
            run_git(&bare, &["config", "http.receivepack", "true"]);
        }
        let port = free_port();
        let tls = match cert {
            None => String::new(),
            Some(cert) => format!(
                "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\n\
                 ssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
                cert.cert.display(),
                cert.key.display()
            ),
        };
        let websocket = match websocket {
            None => String::new(),
            Some(backend) => format!(
                "server.modules += (\"mod_wstunnel\")\n\
                 $HTTP[\"url\"] =~ \"^/ws\" {{\n\
                 wstunnel.server = ( \"\" => (( \"host\" => \"{}\", \"port\" => {} )) )\n\
                 wstunnel.frame-type = \"binary\"\n}}\n",
                backend.ip(),
                backend.port()
            ),
        };
        let config = format!(
            r#"server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.upload-dirs = ( "{dir}" )
server.stream-request-body = 2
server.stream-response-body = 2
server.modules = ( "mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog" )
accesslog.filename = "{dir}/access.log"
{tls}
{websocket}
alias.url = ( "/git" => "{backend}" )
$HTTP["url"] =~ "^/git" {{
    cgi.assign = ( "" => "" )
    setenv.add-environment = (
        "GIT_PROJECT_ROOT" => "{root}",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "GIT_CONFIG_NOSYSTEM" => "1",
        "GIT_CONFIG_GLOBAL" => "/dev/null"
    )
}}
"#,
            www = dir.path().join("www").display(),
            dir = dir.path().display(),
            backend = http_backend().display(),
            root = root.display(),
        );
        let config_path = dir.path().join("lighttpd.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new("lighttpd")
            .args(["-D", "-f"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting lighttpd: run the README's test command, which installs it");
        let server = Self {
            child,
            port,
            scheme: if cert.is_some() { "https" } else { "http" },
            dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "lighttpd did not listen on {port}; its log:\n{}",
                std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `127.0.0.1:PORT`, for a proxy's upstream.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The URL of repository `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("{}://127.0.0.1:{}/git/{name}.git", self.scheme, self.port)
    }

    /// The bare repository `name` on disk.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.dir.path().join("repos").join(format!("{name}.git"))
    }

    /// The request lines the server has logged so far ("GET /git/... HTTP/1.1"),
    /// in order. lighttpd writes its access log in batches, so a test
    /// polls it (`support::eventually`).
    pub fn requests_logged(&self) -> Vec<String> {
        self.access_log()
            .iter()
            .map(|(request, _)| request.clone())
            .collect()
    }

    /// The access log so far: each request line with the status answered.
    pub fn access_log(&self) -> Vec<(String, u16)> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                // host vhost user [time] "request" status bytes "referer" "agent"
                let mut fields = line.split('"');
                let request = fields.nth(1)?.to_owned();
                let status = fields.next()?.split_whitespace().next()?.parse().ok()?;
                Some((request, status))
            })
            .collect()
    }

    /// Somewhere to clone into, removed with the server.
    pub fn scratch(&self) -> PathBuf {
        let scratch = self.dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        scratch
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
