//! Faults: a plugin with attributes, attached to a proxy and a stream
//! direction. Toxiproxy calls these "toxics"; the control API keeps that word.

mod clients;
mod holding;

pub use clients::ClientFilter;
pub use holding::{Held, HoldGuard, Holding};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::plugin_host::{Attributes, Direction, InstanceSlot, Plugin, PluginError, Value};

/// One attached fault. Immutable but for its instance: updating a fault
/// makes a new one with a new `id` (and a new instance, so fresh fault
/// state), which is how open connections notice it was replaced.
pub struct Fault {
    pub id: u64,
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub stream: Direction,
    /// Probability that the fault applies to a given connection (or request).
    pub toxicity: f64,
    /// Apply to every Nth connection (or request) instead, counted per fault.
    pub every: Option<u64>,
    /// Only connections from these clients (an extension); none: every client.
    pub clients: Option<ClientFilter>,
    /// As given in the API, for reading back.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// As handed to the plugin.
    pub contract_attributes: Attributes,
    /// What was read differently from what was given, as Toxiproxy reads it.
    pub warnings: Vec<String>,
    /// The plugin's one instance for this fault, shared by its connections.
    pub instance: InstanceSlot,
    /// Connections (or requests) rolled so far, for `every`.
    rolled: AtomicU64,
    /// What the fault holds now, for `/metrics`.
    pub holding: Arc<Holding>,
}

/// What a fault is made of, checked.
pub struct FaultSpec {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub stream: Direction,
    pub toxicity: f64,
    pub every: Option<u64>,
    pub clients: Option<ClientFilter>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub contract_attributes: Attributes,
    pub warnings: Vec<String>,
}

impl Fault {
    /// Makes the fault and its plugin instance (the guest's `fault.create`
    /// runs here: its error refuses the fault). `seed` is `--seed`.
    pub async fn new(spec: FaultSpec, seed: u64) -> Result<Self, PluginError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self::with_id(NEXT_ID.fetch_add(1, Ordering::Relaxed), spec, seed).await
    }

    async fn with_id(id: u64, spec: FaultSpec, seed: u64) -> Result<Self, PluginError> {
        let instance = InstanceSlot::new(
            &spec.plugin,
            &spec.name,
            &spec.contract_attributes,
            seed ^ name_hash(&spec.name),
        )
        .await?;
        Ok(Self {
            id,
            name: spec.name,
            plugin: spec.plugin,
            stream: spec.stream,
            toxicity: spec.toxicity,
            every: spec.every,
            clients: spec.clients,
            attributes: spec.attributes,
            contract_attributes: spec.contract_attributes,
            warnings: spec.warnings,
            instance,
            rolled: AtomicU64::new(0),
            holding: Arc::default(),
        })
    }

    /// The same fault (same id, so open connections keep their resources in
    /// the old plugin's instance) made with a replacement plugin, for new
    /// connections.
    pub async fn rebind(&self, plugin: Arc<Plugin>, seed: u64) -> Result<Self, PluginError> {
        let spec = FaultSpec {
            name: self.name.clone(),
            plugin,
            stream: self.stream,
            toxicity: self.toxicity,
            every: self.every,
            clients: self.clients.clone(),
            attributes: self.attributes.clone(),
            contract_attributes: self.contract_attributes.clone(),
            warnings: self.warnings.clone(),
        };
        let mut rebound = Self::with_id(self.id, spec, seed).await?;
        rebound.holding = self.holding.clone();
        Ok(rebound)
    }

    /// Whether the fault applies to one connection direction (`salt` 1 or
    /// 2) or one HTTP request (`salt` its number on the connection), and if
    /// so the seed of that connection's random stream. Both come from
    /// `--seed`, the connection id, `salt` and the fault's name, so a run
    /// with the same seed replays exactly; with `every`, from the count of
    /// connections (or requests) the fault has seen.
    pub fn roll(&self, seed: u64, conn_id: u64, salt: u64) -> Option<u64> {
        let mixed = seed
            ^ conn_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ name_hash(&self.name).rotate_left(17)
            ^ salt.wrapping_mul(0xd6e8_feb8_6659_fd93);
        let mut rng = ChaCha8Rng::seed_from_u64(mixed);
        let roll = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let applies = match self.every {
            Some(every) => (self.rolled.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every),
            None => roll < self.toxicity,
        };
        applies.then(|| rng.next_u64())
    }

    /// Whether the fault may apply to a connection from `client`: it names
    /// no clients, or this is one of them. Asked before [`Fault::roll`], so
    /// `every` counts only the connections of the clients named.
    pub fn admits(&self, client: IpAddr) -> bool {
        self.clients.as_ref().is_none_or(|c| c.admits(client))
    }

    /// The Toxiproxy JSON shape of this fault.
    pub fn view(&self) -> ToxicView {
        let failures = self.instance.failures();
        ToxicView {
            name: self.name.clone(),
            kind: self.plugin.name().to_owned(),
            stream: self.stream,
            toxicity: self.toxicity,
            attributes: self.shown_attributes(),
            every: self.every,
            clients: self.clients.as_ref().map(|c| c.entries().to_vec()),
            plugin_failures: failures.count(),
            plugin_last_failure: failures.last(),
            warnings: self.warnings.clone(),
        }
    }
}

