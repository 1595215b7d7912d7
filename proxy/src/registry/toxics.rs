//! Toxic operations: attach, change, remove and replace a proxy's faults,
//! each checked completely (the plugin's own `validate` included) before the
//! chain is swapped.

use std::sync::Arc;

use super::Registry;
use super::error::ControlError;
use super::listen::Giver;
use super::spec::ToxicSpec;
use crate::faults::{Chain, ClientFilter, Fault, FaultSpec, attributes_from_json};
use crate::listener::Mode;
use crate::plugin_host::{Direction, Plugin, PluginError, PluginKind};

impl Registry {
    /// Attaches a fault at the end of a proxy's chain.
    pub async fn add_toxic(
        &self,
        proxy: &str,
        spec: ToxicSpec,
    ) -> Result<Arc<Fault>, ControlError> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(proxy).ok_or(ControlError::ProxyNotFound)?;
        let mut chain = (*proxy.chain()).clone();
        let fault = Arc::new(self.fault(spec, &chain, proxy.mode(), Giver::Api).await?);
        chain.faults.push(fault.clone());
        proxy.set_chain(chain);
        Ok(fault)
    }

    /// Changes a fault's toxicity or attributes (merged into the old ones).
    /// The fault is replaced in place: connections drop its old instance.
    pub async fn update_toxic(
        &self,
        proxy_name: &str,
        toxic: &str,
        spec: ToxicSpec,
    ) -> Result<Arc<Fault>, ControlError> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(proxy_name).ok_or(ControlError::ProxyNotFound)?;
        let mut chain = (*proxy.chain()).clone();
        let position = chain
            .faults
            .iter()
            .position(|f| f.name == toxic)
            .ok_or_else(|| ControlError::toxic_not_found(proxy_name, toxic, &chain))?;
        let old = chain.faults.remove(position);
        let mut attributes = old.attributes.clone();
        attributes.extend(spec.attributes.unwrap_or_default());
        let merged = ToxicSpec {
            name: Some(old.name.clone()),
            kind: Some(old.plugin.name().to_owned()),
            stream: Some(old.stream),
            toxicity: spec.toxicity.or(Some(old.toxicity)),
            every: spec.every.or(old.every),
            clients: spec
                .clients
                .or_else(|| old.clients.as_ref().map(|c| c.entries().to_vec())),
            attributes: Some(attributes),
        };
        let fault = Arc::new(self.fault(merged, &chain, proxy.mode(), Giver::Api).await?);
        chain.faults.insert(position, fault.clone());
        proxy.set_chain(chain);
        Ok(fault)
    }

    pub async fn remove_toxic(&self, proxy_name: &str, toxic: &str) -> Result<(), ControlError> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(proxy_name).ok_or(ControlError::ProxyNotFound)?;
        let mut chain = (*proxy.chain()).clone();
        if chain.find(toxic).is_none() {
            return Err(ControlError::toxic_not_found(proxy_name, toxic, &chain));
        }
        chain.faults.retain(|f| f.name != toxic);
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
        let proxies = self.proxies.lock().await;
        let proxy = proxies.get(proxy).ok_or(ControlError::ProxyNotFound)?;
        let old = proxy.chain();
        let mut chain = Chain::default();
        for spec in specs {
            let checked = self
                .check_toxic(spec, &chain, proxy.mode(), Giver::Api)
                .await?;
            let unchanged = old.find(&checked.name).filter(|o| {
                o.plugin.name() == checked.plugin.name()
                    && o.stream == checked.stream
                    && o.toxicity == checked.toxicity
                    && o.every == checked.every
                    && o.clients == checked.clients
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

    /// Checks a toxic spec completely and makes the fault, with its plugin
    /// instance. `chain` is the chain it will join, for the name check;
    /// `mode` the proxy's; `giver` who gave it (a config file's is read
    /// strictly).
    pub(super) async fn fault(
        &self,
        spec: ToxicSpec,
        chain: &Chain,
        mode: Mode,
        giver: Giver,
    ) -> Result<Fault, ControlError> {
        let checked = self.check_toxic(spec, chain, mode, giver).await?;
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
        giver: Giver,
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
        let (mut toxicity, mut attributes) = (spec.toxicity, spec.attributes);
        // A config file is faultgate's own, and so are types Toxiproxy
        // does not have: no Toxiproxy client relies on how it reads them.
        let strict = self.strict_toxics
            || giver == Giver::ConfigFile
            || !super::lenient::is_toxiproxy_type(&kind);
        let warnings = match strict {
            true => Vec::new(),
            false => super::lenient::read_as_toxiproxy(&plugin, &mut toxicity, &mut attributes),
        };
        let stream = spec.stream.unwrap_or(Direction::Downstream);
        let given_toxicity = toxicity;
        let toxicity = toxicity.unwrap_or(1.0);
        if spec.every == Some(0) {
            return Err(ControlError::BadRequest(
                "every must be at least 1 (every Nth connection or request)".into(),
            ));
        }
        if spec.every.is_some() && given_toxicity.is_some_and(|t| t != 1.0) {
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
        let clients = client_filter(spec.clients)?;
        let attributes = attributes.unwrap_or_default();
        let contract_attributes =
            attributes_from_json(&attributes).map_err(ControlError::Attributes)?;
        plugin
            .validate(&contract_attributes)
            .await
            .map_err(|e| match e {
                PluginError::Refused { reason, .. } => ControlError::Attributes(reason),
                other => ControlError::Plugin(other),
            })?;
        check_declared(&plugin, &kind, stream, mode)?;
        for warning in &warnings {
            tracing::warn!(toxic = %name, "{warning} (faultgate serve --strict-toxics refuses it)");
        }
        Ok(FaultSpec {
            name,
            plugin,
            stream,
            toxicity,
            every: spec.every,
            clients,
            attributes,
            contract_attributes,
            warnings,
        })
    }
}

/// The stream and mode against what the plugin declares it acts on: a
/// fault attached where it does nothing is refused rather than kept as a
/// silent no-op.
fn check_declared(
    plugin: &Plugin,
    kind: &str,
    stream: Direction,
    mode: Mode,
) -> Result<(), ControlError> {
    let description = plugin.description();
    if !description.acts_on_stream(stream) {
        return Err(ControlError::UnsupportedStream {
            kind: kind.to_owned(),
            stream: stream.to_string(),
            supported: description.streams.clone(),
        });
    }
    if !description.acts_in_mode(&mode.to_string()) {
        return Err(ControlError::UnsupportedMode {
            kind: kind.to_owned(),
            mode,
            supported: description.modes.clone(),
        });
    }
    Ok(())
}

/// A toxic's `clients`, checked: every entry an address or a CIDR range.
/// An empty list filters nothing, so a `PATCH` with `[]` lifts the filter.
fn client_filter(entries: Option<Vec<String>>) -> Result<Option<ClientFilter>, ControlError> {
    match entries {
        None => Ok(None),
        Some(entries) if entries.is_empty() => Ok(None),
        Some(entries) => ClientFilter::parse(&entries)
            .map(Some)
            .map_err(ControlError::BadRequest),
    }
}
