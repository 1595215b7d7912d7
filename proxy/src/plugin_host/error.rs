//! Why a plugin could not be loaded, or a call into it failed.

use std::path::PathBuf;

/// Why a plugin could not be loaded, or a call into it failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{source_name}: not a faultgate plugin component: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("{source_name}: {reason}")]
    BadDescription { source_name: String, reason: String },
    #[error("reading plugin {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("plugin {plugin:?}: {what} failed: {reason}")]
    Call {
        plugin: String,
        what: &'static str,
        reason: String,
    },
    #[error("plugin {plugin:?} refused the connection: {reason}")]
    Refused { plugin: String, reason: String },
    #[error("plugin {plugin:?} answered with a bad step: {reason}")]
    BadStep { plugin: String, reason: String },
    #[error("plugin {plugin:?}: its instance failed ({reason})")]
    Failed { plugin: String, reason: String },
    #[error(
        "plugin {plugin:?}: its instance failed ({reason}); the next one is made in {wait:.1?}"
    )]
    BackingOff {
        plugin: String,
        wait: std::time::Duration,
        reason: String,
    },
    #[error(
        "plugin {plugin:?}: no instance can be made: {limit} are in use (--max-plugin-instances); remove toxics, or raise the limit"
    )]
    InstanceLimit { plugin: String, limit: u32 },
}
