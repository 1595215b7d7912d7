//! The settings of `faultgate serve`, each written once, in the list at the
//! end of this file: its type, parser, flag, environment variable, default
//! and help; its `[serve]` key is its name. From that list come the flags
//! (and `--help`), the precedence (a flag, else its environment variable,
//! else the config file's `[serve]` table, else the default), the messages
//! for bad values (naming the setting and where the value came from) and
//! `--print-config`. Adding a setting is adding an entry there.
//!
//! The value parsers are in [`parsers`], the flags in [`flags`], and the
//! precedence, its messages and `--print-config` in [`precedence`].

mod flags;
mod parsers;
mod precedence;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Arg;

use crate::cli::{LogFormat, default_cache_dir};
use flags::arg;
pub use flags::given;
use parsers::{Address, Choice, FilePath, List, Number, One, Optional, Span, Switch};
pub use precedence::{FileTable, print_config};
use precedence::{Given, Setting, Shown, check_keys, resolve};

/// Writes, from one list, the settings' struct, their descriptions, their
/// clap arguments and their resolution.
macro_rules! serve_settings {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty = $parser:expr,
            flag $flag:literal
            $(, env $env:literal)?
            $(, value $value_name:literal)?
            $(, default $default:literal)?
            $(, conflicts_with $conflict:literal)?;
    )+) => {
        /// The settings in effect.
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                pub $key: $ty,
            )+
        }

        /// Each setting's description, under its name.
        struct Descriptions {
            $($key: Setting,)+
        }

        fn descriptions() -> Descriptions {
            Descriptions {
                $(
                    $key: Setting {
                        key: stringify!($key),
                        flag: $flag,
                        env: None $(.or(Some($env)))?,
                        value_name: None $(.or(Some($value_name)))?,
                        default: None $(.or(Some($default)))?,
                        doc: &[$($doc),+],
                        conflicts_with: None $(.or(Some($conflict)))?,
                    },
                )+
            }
        }

        /// The names of the settings, which are their `[serve]` keys.
        pub const KEYS: &[&str] = &[$(stringify!($key)),+];

        /// The settings' clap arguments.
        pub fn args() -> Vec<Arg> {
            let described = descriptions();
            vec![$(arg(&described.$key, &$parser)),+]
        }

        impl Settings {
            /// Every setting by precedence; `given` says what its flag or
            /// environment variable gave. Also the lines of
            /// `--print-config`, in the list's order.
            pub fn resolve(
                given: impl Fn(&Setting) -> Option<Given>,
                file: Option<&FileTable>,
            ) -> anyhow::Result<(Self, Vec<Shown>)> {
                if let Some(file) = file {
                    check_keys(file, KEYS)?;
                }
                let described = descriptions();
                let mut shown = Vec::new();
                let settings = Self {
                    $(
                        $key: {
                            let setting = &described.$key;
                            let (value, line) = resolve(setting, &$parser, given(setting), file)?;
                            shown.push(line);
                            value
                        },
                    )+
                };
                Ok((settings, shown))
            }
        }
    };
}

serve_settings! {
    /// Address of the control API.
    api: SocketAddr = One(Address),
        flag "api", env "FAULTGATE_API", value "ADDR", default "127.0.0.1:8474";

    /// Seed of every random decision (toxicity, jitter...). The same seed
    /// replays the same decisions. Without it a seed is picked and logged.
    seed: Option<u64> = Optional::new(Number { min: 0, max: u64::MAX }, "(picked at start, and logged)"),
        flag "seed", env "FAULTGATE_SEED", value "N";

    /// Load a fault plugin (a .wasm component, or .wat text), or every one in
    /// a directory.
    /// Repeatable. A plugin with a built-in's name replaces it.
    plugins: Vec<PathBuf> = List(FilePath),
        flag "plugin", env "FAULTGATE_PLUGINS", value "PATH";

    /// Memory one plugin instance may use, in MiB.
    plugin_memory_mib: u64 = One(Number { min: 1, max: 64 }),
        flag "plugin-memory-mib", env "FAULTGATE_PLUGIN_MEMORY_MIB", value "MIB", default "16";

    /// Time one plugin call may take, in milliseconds.
    plugin_deadline_ms: u64 = One(Number { min: 1, max: 60_000 }),
        flag "plugin-deadline-ms", env "FAULTGATE_PLUGIN_DEADLINE_MS", value "MS", default "100";

    /// Plugin instances alive at once (one per connection and fault in use).
    max_plugin_instances: u32 = One(Number { min: 16, max: u32::MAX }),
        flag "max-plugin-instances", env "FAULTGATE_MAX_PLUGIN_INSTANCES", value "N", default "10000";

    /// Where compiled plugins are kept between runs, keyed by content hash
    /// [default: $XDG_CACHE_HOME/faultgate, else ~/.cache/faultgate].
    plugin_cache: Option<PathBuf> = Optional { scalar: FilePath, unset: default_cache_dir, none: "(none)" },
        flag "plugin-cache", env "FAULTGATE_PLUGIN_CACHE", value "DIR";

    /// Compile plugins at every start instead of caching them.
    no_plugin_cache: bool = Switch,
        flag "no-plugin-cache", conflicts_with "plugin_cache";

    /// Log format.
    log_format: LogFormat = One(Choice::<LogFormat>::new()),
        flag "log-format", env "FAULTGATE_LOG_FORMAT", value "LOG_FORMAT", default "text";

    /// On SIGTERM or SIGINT: stop accepting, let open connections finish for
    /// this long (e.g. "10s", "500ms"; "0s" closes them at once), then close
    /// the rest. A second signal cuts the wait short.
    shutdown_grace: Duration = One(Span),
        flag "shutdown-grace", env "FAULTGATE_SHUTDOWN_GRACE", value "DURATION", default "10s";
}
