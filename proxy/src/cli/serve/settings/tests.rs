//! The settings list read through every source, as `serve` reads it.

use std::collections::BTreeMap;

use clap::ArgMatches;

use faultgate::config::ServeValue;

use super::precedence::Source;
use super::*;

/// A `[serve]` table read from a real file, as `serve` reads it.
struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
    values: BTreeMap<String, ServeValue>,
}

impl File {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, text).unwrap();
        let values = faultgate::config::load_serve(&path).unwrap();
        Self {
            _dir: dir,
            path,
            values,
        }
    }

    fn table(&self) -> FileTable<'_> {
        FileTable {
            path: &self.path,
            values: &self.values,
        }
    }
}

/// The settings' flags parsed by clap from `argv`, without the
/// environment variables (the test's own environment must not count).
fn flags(argv: &[&str]) -> ArgMatches {
    clap::Command::new("serve")
        .args(args().into_iter().map(|a| a.env(None)))
        .try_get_matches_from(std::iter::once("serve").chain(argv.iter().copied()))
        .unwrap()
}

fn env(var: &'static str, text: &str) -> Option<Given> {
    Some(Given {
        texts: vec![text.to_owned()],
        source: Source::Env(var),
    })
}

fn source_of(shown: &[Shown], key: &str) -> Source {
    shown.iter().find(|s| s.key == key).unwrap().source
}

#[test]
fn with_nothing_given_every_setting_has_its_default() {
    let (settings, shown) = Settings::resolve(|_| None, None).unwrap();
    assert_eq!(settings.api, "127.0.0.1:8474".parse().unwrap());
    assert_eq!(settings.seed, None);
    assert!(settings.plugins.is_empty());
    assert_eq!(settings.plugin_memory_mib, 16);
    assert_eq!(settings.plugin_deadline_ms, 100);
    assert_eq!(settings.max_plugin_instances, 1_000);
    assert_eq!(settings.plugin_cache, default_cache_dir());
    assert!(!settings.no_plugin_cache);
    assert!(!settings.allow_non_loopback_listen);
    assert!(matches!(settings.log_format, LogFormat::Text));
    assert_eq!(settings.shutdown_grace, Duration::from_secs(10));
    assert_eq!(settings.max_api_connections, 256);
    assert_eq!(settings.api_header_timeout, Duration::from_secs(10));
    assert_eq!(settings.api_idle_timeout, Duration::from_secs(60));
    let keys: Vec<&str> = shown.iter().map(|s| s.key).collect();
    assert_eq!(keys, KEYS);
    assert!(shown.iter().all(|s| s.source == Source::Default));
    assert_eq!(shown[1].value, "(picked at start, and logged)");
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let file = File::new(
        "[serve]\napi = \"127.0.0.1:9001\"\nseed = 1\nshutdown_grace = \"3s\"\nplugins = [\"x\"]\nlog_format = \"json\"\nno_plugin_cache = false\n",
    );
    let matches = flags(&[
        "--api",
        "127.0.0.1:9003",
        "--plugin",
        "a,b",
        "--no-plugin-cache",
    ]);
    let given = |setting: &Setting| match setting.key {
        // What clap gives for a variable that is set and no flag.
        "seed" => env("FAULTGATE_SEED", "7"),
        _ => given(&matches, setting),
    };
    let (settings, shown) = Settings::resolve(given, Some(&file.table())).unwrap();
    assert_eq!(settings.api, "127.0.0.1:9003".parse().unwrap());
    assert_eq!(source_of(&shown, "api"), Source::Flag);
    assert_eq!(settings.seed, Some(7));
    assert_eq!(source_of(&shown, "seed"), Source::Env("FAULTGATE_SEED"));
    assert_eq!(settings.plugins, [PathBuf::from("a"), PathBuf::from("b")]);
    assert_eq!(source_of(&shown, "plugins"), Source::Flag);
    assert!(settings.no_plugin_cache);
    assert_eq!(source_of(&shown, "no_plugin_cache"), Source::Flag);
    assert_eq!(settings.shutdown_grace, Duration::from_secs(3));
    assert_eq!(source_of(&shown, "shutdown_grace"), Source::File);
    assert!(matches!(settings.log_format, LogFormat::Json));
    assert_eq!(source_of(&shown, "plugin_memory_mib"), Source::Default);

    let text = print_config(&shown, Some(&file.path));
    assert!(
        text.contains(&format!(
            "{:<44} # flag --plugin\n",
            "plugins = [\"a\", \"b\"]"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{:<44} # config file {}\n",
            "shutdown_grace = \"3s\"",
            file.path.display()
        )),
        "{text}"
    );
    assert!(text.contains("seed = 7 "), "{text}");
}

/// The message for a bad value of one setting given one way.
fn refused(file: &str, given: impl Fn(&Setting) -> Option<Given>) -> String {
    let file = File::new(file);
    match Settings::resolve(given, Some(&file.table())) {
        Ok(_) => panic!("accepted"),
        Err(e) => e
            .to_string()
            .replace(&file.path.display().to_string(), "f.toml"),
    }
}

