//! The config file: the proxies (and their first faults) `faultgate serve`
//! creates at start-up.
//!
//! Two formats, chosen by extension:
//!
//! * `.toml`, faultgate's own:
//!
//!   ```toml
//!   [[proxies]]
//!   name = "postgres"
//!   listen = "127.0.0.1:15432"
//!   upstream = "127.0.0.1:5432"
//!
//!   # mode = "http"               # optional: request-aware faults
//!   # tls = { cert = "server.pem", key = "server.key" }   # terminate TLS
//!   # upstream_tls = { ca = "ca.pem" }  # with upstream = "https://host:port"
//!
//!   [[proxies.toxics]]            # optional: faults attached from the start
//!   type = "latency"
//!   stream = "downstream"
//!   attributes = { latency = 100 }
//!   ```
//!
//! * `.json`, Toxiproxy's `-config` file: a list of
//!   `{"name", "listen", "upstream", "enabled"}` objects (toxics allowed too).
//!
//! A TOML file may also hold a `[serve]` table with the settings of
//! `faultgate serve`, under the names `--print-config` shows; flags win
//! over environment variables, which win over the file. This module only
//! reads the table: the settings themselves, and the checking of their
//! values, are `faultgate serve`'s.
//!
//! Unlike the API, a config file is strict: an unknown key is an error, so a
//! typo cannot silently leave a fault out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::listener::Mode;
use crate::plugin_host::Direction;
use crate::postgres::PostgresTls;
use crate::registry::{ProxySpec, ToxicSpec, deserialize_mode};
use crate::tls::{ClientTls, ListenerTls};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown format; name it *.toml (faultgate) or *.json (Toxiproxy)")]
    UnknownFormat { path: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    serve: BTreeMap<String, toml::Spanned<toml::Value>>,
    #[serde(default)]
    proxies: Vec<FileProxy>,
}

/// One value of the `[serve]` table, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeValue {
    pub value: toml::Value,
    /// 1-based line of the value in the file, for messages.
    pub line: usize,
}

/// The `[serve]` table of a TOML config file, by key (a Toxiproxy JSON file
/// has none). Which keys and values are right is for `faultgate serve` to
/// say.
pub fn load_serve(path: &Path) -> Result<BTreeMap<String, ServeValue>, ConfigError> {
    if path.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let file = toml::from_str::<TomlFile>(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(file
        .serve
        .into_iter()
        .map(|(key, spanned)| {
            let at = spanned.span().start.min(text.len());
            let line = text[..at].matches('\n').count() + 1;
            let value = spanned.into_inner();
            (key, ServeValue { value, line })
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProxy {
    name: String,
    #[serde(default)]
    listen: Option<String>,
    upstream: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "deserialize_mode")]
    mode: Option<Mode>,
    #[serde(default)]
    tls: Option<ListenerTls>,
    #[serde(default)]
    upstream_tls: Option<ClientTls>,
    #[serde(default)]
    postgres_tls: Option<PostgresTls>,
    #[serde(default)]
    toxics: Vec<FileToxic>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToxic {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    stream: Option<Direction>,
    #[serde(default)]
    toxicity: Option<f64>,
    #[serde(default)]
    every: Option<u64>,
    #[serde(default)]
    clients: Option<Vec<String>>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// Reads a config file into the proxies it describes.
pub fn load(path: &Path) -> Result<Vec<ProxySpec>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let parse_error = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    let proxies = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            toml::from_str::<TomlFile>(&text)
                .map_err(|e| parse_error(e.to_string()))?
                .proxies
        }
        Some("json") => {
            serde_json::from_str::<Vec<FileProxy>>(&text).map_err(|e| parse_error(e.to_string()))?
        }
        _ => {
            return Err(ConfigError::UnknownFormat {
                path: path.to_owned(),
            });
        }
    };
    Ok(proxies.into_iter().map(FileProxy::into_spec).collect())
}

impl FileProxy {
    fn into_spec(self) -> ProxySpec {
        ProxySpec {
            name: Some(self.name),
            listen: self.listen,
            upstream: Some(self.upstream),
            enabled: self.enabled,
            mode: self.mode,
            tls: self.tls,
            upstream_tls: self.upstream_tls,
            postgres_tls: self.postgres_tls,
            toxics: Some(
                self.toxics
                    .into_iter()
                    .map(|t| ToxicSpec {
                        name: t.name,
                        kind: Some(t.kind),
                        stream: t.stream,
                        toxicity: t.toxicity,
                        every: t.every,
                        clients: t.clients,
                        attributes: Some(t.attributes),
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const PROXY: &str = "[[proxies]]\nname = \"a\"\nupstream = \"127.0.0.1:1\"\n";

    #[test]
    fn modes_and_streams_are_read_by_serde_and_named_when_wrong() {
        let (_dir, path) = file(
            "ok.toml",
            &format!(
                "{PROXY}mode = \"HTTP\"\n[[proxies.toxics]]\ntype = \"latency\"\nstream = \"UpStream\"\n"
            ),
        );
        let specs = load(&path).unwrap();
        assert_eq!(specs[0].mode, Some(Mode::Http));
        let toxics = specs[0].toxics.as_ref().unwrap();
        assert_eq!(toxics[0].stream, Some(Direction::Upstream));

        let (_dir, path) = file("mode.toml", &format!("{PROXY}mode = \"gopher\"\n"));
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains("mode.toml")
                && error.contains("line 4")
                && error.contains(
                    "mode \"gopher\": unknown variant `gopher`, expected one of `tcp`, `http`, `postgres`"
                ),
            "{error}"
        );
        let (_dir, path) = file(
            "stream.json",
            r#"[{"name": "a", "upstream": "127.0.0.1:1", "toxics": [{"type": "latency", "stream": "sideways"}]}]"#,
        );
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains("stream.json")
                && error.contains("stream was invalid, can be either upstream or downstream"),
            "{error}"
        );
    }

    #[test]
    fn the_serve_table_is_read_with_the_line_of_each_value() {
        let (_dir, path) = file(
            "serve.toml",
            "[serve]\napi = \"127.0.0.1:1\"\n\nseed = 3\n\n[[proxies]]\nname = \"a\"\nupstream = \"b\"\n",
        );
        let table = load_serve(&path).unwrap();
        assert_eq!(
            table["api"],
            ServeValue {
                value: toml::Value::String("127.0.0.1:1".into()),
                line: 2
            }
        );
        assert_eq!(table["seed"].line, 4);
        assert_eq!(table.len(), 2);
        let (_dir, path) = file("toxiproxy.json", "[]");
        assert!(load_serve(&path).unwrap().is_empty());
    }
}
