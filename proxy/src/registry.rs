//! The set of proxies and their faults, with Toxiproxy's semantics.
//!
//! This is what the control API and the config file drive. Every change is
//! validated completely before anything is touched, so a bad request changes
//! nothing. Changes are serialized by one lock that the data path never
//! takes: connections only ever see a proxy's chain through its watch channel.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::{Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use tokio::sync::Mutex;

use crate::faults::{Chain, Fault, FaultSpec, attributes_from_json};
use crate::listener::{Endpoints, ListenError, Mode, Proxy, SettingsError};
use crate::plugin_host::{Direction, PluginKind};
use crate::plugin_host::{Plugin, PluginError, PluginHost, PluginSource, sha256_hex};
use crate::postgres::PostgresTls;
use crate::tls::{ClientTls, ListenerTls};

/// Where a listen address is not given, proxies listen on loopback on a port
/// the system picks (read it back from the proxy).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// A proxy as the API (and config files) describe it. Every field is
/// optional here so that one shape serves create, update and populate; each
/// operation checks what it needs. Unknown fields are ignored, as Toxiproxy
/// does, so every client's extra fields are harmless.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxySpec {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
    /// `tcp` (the default), `http` or `postgres` (an extension).
    #[serde(default, deserialize_with = "deserialize_mode")]
    pub mode: Option<Mode>,
    /// Terminate TLS on the listener (an extension).
    pub tls: Option<ListenerTls>,
    /// How to check an `https://` or `tls://` upstream (an extension).
    pub upstream_tls: Option<ClientTls>,
    /// In `postgres` mode: `refuse` (answer 'N') or `passthrough` a client's
    /// request for TLS (an extension).
    pub postgres_tls: Option<PostgresTls>,
    /// Faults to attach when the proxy is created (an extension; Toxiproxy
    /// ignores this field on create, and so do updates here).
    pub toxics: Option<Vec<ToxicSpec>>,
}

