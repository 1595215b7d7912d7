//! Toxiproxy's server flags, so that faultgate (and its image) can stand in
//! for `toxiproxy-server`: tools that start Toxiproxy's image append its
//! flags to the command (Testcontainers' Go module runs it with
//! `-host=0.0.0.0 -config=/tmp/tc-toxiproxy.json`).
//!
//! An argument list that starts with one of those flags is rewritten, before
//! clap sees it, into the `faultgate serve` that does what toxiproxy-server
//! does with them:
//!
//! | toxiproxy-server | faultgate |
//! | --- | --- |
//! | `-host H` (default `localhost`), `-port P` (default `8474`) | `serve --api H:P`, the host resolved as Go's listener does: a name to its first IPv4 address, empty to every interface |
//! | `-config FILE` (its JSON proxies file) | `--config FILE` |
//! | `-seed N` | `--seed N` (a negative seed taken as its two's complement) |
//! | `-proxy-metrics`, `-runtime-metrics` | nothing: faultgate's `/metrics` is always on |
//! | `-version` | `--version` |
//! | `-help`, `-h` | `serve --help` |
//!
//! The flags are parsed as Go's `flag` package parses them: one dash or two,
//! the value after `=` or in the next argument (for the switches only after
//! `=`), the last of a repeated flag wins, parsing stops at `--`. Where
//! toxiproxy-server ignores what it does not understand (arguments after the
//! flags), faultgate refuses with the reason, as for its own flags.

use std::ffi::{OsStr, OsString};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;

/// toxiproxy-server's flags that take a value.
const VALUE_FLAGS: [&str; 4] = ["host", "port", "config", "seed"];
/// Its switches.
const SWITCHES: [&str; 3] = ["proxy-metrics", "runtime-metrics", "version"];

/// This process's arguments, rewritten; a bad toxiproxy-server flag ends
/// the process with the reason and exit code 2, as a bad faultgate flag does.
pub fn args() -> Vec<OsString> {
    rewrite(std::env::args_os().collect()).unwrap_or_else(|error| {
        eprintln!("faultgate: {error:#}");
        std::process::exit(2)
    })
}

/// Rewrites `args` (the program name first) when it is a toxiproxy-server
/// command line; returns any other unchanged. The error names the flag and
/// what is wrong with it.
pub fn rewrite(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(first) = args.get(1) else {
        return Ok(args);
    };
    if !is_toxiproxy_flag(first) {
        return Ok(args);
    }
    let program = args[0].clone();
    let flags = parse(&args[1..])?;
    let mut rewritten = vec![program];
    if flags.help {
        rewritten.extend(["serve", "--help"].map(OsString::from));
        return Ok(rewritten);
    }
    if flags.version {
        rewritten.push("--version".into());
        return Ok(rewritten);
    }
    let api = listen_address(&flags.host, &flags.port)?;
    rewritten.extend(["serve".into(), "--api".into(), api.to_string().into()]);
    // An empty -config means no file, as for toxiproxy-server.
    if let Some(config) = flags.config.filter(|c| !c.is_empty()) {
        rewritten.extend(["--config".into(), config]);
    }
    if let Some(seed) = flags.seed {
        // faultgate seeds are unsigned; the same bits, the same seed.
        rewritten.extend(["--seed".into(), (seed as u64).to_string().into()]);
    }
    Ok(rewritten)
}

/// Whether `arg` is one of toxiproxy-server's flags rather than a faultgate
/// verb or one of faultgate's own top-level flags (`--version`, `--help`,
/// `-h`, `-V`), which clap keeps.
fn is_toxiproxy_flag(arg: &OsStr) -> bool {
    if ["--version", "--help", "-h", "-V"]
        .map(OsStr::new)
        .contains(&arg)
    {
        return false;
    }
    match split_flag(arg) {
        Some((name, _)) => {
            VALUE_FLAGS.contains(&name) || SWITCHES.contains(&name) || name == "help"
        }
        None => false,
    }
}

/// `-name`, `--name`, `-name=value` or `--name=value`: the name, and the
/// value when given with `=`. `None` for anything that is not a flag
/// (including `-`, `--` and a name that is not UTF-8).
fn split_flag(arg: &OsStr) -> Option<(&str, Option<&OsStr>)> {
    let bytes = arg.as_bytes();
    let rest = bytes
        .strip_prefix(b"--")
        .or_else(|| bytes.strip_prefix(b"-"))?;
    // Go's flag package refuses `---x` and `-=x` as bad syntax; neither is a
    // flag here either.
    if rest.is_empty() || rest[0] == b'-' || rest[0] == b'=' {
        return None;
    }
    let (name, value) = match rest.iter().position(|&b| b == b'=') {
        Some(at) => (&rest[..at], Some(OsStr::from_bytes(&rest[at + 1..]))),
        None => (rest, None),
    };
    Some((std::str::from_utf8(name).ok()?, value))
}