#[test]
fn a_bad_value_names_the_setting_and_where_it_came_from() {
    let flag = |argv: &'static [&'static str]| {
        let matches = flags(argv);
        move |setting: &Setting| given(&matches, setting)
    };
    // Address, from a flag.
    assert_eq!(
        refused("", flag(&["--api", "nowhere"])),
        "--api: \"nowhere\" is not an address such as 127.0.0.1:8474"
    );
    // A number, from the environment; and from the file, out of range.
    assert_eq!(
        refused("", |s: &Setting| (s.key == "seed")
            .then(|| env("FAULTGATE_SEED", "soon"))
            .flatten()),
        "environment variable FAULTGATE_SEED, for --seed: \"soon\" is not a whole number"
    );
    assert_eq!(
        refused("[serve]\n\nplugin_memory_mib = 500\n", |_| None),
        "serve.plugin_memory_mib in f.toml:3: 500 is not in 1..=64"
    );
    assert_eq!(
        refused("[serve]\nmax_plugin_instances = \"16\"\n", |_| None),
        "serve.max_plugin_instances in f.toml:2: \"16\" is a string, not a whole number"
    );
    // A list, from the file.
    assert_eq!(
        refused("[serve]\nplugins = [\"a\", 3]\n", |_| None),
        "serve.plugins in f.toml:2: 3 is an integer, not a path"
    );
    assert_eq!(
        refused("[serve]\nplugins = \"a\"\n", |_| None),
        "serve.plugins in f.toml:2: \"a\" is a string, not an array"
    );
    // An optional path, from the file.
    assert_eq!(
        refused("[serve]\nplugin_cache = 3\n", |_| None),
        "serve.plugin_cache in f.toml:2: 3 is an integer, not a path"
    );
    // A switch, from the file.
    assert_eq!(
        refused("[serve]\nno_plugin_cache = \"yes\"\n", |_| None),
        "serve.no_plugin_cache in f.toml:2: \"yes\" is a string, not true or false"
    );
    // A choice, from the environment and from the file.
    assert_eq!(
        refused("", |s: &Setting| (s.key == "log_format")
            .then(|| env("FAULTGATE_LOG_FORMAT", "xml"))
            .flatten()),
        "environment variable FAULTGATE_LOG_FORMAT, for --log-format: \"xml\" is not one of text, json"
    );
    assert_eq!(
        refused("[serve]\nlog_format = \"xml\"\n", |_| None),
        "serve.log_format in f.toml:2: \"xml\" is not one of text, json"
    );
    // A duration, from a flag and from the file.
    let error = refused("", flag(&["--shutdown-grace", "later"]));
    assert!(
        error.starts_with("--shutdown-grace: \"later\" is not a duration"),
        "{error}"
    );
    // A duration below its least: an API timeout of nothing would close
    // every connection at once.
    assert_eq!(
        refused("", flag(&["--api-idle-timeout", "0s"])),
        "--api-idle-timeout: \"0s\" is shorter than 1ms"
    );
    let error = refused("[serve]\nshutdown_grace = \"later\"\n", |_| None);
    assert!(
        error.starts_with("serve.shutdown_grace in f.toml:2: \"later\" is not a duration"),
        "{error}"
    );
}

#[test]
fn the_file_is_checked_even_where_a_flag_overrides_it() {
    let matches = flags(&["--api", "127.0.0.1:1"]);
    assert_eq!(
        refused("[serve]\napi = \"nowhere\"\n", |s| given(&matches, s)),
        "serve.api in f.toml:2: \"nowhere\" is not an address such as 127.0.0.1:8474"
    );
}

#[test]
fn an_unknown_key_is_refused_naming_the_settings() {
    assert_eq!(
        refused("[serve]\napi = \"127.0.0.1:1\"\napi_port = 1\n", |_| None),
        format!(
            "serve.api_port in f.toml:3: not a setting of faultgate serve (the settings: {})",
            KEYS.join(", ")
        )
    );
}

#[test]
fn a_switch_is_set_by_its_flag_and_by_its_environment_variable_saying_true_or_false() {
    let var = "FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN";
    let resolved = |given: &dyn Fn(&Setting) -> Option<Given>| {
        let (settings, shown) = Settings::resolve(given, None).unwrap();
        (
            settings.allow_non_loopback_listen,
            source_of(&shown, "allow_non_loopback_listen"),
        )
    };
    let matches = flags(&["--allow-non-loopback-listen"]);
    assert_eq!(
        resolved(&|s: &Setting| given(&matches, s)),
        (true, Source::Flag)
    );
    for (text, on) in [("true", true), ("false", false)] {
        assert_eq!(
            resolved(&|s: &Setting| (s.key == "allow_non_loopback_listen")
                .then(|| env(var, text))
                .flatten()),
            (on, Source::Env(var))
        );
    }
    let file = File::new("[serve]\nallow_non_loopback_listen = true\n");
    let (settings, _) = Settings::resolve(|_| None, Some(&file.table())).unwrap();
    assert!(settings.allow_non_loopback_listen);
}

#[test]
fn the_plugin_cache_is_turned_off_by_its_environment_variable_too() {
    let var = "FAULTGATE_NO_PLUGIN_CACHE";
    let (settings, shown) = Settings::resolve(
        |s: &Setting| {
            (s.key == "no_plugin_cache")
                .then(|| env(var, "true"))
                .flatten()
        },
        None,
    )
    .unwrap();
    assert!(settings.no_plugin_cache);
    assert_eq!(source_of(&shown, "no_plugin_cache"), Source::Env(var));
}