impl Fault {
    /// The attributes as given, and every other one the plugin describes
    /// with a default at that default: Toxiproxy shows each attribute of a
    /// toxic, given or not.
    fn shown_attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut shown = self.attributes.clone();
        for attribute in &self.plugin.description().attributes {
            if let Some(default) = &attribute.default {
                shown
                    .entry(attribute.name.clone())
                    .or_insert_with(|| default.clone());
            }
        }
        shown
    }
}

fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A toxic as the control API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ToxicView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub stream: Direction,
    pub toxicity: f64,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Extension: applies to every Nth connection or request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Extension: applies only to connections from these clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<String>>,
    /// Extension: instances of this fault's plugin that failed (trapped, ran
    /// out of time or memory), and why the last one did.
    #[serde(skip_serializing_if = "is_zero")]
    pub plugin_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_last_failure: Option<String>,
    /// Extension: what was read differently from what was given (an
    /// attribute ignored, a value read as the nearest one allowed), as
    /// Toxiproxy reads it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The faults of one proxy, in the order data passes through them.
#[derive(Default, Clone)]
pub struct Chain {
    pub faults: Vec<Arc<Fault>>,
}

impl Chain {
    pub fn find(&self, name: &str) -> Option<&Arc<Fault>> {
        self.faults.iter().find(|f| f.name == name)
    }

    /// Whether any fault uses the plugin called `plugin`.
    pub fn uses(&self, plugin: &str) -> bool {
        self.faults.iter().any(|f| f.plugin.name() == plugin)
    }
}

impl Direction {
    /// Both directions, in the order the API lists them.
    pub const ALL: [Direction; 2] = [Direction::Upstream, Direction::Downstream];

    /// The name the API uses: "upstream" or "downstream".
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Direction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A toxic's `stream`, in any case: Toxiproxy takes "UpStream" too.
impl<'de> Deserialize<'de> for Direction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Direction::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(&text))
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "stream was invalid, can be either upstream or downstream (got {text:?})"
                ))
            })
    }
}

/// Converts the API's JSON `attributes` object into the contract's shape.
/// The error names the attribute.
pub fn attributes_from_json(
    json: &serde_json::Map<String, serde_json::Value>,
) -> Result<Attributes, String> {
    json.iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::Bool(b) => Value::Boolean(*b),
                serde_json::Value::String(s) => Value::Text(s.clone()),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                other => {
                    return Err(format!(
                        "attribute {name:?}: expected a number, boolean or string, got {other}"
                    ));
                }
            };
            Ok((name.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_read_in_any_case_and_written_in_lower_case() {
        let read = |text: &str| serde_json::from_value::<Direction>(serde_json::json!(text));
        assert_eq!(read("UpStream").unwrap(), Direction::Upstream);
        assert_eq!(read("downstream").unwrap(), Direction::Downstream);
        assert_eq!(
            serde_json::to_value(Direction::Upstream).unwrap(),
            serde_json::json!("upstream")
        );
        assert_eq!(
            read("sideways").unwrap_err().to_string(),
            "stream was invalid, can be either upstream or downstream (got \"sideways\")"
        );
    }
}