/// What the flags asked for, with toxiproxy-server's defaults.
#[derive(Debug, PartialEq)]
struct ToxiproxyFlags {
    host: String,
    port: String,
    config: Option<OsString>,
    seed: Option<i64>,
    version: bool,
    help: bool,
}

fn parse(args: &[OsString]) -> anyhow::Result<ToxiproxyFlags> {
    let mut flags = ToxiproxyFlags {
        host: "localhost".into(),
        port: "8474".into(),
        config: None,
        seed: None,
        version: false,
        help: false,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        let Some((name, inline)) = split_flag(arg) else {
            anyhow::bail!(
                "unexpected argument {arg:?} among toxiproxy-server flags \
                 (toxiproxy-server would ignore it and what follows; faultgate does not guess)"
            );
        };
        if name == "help" || name == "h" {
            flags.help = true;
            return Ok(flags);
        }
        if SWITCHES.contains(&name) {
            let on = match inline {
                None => true,
                Some(value) => parse_switch(name, value)?,
            };
            if name == "version" {
                flags.version = on;
            }
            // -proxy-metrics and -runtime-metrics change nothing here:
            // faultgate serves its metrics at /metrics either way.
            continue;
        }
        if !VALUE_FLAGS.contains(&name) {
            anyhow::bail!(
                "flag provided but not defined: -{name} (toxiproxy-server flags faultgate takes: \
                 -host, -port, -config, -seed, -proxy-metrics, -runtime-metrics, -version)"
            );
        }
        let value = match inline {
            Some(value) => value.to_owned(),
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("flag needs an argument: -{name}"))?,
        };
        let text = || {
            value.to_str().map(str::to_owned).ok_or_else(|| {
                anyhow::anyhow!("invalid value {value:?} for flag -{name}: not UTF-8")
            })
        };
        match name {
            "host" => flags.host = text()?,
            "port" => flags.port = text()?,
            "config" => flags.config = Some(value.clone()),
            "seed" => {
                let text = text()?;
                flags.seed = Some(text.parse().map_err(|_| {
                    anyhow::anyhow!("invalid value {text:?} for flag -seed: not an integer")
                })?);
            }
            _ => unreachable!("every value flag is matched above"),
        }
    }
    if let Some(extra) = rest.next() {
        anyhow::bail!(
            "unexpected argument {extra:?} after toxiproxy-server flags \
             (toxiproxy-server would ignore it; faultgate does not guess)"
        );
    }
    Ok(flags)
}

/// A switch's `=value`, as Go's `strconv.ParseBool` reads it.
fn parse_switch(name: &str, value: &OsStr) -> anyhow::Result<bool> {
    match value.to_str() {
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        _ => anyhow::bail!("invalid boolean value {value:?} for -{name}"),
    }
}

