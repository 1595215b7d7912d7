//! Loading a component as a plugin: catching the usual wrong files, linking
//! it against the host, and asking it to describe itself.

use std::sync::Arc;

use wasmtime::component::{Component, Linker};

use super::declarations::MAX_MEMORY_MIB;
use super::description::{PluginSource, convert_description};
use super::engine::HostShared;
use super::error::PluginError;
use super::plugin::{Plugin, check_instance};
use super::state::InstanceState;
use super::worlds::PluginPre;

/// The time a plugin has to describe itself (its instantiation included):
/// a Python or JavaScript runtime sets itself up first, which on a busy
/// machine can pass the default call deadline.
const DESCRIBE_DEADLINE_MS: u64 = 5_000;

/// Links `component` as the kind of plugin it exports and asks it to
/// describe itself: a plugin, not yet available by name.
pub(super) async fn link(
    host: &Arc<HostShared>,
    linker: &Linker<InstanceState>,
    source_name: &str,
    component: Component,
    source: PluginSource,
) -> Result<Arc<Plugin>, PluginError> {
    let invalid = |e: wasmtime::Error| PluginError::Invalid {
        source_name: source_name.to_owned(),
        reason: format!("{e:#}"),
    };
    let contract = |e: wasmtime::Error| PluginError::Invalid {
        source_name: source_name.to_owned(),
        reason: format!(
            "{e:#} (a plugin imports only faultgate:plugin/host and WASI, and exports \
             faultgate:plugin/meta and one of faultgate:plugin/tcp, /http or /postgres: \
             see wit/faultgate.wit)"
        ),
    };
    let instance_pre = linker.instantiate_pre(&component).map_err(contract)?;
    // Which kind the plugin means to be, by what it exports; the bindings
    // then check the rest and say what is missing.
    let exports = |interface: &str| {
        component
            .component_type()
            .exports(&host.engine)
            .any(|(name, _)| name.starts_with(&format!("faultgate:plugin/{interface}@")))
    };
    let pre = PluginPre::new(instance_pre, exports).map_err(contract)?;
    let name: std::sync::Arc<str> = source_name.into();
    // Until it has described itself a plugin has declared nothing; loading
    // is off the traffic path, so describing may use what any plugin may
    // declare.
    let describing = host
        .limits
        .raised_to(Some(MAX_MEMORY_MIB), Some(DESCRIBE_DEADLINE_MS));
    let raw = check_instance(
        host,
        &pre,
        &name,
        describing,
        "describe",
        async |store, bindings| bindings.describe(store).await,
    )
    .await
    .map_err(invalid)?;
    let description =
        convert_description(raw, pre.kind()).map_err(|reason| PluginError::BadDescription {
            source_name: source_name.to_owned(),
            reason,
        })?;
    let limits = host
        .limits
        .raised_to(description.memory_mib, description.deadline_ms);
    Ok(Arc::new(Plugin {
        name: description.name.as_str().into(),
        description,
        source,
        pre,
        host: host.clone(),
        limits,
    }))
}

/// Catches the usual wrong files before wasmtime's parser does, with advice.
/// Text (the WebAssembly text format) is let through for the parser.
pub(super) fn check_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    let text = std::str::from_utf8(bytes).is_ok_and(|t| t.trim_start().starts_with(['(', ';']));
    if text {
        return Ok(());
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err("this is not a WebAssembly file (no \\0asm header)".into());
    }
    if &bytes[4..8] == CORE_MODULE {
        return Err(
            "this is a core WebAssembly module, not a component; build the plugin \
                    with `cargo build --target wasm32-wasip2`, which makes a component"
                .into(),
        );
    }
    Ok(())
}
