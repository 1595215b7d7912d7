//! What Toxiproxy takes and faultgate would refuse, read as Toxiproxy reads
//! it, with a warning: an attribute the toxic's plugin does not have (a
//! typo, or one of a newer Toxiproxy) is ignored, a toxicity outside 0 to 1
//! is read as the nearest bound, and a negative number for an attribute
//! whose values start at 0 is read as 0. Each warning is logged and shown
//! with the toxic (`warnings`), so nothing is taken silently. With
//! `faultgate serve --strict-toxics` none of this is done and the plugin's
//! own check refuses them (400), naming the attribute. A config file's
//! toxics are always read strictly: the file is faultgate's own, and a
//! mistake in it stops `serve` with the file and the attribute named. So
//! are the toxics of types Toxiproxy does not have (faultgate's own
//! plugins, users' plugins): no Toxiproxy client relies on how Toxiproxy
//! reads them.

use crate::plugin_host::Plugin;

/// The toxic types Toxiproxy has, whose attributes its clients send as
/// Toxiproxy reads them.
const TOXIPROXY_TYPES: [&str; 8] = [
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "packet_loss",
];

/// Whether toxics of this type are read as Toxiproxy reads them.
pub(super) fn is_toxiproxy_type(kind: &str) -> bool {
    TOXIPROXY_TYPES.contains(&kind)
}

/// Reads `toxicity` and `attributes` as Toxiproxy would, for a toxic of
/// `plugin`; returns what was read differently from what was given.
pub(super) fn read_as_toxiproxy(
    plugin: &Plugin,
    toxicity: &mut Option<f64>,
    attributes: &mut Option<serde_json::Map<String, serde_json::Value>>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(given) = *toxicity {
        let read = given.clamp(0.0, 1.0);
        if read != given {
            warnings.push(format!(
                "toxicity {given} is outside 0 to 1: read as {read}, as Toxiproxy does"
            ));
            *toxicity = Some(read);
        }
    }
    let Some(attributes) = attributes else {
        return warnings;
    };
    let described = &plugin.description().attributes;
    attributes.retain(|name, _| {
        let known = described.iter().any(|a| &a.name == name);
        if !known {
            let names: Vec<&str> = described.iter().map(|a| a.name.as_str()).collect();
            let takes = match names.is_empty() {
                true => "takes no attributes".to_owned(),
                false => format!("takes {}", names.join(", ")),
            };
            warnings.push(format!(
                "attribute {name:?} is not one of {:?}'s ({takes}): ignored, as Toxiproxy does",
                plugin.name()
            ));
        }
        known
    });
    for attribute in described {
        let starts_at_zero = attribute.value_type == "integer"
            && attribute
                .default
                .as_ref()
                .and_then(|d| d.as_i64())
                .is_none_or(|d| d >= 0);
        let Some(value) = attributes.get_mut(&attribute.name) else {
            continue;
        };
        if starts_at_zero && value.as_i64().is_some_and(|v| v < 0) {
            warnings.push(format!(
                "attribute {:?} is {value}, below 0: read as 0, as Toxiproxy does",
                attribute.name
            ));
            *value = 0.into();
        }
    }
    warnings
}
