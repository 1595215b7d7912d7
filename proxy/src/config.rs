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
//! `faultgate serve` (`api`, `seed`, `plugins`, `plugin_memory_mib`,
//! `plugin_deadline_ms`, `max_plugin_instances`, `plugin_cache`,
//! `no_plugin_cache`, `log_format`, `shutdown_grace`); flags win over
//! environment variables, which win over the file.
//!
//! Unlike the API, a config file is strict: an unknown key is an error, so a
//! typo cannot silently leave a fault out.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::postgres::PostgresTls;
use crate::registry::{ProxySpec, ToxicSpec};
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
    serve: ServeSettings,
    #[serde(default)]
    proxies: Vec<FileProxy>,
}

/// `[serve]`: settings of `faultgate serve`. A flag or environment variable
/// given for the same setting wins over the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    pub api: Option<String>,
    pub seed: Option<u64>,
    pub plugins: Option<Vec<PathBuf>>,
    pub plugin_memory_mib: Option<u64>,
    pub plugin_deadline_ms: Option<u64>,
    pub max_plugin_instances: Option<u32>,
    pub plugin_cache: Option<PathBuf>,
    pub no_plugin_cache: Option<bool>,
    pub log_format: Option<String>,
    pub shutdown_grace: Option<String>,
}

/// The `[serve]` table of a TOML config file (a Toxiproxy JSON file has
/// none).
pub fn load_serve(path: &Path) -> Result<ServeSettings, ConfigError> {
    if path.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Ok(ServeSettings::default());
    }
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    toml::from_str::<TomlFile>(&text)
        .map(|file| file.serve)
        .map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
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
    #[serde(default)]
    mode: Option<String>,
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
    stream: Option<String>,
    #[serde(default)]
    toxicity: Option<f64>,
    #[serde(default)]
    every: Option<u64>,
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
                        attributes: Some(t.attributes),
                    })
                    .collect(),
            ),
        }
    }
}
