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

    /// Memory one plugin instance may use, in MiB. A plugin that declares
    /// it needs more (`@memory-mib`, at most 64) gets what it declares.
    plugin_memory_mib: u64 = One(Number { min: 1, max: 64 }),
        flag "plugin-memory-mib", env "FAULTGATE_PLUGIN_MEMORY_MIB", value "MIB", default "16";

    /// Time one plugin call may take, in milliseconds. A plugin that
    /// declares it needs longer (`@deadline-ms`) gets what it declares.
    plugin_deadline_ms: u64 = One(Number { min: 1, max: 60_000 }),
        flag "plugin-deadline-ms", env "FAULTGATE_PLUGIN_DEADLINE_MS", value "MS", default "100";

    /// Plugin instances alive at once: one per attached fault, shared by
    /// its connections (the API keeps 8 more for checking plugins).
    max_plugin_instances: u32 = One(Number { min: 16, max: u32::MAX }),
        flag "max-plugin-instances", env "FAULTGATE_MAX_PLUGIN_INSTANCES", value "N", default "1000";

    /// Where compiled plugins are kept between runs, keyed by content hash
    /// [default: $XDG_CACHE_HOME/faultgate, else ~/.cache/faultgate].
    ///
    /// Loading an entry runs its code, so the directory is used only if it
    /// is this user's and writable by no one else, and the directories above
    /// it are this user's or root's and writable by no one else (or sticky);
    /// otherwise faultgate warns, saying what to run, and does without it.
    plugin_cache: Option<PathBuf> = Optional { scalar: FilePath, unset: default_cache_dir, none: "(none)" },
        flag "plugin-cache", env "FAULTGATE_PLUGIN_CACHE", value "DIR";

    /// Compile plugins at every start instead of caching them.
    no_plugin_cache: bool = Switch,
        flag "no-plugin-cache", env "FAULTGATE_NO_PLUGIN_CACHE", conflicts_with "plugin_cache";

    /// Let proxies made or moved through the control API listen on addresses
    /// other than loopback (127.0.0.0/8, ::1), such as 0.0.0.0.
    ///
    /// Without it such a request is refused (403): one API call must not
    /// expose to the network an upstream that trusts loopback. Proxies of
    /// the config file may listen anywhere without it. The image turns it
    /// on, since its proxies listen on every address inside the container.
    allow_non_loopback_listen: bool = Switch,
        flag "allow-non-loopback-listen", env "FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN";

    /// Refuse (400) a toxic that names an attribute its plugin does not
    /// have, a toxicity outside 0 to 1, or a negative number for an
    /// attribute that starts at 0.
    ///
    /// Without it they are read as Toxiproxy reads them (the attribute
    /// ignored, the value the nearest allowed), with a warning in the log
    /// and in the toxic's `warnings`, so that Toxiproxy's users are not
    /// refused what Toxiproxy takes. A config file's toxics are always
    /// read strictly.
    strict_toxics: bool = Switch,
        flag "strict-toxics", env "FAULTGATE_STRICT_TOXICS";

    /// Log format.
    log_format: LogFormat = One(Choice::<LogFormat>::new()),
        flag "log-format", env "FAULTGATE_LOG_FORMAT", value "LOG_FORMAT", default "text";

    /// On SIGTERM or SIGINT: stop accepting, let open connections finish for
    /// this long (e.g. "10s", "500ms"; "0s" closes them at once), then close
    /// the rest. A second signal cuts the wait short.
    shutdown_grace: Duration = One(Span { min: Duration::ZERO }),
        flag "shutdown-grace", env "FAULTGATE_SHUTDOWN_GRACE", value "DURATION", default "10s";

    /// Control API connections open at once. At the limit a new one takes
    /// the place of the one quiet longest that is not answering a request;
    /// when every one is answering, it is answered 503.
    max_api_connections: u32 = One(Number { min: 1, max: 1_000_000 }),
        flag "max-api-connections", env "FAULTGATE_MAX_API_CONNECTIONS", value "N", default "256";

    /// Time a control API client may take to send a request head, from its
    /// first byte; a connection that takes longer is closed.
    api_header_timeout: Duration = One(Span { min: Duration::from_millis(1) }),
        flag "api-header-timeout", env "FAULTGATE_API_HEADER_TIMEOUT", value "DURATION", default "10s";

    /// A control API connection on which nothing is sent or received for
    /// this long is closed: idle between requests, a request body that
    /// stopped coming, an answer not read. A request being answered is not
    /// idle.
    api_idle_timeout: Duration = One(Span { min: Duration::from_millis(1) }),
        flag "api-idle-timeout", env "FAULTGATE_API_IDLE_TIMEOUT", value "DURATION", default "60s";
}