/// Where toxiproxy-server's API would listen for `-host`/`-port`: an IP as
/// it is, an empty host on every interface, a name at its first IPv4
/// address (its first address when it has none), as Go's `net.Listen` does.
fn listen_address(host: &str, port: &str) -> anyhow::Result<SocketAddr> {
    let port: u16 = port.parse().map_err(|_| {
        anyhow::anyhow!("invalid value {port:?} for flag -port: not a port number (0 to 65535)")
    })?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        // Go listens on every interface, IPv6 too when the system has it.
        // Containers often run with IPv6 off, so every IPv4 interface.
        return Ok((Ipv4Addr::UNSPECIFIED, port).into());
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok((ip, port).into());
    }
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("-host {host:?}: cannot resolve it: {e}"))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("-host {host:?}: resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("faultgate")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        rewrite(args)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn refused(args: &[&str]) -> String {
        let args = std::iter::once("faultgate")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        format!("{:#}", rewrite(args).unwrap_err())
    }

    #[test]
    fn faultgate_command_lines_pass_unchanged() {
        for args in [
            &[][..],
            &["serve", "--config", "x.toml"],
            &["run", "a.toml"],
            &["--version"],
            &["--help"],
            &["-h"],
            &["-V"],
            &["serve", "-host=0.0.0.0"],
            &["--api", "127.0.0.1:1"],
        ] {
            let mut expected = vec!["faultgate".to_owned()];
            expected.extend(args.iter().map(|a| a.to_string()));
            assert_eq!(rewritten(args), expected, "{args:?}");
        }
    }

    #[test]
    fn testcontainers_go_modules_command_becomes_serve() {
        assert_eq!(
            rewritten(&["-host=0.0.0.0", "-config=/tmp/tc-toxiproxy.json"]),
            [
                "faultgate",
                "serve",
                "--api",
                "0.0.0.0:8474",
                "--config",
                "/tmp/tc-toxiproxy.json"
            ]
        );
    }

    #[test]
    fn the_defaults_are_toxiproxy_servers_localhost_8474() {
        // -config alone: the API on localhost, as toxiproxy-server listens,
        // even where FAULTGATE_API says otherwise (the flag overrides it).
        assert_eq!(
            rewritten(&["-config", "p.json"]),
            [
                "faultgate",
                "serve",
                "--api",
                "127.0.0.1:8474",
                "--config",
                "p.json"
            ]
        );
    }

    #[test]
    fn values_come_after_equals_or_in_the_next_argument_with_one_dash_or_two() {
        let expected = ["faultgate", "serve", "--api", "127.0.0.2:9000"];
        assert_eq!(
            rewritten(&["-host", "127.0.0.2", "-port", "9000"]),
            expected
        );
        assert_eq!(rewritten(&["--host=127.0.0.2", "--port", "9000"]), expected);
        assert_eq!(rewritten(&["-port=9000", "-host=127.0.0.2"]), expected);
        // The last of a repeated flag wins.
        assert_eq!(
            rewritten(&["-port=1", "-host=127.0.0.2", "-port=9000"]),
            expected
        );
    }

    #[test]
    fn hosts_are_resolved_as_gos_listener_does() {
        let api = |args: &[&str]| rewritten(args)[3].clone();
        assert_eq!(api(&["-host="]), "0.0.0.0:8474");
        assert_eq!(api(&["-host=::1"]), "[::1]:8474");
        assert_eq!(api(&["-host=[::1]", "-port=1"]), "[::1]:1");
        assert_eq!(api(&["-host", "localhost"]), "127.0.0.1:8474");
    }

    #[test]
    fn switches_are_accepted_and_the_metrics_ones_change_nothing() {
        assert_eq!(
            rewritten(&["-proxy-metrics", "-runtime-metrics=true", "-host=0.0.0.0"]),
            ["faultgate", "serve", "--api", "0.0.0.0:8474"]
        );
        // A switch takes no value from the next argument: -host is a flag.
        assert_eq!(
            rewritten(&["--runtime-metrics", "-host", "0.0.0.0"]),
            ["faultgate", "serve", "--api", "0.0.0.0:8474"]
        );
        assert_eq!(rewritten(&["-version"]), ["faultgate", "--version"]);
        assert_eq!(
            rewritten(&["-version=false", "-host=0.0.0.0"]),
            ["faultgate", "serve", "--api", "0.0.0.0:8474"]
        );
        assert_eq!(
            rewritten(&["-host=0.0.0.0", "-help", "-port=x"]),
            ["faultgate", "serve", "--help"]
        );
    }

    #[test]
    fn seed_and_an_empty_config_are_passed_on_as_toxiproxy_server_reads_them() {
        assert_eq!(
            rewritten(&["-seed", "42", "-config="]),
            [
                "faultgate",
                "serve",
                "--api",
                "127.0.0.1:8474",
                "--seed",
                "42"
            ]
        );
        assert_eq!(
            rewritten(&["-seed=-1"])[4..],
            ["--seed", &u64::MAX.to_string()]
        );
    }

    #[test]
    fn flags_after_double_dash_are_not_read() {
        assert_eq!(
            rewritten(&["-host=0.0.0.0", "--"]),
            ["faultgate", "serve", "--api", "0.0.0.0:8474"]
        );
        assert!(refused(&["-host=0.0.0.0", "--", "-port=1"]).contains("\"-port=1\""));
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag_and_the_problem() {
        let cases: [(&[&str], &str); 7] = [
            (&["-port=http"], "-port: not a port number"),
            (&["-port=70000"], "-port: not a port number"),
            (&["-host=0.0.0.0", "-colour=blue"], "not defined: -colour"),
            (&["-config"], "needs an argument: -config"),
            (&["-seed=abc"], "-seed: not an integer"),
            (
                &["-proxy-metrics=yes"],
                "boolean value \"yes\" for -proxy-metrics",
            ),
            (&["-host=0.0.0.0", "serve"], "unexpected argument \"serve\""),
        ];
        for (args, expected) in cases {
            let error = refused(args);
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn config_paths_need_not_be_utf8() {
        let path = OsStr::from_bytes(b"/tmp/\xff.json");
        let mut flag = OsString::from("-config=");
        flag.push(path);
        let args = vec!["faultgate".into(), flag];
        let rewritten = rewrite(args).unwrap();
        assert_eq!(rewritten[4], "--config");
        assert_eq!(rewritten[5], path);
    }
}
