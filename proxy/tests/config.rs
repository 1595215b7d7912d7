//! `faultgate serve --config`: faultgate's TOML and Toxiproxy's JSON files,
//! and clear errors for bad ones.

mod support;

use serde_json::json;
use support::faultgate::{Faultgate, run_to_exit};
use support::free_port;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn toml_config_creates_proxies_with_their_faults() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write(
        &dir,
        "proxies.toml",
        &format!(
            r#"
[[proxies]]
name = "db"
listen = "127.0.0.1:{port}"
upstream = "127.0.0.1:5432"

[[proxies.toxics]]
type = "latency"
stream = "upstream"
attributes = {{ latency = 150 }}

[[proxies]]
name = "git"
mode = "http"
upstream = "https://127.0.0.1:3000"
upstream_tls = {{ insecure = true }}
enabled = false

[[proxies.toxics]]
type = "http_abort"
attributes = {{ status = 503, path_prefix = "/org/repo.git/" }}
"#
        ),
    );
    let fg = Faultgate::start(&["--config", &config]).await;
    let db = fg.expect("GET", "/proxies/db", None, 200).await;
    assert_eq!(db["listen"], format!("127.0.0.1:{port}"));
    assert_eq!(db["toxics"][0]["name"], "latency_upstream");
    assert_eq!(
        db["toxics"][0]["attributes"],
        json!({"latency": 150, "jitter": 0})
    );
    let git = fg.expect("GET", "/proxies/git", None, 200).await;
    assert_eq!(git["enabled"], false);
    assert_eq!(git["mode"], "http");
    assert_eq!(git["upstream_tls"], json!({"insecure": true}));
    assert_eq!(git["toxics"][0]["type"], "http_abort");
}

#[tokio::test]
async fn toxiproxy_json_config_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        "toxiproxy.json",
        r#"[
        {"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": true}
    ]"#,
    );
    let fg = Faultgate::start(&["--config", &config]).await;
    let redis = fg.expect("GET", "/proxies/redis", None, 200).await;
    assert_eq!(redis["upstream"], "127.0.0.1:6379");
    assert_eq!(redis["enabled"], true);
}

#[test]
fn bad_config_files_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.toml",
            "[[proxies]]\nname = \"a\"\nupstream = \"127.0.0.1:1\"\nlissten = \"127.0.0.1:0\"\n",
            "lissten",
        ),
        ("syntax.toml", "[[proxies]\nname = \"a\"\n", "line 1"),
        (
            "bad-toxic.toml",
            "[[proxies]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:1\"\n[[proxies.toxics]]\ntype = \"latency\"\nattributes = { latency = -3 }\n",
            "latency",
        ),
        (
            "unknown-toxic.toml",
            "[[proxies]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:1\"\n[[proxies.toxics]]\ntype = \"latensy\"\n",
            "latensy",
        ),
        ("missing.json", "[{\"name\": \"a\"}]", "upstream"),
        ("proxies.yaml", "proxies: []", "*.toml"),
    ];
    for (name, text, mentioned) in cases {
        let path = write(&dir, name, text);
        let (code, output) = run_to_exit(&["serve", "--api", "127.0.0.1:0", "--config", &path]);
        assert_eq!(code, Some(2), "{name} was accepted:\n{output}");
        assert!(
            output.contains(name),
            "the error for {name} does not name the file:\n{output}"
        );
        assert!(
            output.contains(mentioned),
            "the error for {name} does not mention {mentioned:?}:\n{output}"
        );
    }
}

#[test]
fn the_compose_sidecar_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/faultgate.toml");
    let proxies = faultgate::config::load(&path).expect("compose/faultgate.toml");
    let modes: Vec<_> = proxies
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap(),
                p.mode.unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("gitea".to_owned(), "http".to_owned()),
            ("postgres".to_owned(), "postgres".to_owned())
        ]
    );
}