/// A toxic as the API (and config files) describe it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToxicSpec {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `downstream` (the default) or `upstream`, in any case.
    pub stream: Option<Direction>,
    pub toxicity: Option<f64>,
    /// Apply to every Nth connection (or request) instead of by toxicity
    /// (an extension).
    pub every: Option<u64>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why a control operation was refused. Each maps to Toxiproxy's status code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("proxy not found")]
    ProxyNotFound,
    #[error("toxic not found")]
    ToxicNotFound,
    #[error("proxy already exists")]
    ProxyExists,
    #[error("toxic already exists")]
    ToxicExists,
    #[error("missing required field: {0}")]
    MissingField(String),
    #[error("invalid toxic type: {kind:?} is not a loaded plugin (loaded: {loaded})")]
    UnknownToxicType { kind: String, loaded: String },
    #[error("bad request body: {0}")]
    BadRequest(String),
    #[error("invalid toxic attributes: {0}")]
    Attributes(String),
    #[error("{0}")]
    Listen(#[from] ListenError),
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error(
        "proxy {proxy:?} is in \"{mode}\" mode; the mode of a proxy cannot change (delete it and create it again)"
    )]
    ModeChange { proxy: String, mode: Mode },
    #[error(
        "toxic type {kind:?} is a fault for proxies in {mode} mode (\"mode\": \"{mode}\"); this proxy is not"
    )]
    WrongMode { kind: String, mode: Mode },
    #[error("plugin not found")]
    PluginNotFound,
    #[error("{0}")]
    BadPlugin(String),
    #[error(
        "plugin {plugin:?} is in use by proxy {proxy:?} (toxic {toxic:?}); remove the toxic first"
    )]
    PluginInUse {
        plugin: String,
        proxy: String,
        toxic: String,
    },
    #[error(
        "the new version of plugin {plugin:?} rejects the attributes of toxic {toxic:?} on proxy {proxy:?}: {reason}"
    )]
    ReplacementRejects {
        plugin: String,
        proxy: String,
        toxic: String,
        reason: String,
    },
    /// A plugin could not check or make the fault: it trapped, ran out of
    /// time or memory, or no instance was free.
    #[error("{0}")]
    Plugin(PluginError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ControlError {
    /// The HTTP status Toxiproxy answers this with.
    pub fn status(&self) -> u16 {
        match self {
            Self::ProxyNotFound | Self::ToxicNotFound | Self::PluginNotFound => 404,
            Self::ProxyExists | Self::ToxicExists | Self::PluginInUse { .. } => 409,
            Self::Listen(ListenError::Bind { error, .. })
                if error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                409
            }
            Self::Plugin(PluginError::InstanceLimit { .. }) => 503,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

pub struct Registry {
    host: Arc<PluginHost>,
    seed: u64,
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
}

impl Registry {
    pub fn new(host: Arc<PluginHost>, seed: u64) -> Self {
        Self {
            host,
            seed,
            proxies: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.host
    }

    pub async fn list(&self) -> Vec<Arc<Proxy>> {
        self.proxies.lock().await.values().cloned().collect()
    }

    pub async fn get(&self, name: &str) -> Result<Arc<Proxy>, ControlError> {
        self.proxies
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or(ControlError::ProxyNotFound)
    }

    /// Creates a proxy and, unless `enabled` is false, starts it listening.
    pub async fn create(&self, spec: ProxySpec) -> Result<Arc<Proxy>, ControlError> {
        let mut proxies = self.proxies.lock().await;
        let (name, upstream) = required(&spec, "")?;
        if proxies.contains_key(&name) {
            return Err(ControlError::ProxyExists);
        }
        let proxy = self.build(&spec, name.clone(), upstream).await?;
        proxies.insert(name, proxy.clone());
        Ok(proxy)
    }

    /// Makes a proxy from a checked spec, attaches its faults and starts it.
    async fn build(
        &self,
        spec: &ProxySpec,
        name: String,
        upstream: String,
    ) -> Result<Arc<Proxy>, ControlError> {
        let mode = spec.mode.unwrap_or_default();
        let endpoints = Endpoints::prepare(
            mode,
            &upstream,
            spec.upstream_tls.clone(),
            spec.tls.clone(),
            spec.postgres_tls,
        )?;
        let mut chain = Chain::default();
        for toxic in spec.toxics.iter().flatten() {
            let fault = self.fault(toxic.clone(), &chain, mode).await?;
            chain.faults.push(Arc::new(fault));
        }
        let listen = spec.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
        let proxy = Proxy::new(name, mode, listen, endpoints, self.seed);
        proxy.set_chain(chain);
        if spec.enabled.unwrap_or(true) {
            proxy.start().await?;
        }
        Ok(proxy)
    }

    /// Changes a proxy's listen address, upstream, TLS settings or enabled
    /// state. Everything is checked before anything changes.
    pub async fn update(&self, name: &str, spec: ProxySpec) -> Result<Arc<Proxy>, ControlError> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies
            .get(name)
            .ok_or(ControlError::ProxyNotFound)?
            .clone();
        if spec.mode.is_some_and(|mode| mode != proxy.mode()) {
            return Err(ControlError::ModeChange {
                proxy: name.to_owned(),
                mode: proxy.mode(),
            });
        }
        let upstream = spec.upstream.filter(|u| !u.is_empty());
        let changes_endpoints = upstream.is_some()
            || spec.tls.is_some()
            || spec.upstream_tls.is_some()
            || spec.postgres_tls.is_some();
        let endpoints = if changes_endpoints {
            Some(Endpoints::prepare(
                proxy.mode(),
                &upstream.unwrap_or_else(|| proxy.upstream()),
                spec.upstream_tls.or_else(|| proxy.upstream_tls()),
                spec.tls.or_else(|| proxy.tls()),
                spec.postgres_tls.or_else(|| proxy.postgres_tls()),
            )?)
        } else {
            None
        };
        if let Some(listen) = spec.listen.filter(|l| !l.is_empty()) {
            proxy.set_listen(listen).await?;
        }
        if let Some(endpoints) = endpoints {
            proxy.set_endpoints(endpoints);
        }
        match spec.enabled {
            Some(true) => proxy.start().await?,
            Some(false) => proxy.stop().await,
            None => {}
        }
        Ok(proxy)
    }

    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        let proxy = self
            .proxies
            .lock()
            .await
            .remove(name)
            .ok_or(ControlError::ProxyNotFound)?;
        proxy.stop().await;
        Ok(())
    }

    /// Creates or replaces proxies from a list, Toxiproxy's `POST /populate`:
    /// a proxy whose listen and upstream are unchanged is left alone (with its
    /// faults and connections), so populating twice is harmless. Every entry
    /// is checked before any is applied. On a failure part-way the proxies
    /// done so far are returned with the error.
    pub async fn populate(&self, specs: Vec<ProxySpec>) -> (Vec<Arc<Proxy>>, Option<ControlError>) {
        for (i, spec) in specs.iter().enumerate() {
            if let Err(e) = required(spec, &format!(" at proxy {}", i + 1)) {
                return (Vec::new(), Some(e));
            }
        }
        let mut proxies = self.proxies.lock().await;
        let mut done = Vec::new();
        for spec in specs {
            let (name, upstream) = required(&spec, "").expect("checked above");
            if let Some(existing) = proxies.get(&name) {
                let same_listen = spec
                    .listen
                    .as_deref()
                    .is_none_or(|l| l == existing.listen());
                let same_endpoints = spec.mode.unwrap_or_default() == existing.mode()
                    && spec.tls == existing.tls()
                    && spec.upstream_tls == existing.upstream_tls()
                    && spec
                        .postgres_tls
                        .is_none_or(|t| Some(t) == existing.postgres_tls());
                if same_listen && existing.upstream() == upstream && same_endpoints {
                    done.push(existing.clone());
                    continue;
                }
                existing.stop().await;
                proxies.remove(&name);
            }
            match self.build(&spec, name.clone(), upstream).await {
                Ok(proxy) => {
                    proxies.insert(name, proxy.clone());
                    done.push(proxy);
                }
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Toxiproxy's `POST /reset`: every proxy enabled, every fault removed.
    pub async fn reset(&self) -> Result<(), ControlError> {
        for proxy in self.proxies.lock().await.values() {
            proxy.start().await?;
            proxy.set_chain(Chain::default());
        }
        Ok(())
    }

    /// Attaches a fault at the end of a proxy's chain.
    pub async fn add_toxic(
        &self,
        proxy: &str,
        spec: ToxicSpec,
    ) -> Result<Arc<Fault>, ControlError> {
        let proxy = self.get(proxy).await?;
        let _serialized = self.proxies.lock().await;
        let mut chain = (*proxy.chain()).clone();
        let fault = Arc::new(self.fault(spec, &chain, proxy.mode()).await?);
        chain.faults.push(fault.clone());
        proxy.set_chain(chain);
        Ok(fault)
    }

    /// Changes a fault's toxicity or attributes (merged into the old ones).
    /// The fault is replaced in place: connections drop its old instance.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        spec: ToxicSpec,
    ) -> Result<Arc<Fault>, ControlError> {
        let proxy = self.get(proxy).await?;
        let _serialized = self.proxies.lock().await;
        let mut chain = (*proxy.chain()).clone();
        let position = chain
            .faults
            .iter()
            .position(|f| f.name == toxic)
            .ok_or(ControlError::ToxicNotFound)?;
        let old = chain.faults.remove(position);
        let mut attributes = old.attributes.clone();
        attributes.extend(spec.attributes.unwrap_or_default());
        let merged = ToxicSpec {
            name: Some(old.name.clone()),
            kind: Some(old.plugin.name().to_owned()),
            stream: Some(old.stream),
            toxicity: spec.toxicity.or(Some(old.toxicity)),
            every: spec.every.or(old.every),
            attributes: Some(attributes),
        };
        let fault = Arc::new(self.fault(merged, &chain, proxy.mode()).await?);
        chain.faults.insert(position, fault.clone());
        proxy.set_chain(chain);
        Ok(fault)
    }

    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ControlError> {
        let proxy = self.get(proxy).await?;
        let _serialized = self.proxies.lock().await;
        let mut chain = (*proxy.chain()).clone();
        let before = chain.faults.len();
        chain.faults.retain(|f| f.name != toxic);
        if chain.faults.len() == before {
            return Err(ControlError::ToxicNotFound);
        }
        proxy.set_chain(chain);
        Ok(())
    }

    /// Replaces a proxy's whole chain in one step (`PUT .../toxics`): open
    /// connections go from the old chain to the new one between two chunks,
    /// never seeing a mix. Faults that are unchanged (same name, type, stream,
    /// toxicity and attributes) keep their per-connection state.
    pub async fn replace_toxics(
        &self,
        proxy: &str,
        specs: Vec<ToxicSpec>,
    ) -> Result<Arc<Chain>, ControlError> {
        let proxy = self.get(proxy).await?;
        let _serialized = self.proxies.lock().await;
        let old = proxy.chain();
        let mut chain = Chain::default();
        for spec in specs {
            let checked = self.check_toxic(spec, &chain, proxy.mode()).await?;
            let unchanged = old.find(&checked.name).filter(|o| {
                o.plugin.name() == checked.plugin.name()
                    && o.stream == checked.stream
                    && o.toxicity == checked.toxicity
                    && o.every == checked.every
                    && o.attributes == checked.attributes
            });
            let fault = match unchanged {
                Some(same) => same.clone(),
                None => Arc::new(self.make_fault(checked).await?),
            };
            chain.faults.push(fault);
        }
        proxy.set_chain(chain);
        Ok(proxy.chain())
    }

    /// Loads a plugin sent as component bytes (`POST /plugins`). A plugin of
    /// the same name is replaced: faults using it are rebound to the new
    /// version, which new connections get, while connections already open
    /// keep the old one until they close. If the new version rejects the
    /// attributes of a fault in use, nothing changes.
    pub async fn upload_plugin(&self, bytes: &[u8]) -> Result<Arc<Plugin>, ControlError> {
        let sha256 = sha256_hex(bytes);
        let plugin = self
            .host
            .compile("uploaded plugin", bytes, PluginSource::Upload { sha256 })
            .await
            .map_err(|e| ControlError::BadPlugin(e.to_string()))?;
        let proxies = self.proxies.lock().await;
        let mut rebound = Vec::new();
        for proxy in proxies.values() {
            let mut chain = (*proxy.chain()).clone();
            let mut uses = false;
            for fault in chain
                .faults
                .iter_mut()
                .filter(|f| f.plugin.name() == plugin.name())
            {
                plugin
                    .validate(&fault.contract_attributes)
                    .await
                    .map_err(|e| ControlError::ReplacementRejects {
                        plugin: plugin.name().to_owned(),
                        proxy: proxy.name().to_owned(),
                        toxic: fault.name.clone(),
                        reason: match e {
                            PluginError::Refused { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    })?;
                *fault = Arc::new(fault.rebind(plugin.clone(), self.seed).await.map_err(|e| {
                    ControlError::ReplacementRejects {
                        plugin: plugin.name().to_owned(),
                        proxy: proxy.name().to_owned(),
                        toxic: fault.name.clone(),
                        reason: e.to_string(),
                    }
                })?);
                uses = true;
            }
            if uses {
                rebound.push((proxy.clone(), chain));
            }
        }
        if let Some(old) = self.host.install(plugin.clone()) {
            tracing::info!(plugin = plugin.name(), previous = %old.description().version, version = %plugin.description().version, "plugin replaced");
        } else {
            tracing::info!(plugin = plugin.name(), "plugin uploaded");
        }
        for (proxy, chain) in rebound {
            proxy.set_chain(chain);
        }
        Ok(plugin)
    }

    /// Unloads a plugin, unless a fault uses it.
    pub async fn delete_plugin(&self, name: &str) -> Result<(), ControlError> {
        let proxies = self.proxies.lock().await;
        self.host.get(name).ok_or(ControlError::PluginNotFound)?;
        for proxy in proxies.values() {
            if let Some(fault) = proxy
                .chain()
                .faults
                .iter()
                .find(|f| f.plugin.name() == name)
            {
                return Err(ControlError::PluginInUse {
                    plugin: name.to_owned(),
                    proxy: proxy.name().to_owned(),
                    toxic: fault.name.clone(),
                });
            }
        }
        self.host.remove(name);
        tracing::info!(plugin = name, "plugin removed");
        Ok(())
    }

    /// Checks a toxic spec completely and makes the fault, with its plugin
    /// instance. `chain` is the chain it will join, for the name check;
    /// `mode` the proxy's.
    async fn fault(
        &self,
        spec: ToxicSpec,
        chain: &Chain,
        mode: Mode,
    ) -> Result<Fault, ControlError> {
        let checked = self.check_toxic(spec, chain, mode).await?;
        self.make_fault(checked).await
    }

    /// Makes a checked fault and its plugin instance: the guest's own
    /// `fault.create` may still refuse the attributes.
    async fn make_fault(&self, spec: FaultSpec) -> Result<Fault, ControlError> {
        Fault::new(spec, self.seed).await.map_err(|e| match e {
            PluginError::Refused { reason, .. } => ControlError::Attributes(reason),
            other => ControlError::Plugin(other),
        })
    }

    /// Checks a toxic spec completely, the plugin's `validate` included.
    async fn check_toxic(
        &self,
        spec: ToxicSpec,
        chain: &Chain,
        mode: Mode,
    ) -> Result<FaultSpec, ControlError> {
        let kind = spec
            .kind
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ControlError::MissingField("type".into()))?;
        let plugin = self
            .host
            .get(&kind)
            .ok_or_else(|| ControlError::UnknownToxicType {
                kind: kind.clone(),
                loaded: self.host.names().join(", "),
            })?;
        match (plugin.kind(), mode) {
            (PluginKind::Http, Mode::Http) | (PluginKind::Postgres, Mode::Postgres) => {}
            (PluginKind::Tcp, _) => {}
            (PluginKind::Http, _) => {
                return Err(ControlError::WrongMode {
                    kind,
                    mode: Mode::Http,
                });
            }
            (PluginKind::Postgres, _) => {
                return Err(ControlError::WrongMode {
                    kind,
                    mode: Mode::Postgres,
                });
            }
        }
        let stream = spec.stream.unwrap_or(Direction::Downstream);
        let toxicity = spec.toxicity.unwrap_or(1.0);
        if spec.every == Some(0) {
            return Err(ControlError::BadRequest(
                "every must be at least 1 (every Nth connection or request)".into(),
            ));
        }
        if spec.every.is_some() && spec.toxicity.is_some_and(|t| t != 1.0) {
            return Err(ControlError::BadRequest(
                "give toxicity or every, not both".into(),
            ));
        }
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(ControlError::BadRequest(format!(
                "toxicity must be between 0 and 1, got {toxicity}"
            )));
        }
        let name = spec
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{kind}_{stream}"));
        if chain.find(&name).is_some() {
            return Err(ControlError::ToxicExists);
        }
        let attributes = spec.attributes.unwrap_or_default();
        let contract_attributes =
            attributes_from_json(&attributes).map_err(ControlError::Attributes)?;
        plugin
            .validate(&contract_attributes)
            .await
            .map_err(|e| match e {
                PluginError::Refused { reason, .. } => ControlError::Attributes(reason),
                other => ControlError::Plugin(other),
            })?;
        Ok(FaultSpec {
            name,
            plugin,
            stream,
            toxicity,
            every: spec.every,
            attributes,
            contract_attributes,
        })
    }
}

/// A proxy's `mode`, read by [`Mode`]'s own serde parser, in any case; an
/// empty one is not given (clients that send every field send ""). The
/// message names the field, which serde's alone does not.
pub fn deserialize_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)?.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    Mode::deserialize(text.to_ascii_lowercase().into_deserializer())
        .map(Some)
        .map_err(|e: serde::de::value::Error| D::Error::custom(format!("mode {text:?}: {e}")))
}

/// The name and upstream a create needs; `at` says where, for populate.
fn required(spec: &ProxySpec, at: &str) -> Result<(String, String), ControlError> {
    let name = spec.name.clone().filter(|n| !n.is_empty());
    let upstream = spec.upstream.clone().filter(|u| !u.is_empty());
    match (name, upstream) {
        (None, _) => Err(ControlError::MissingField(format!("name{at}"))),
        (_, None) => Err(ControlError::MissingField(format!("upstream{at}"))),
        (Some(name), Some(upstream)) => Ok((name, upstream)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> Result<ProxySpec, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn a_mode_is_read_by_serde_in_any_case_and_named_when_wrong() {
        assert_eq!(spec(r#"{"mode": "HTTP"}"#).unwrap().mode, Some(Mode::Http));
        assert_eq!(
            spec(r#"{"mode": "postgres"}"#).unwrap().mode,
            Some(Mode::Postgres)
        );
        assert_eq!(spec(r#"{"mode": ""}"#).unwrap().mode, None);
        assert_eq!(spec(r#"{"mode": null}"#).unwrap().mode, None);
        assert_eq!(
            spec(r#"{"mode": "udp"}"#).unwrap_err(),
            "mode \"udp\": unknown variant `udp`, expected one of `tcp`, `http`, `postgres` at line 1 column 15"
        );
        assert_eq!(Mode::Postgres.to_string(), "postgres");
    }

    #[test]
    fn unknown_fields_in_api_bodies_are_ignored_as_toxiproxy_does() {
        let proxy = spec(r#"{"name": "a", "mode": "tcp", "rand": 1}"#).unwrap();
        assert_eq!(proxy.mode, Some(Mode::Tcp));
        let toxic: ToxicSpec =
            serde_json::from_str(r#"{"type": "latency", "stream": "UPSTREAM", "x": []}"#).unwrap();
        assert_eq!(toxic.stream, Some(Direction::Upstream));
    }
}
