//! `faultgate plugin new --lang c`: a C file that builds with clang for
//! wasm32 and `wasm-tools component new`.
//!
//! The contract's C bindings are generated once with wit-bindgen and kept
//! beside this file (`c/bindings/`), so a plugin author needs only clang,
//! wasi-libc and wasm-tools; `bindings_are_of_todays_contract` below fails
//! when the contract changes and they were not generated again (`scripts/c-bindings`
//! generates them again).

use super::{CONTRACT, Template};

const TCP_SOURCE: &str = include_str!("c/tcp.c");
const BUILD_SCRIPT: &str = include_str!("c/build.sh");
const README: &str = include_str!("c/README.md");
const TYPE_INFO: &str = include_str!("c/type_info.c");
const TCP_BINDINGS: [(&str, &str); 2] = [
    ("tcp_plugin.c", include_str!("c/bindings/tcp_plugin.c")),
    ("tcp_plugin.h", include_str!("c/bindings/tcp_plugin.h")),
];

pub(super) fn template(name: &str, http: bool) -> anyhow::Result<Template> {
    if http {
        anyhow::bail!(
            "--lang c --http is not available yet: a C plugin is a TCP fault for now \
             (it works in every proxy mode); write an HTTP fault in Rust, Python or JavaScript"
        );
    }
    let file = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{file}}", &file)
            .replace("{{world}}", "tcp-plugin")
            .replace("{{bindings}}", "tcp_plugin")
    };
    let mut files = vec![
        (format!("{file}.c"), fill(TCP_SOURCE)),
        ("build.sh".to_owned(), fill(BUILD_SCRIPT)),
        ("README.md".to_owned(), fill(README)),
        (".gitignore".to_owned(), "/build\n".to_owned()),
        ("wit/faultgate.wit".to_owned(), CONTRACT.to_owned()),
        ("bindings/type_info.c".to_owned(), fill(TYPE_INFO)),
    ];
    for (path, text) in TCP_BINDINGS {
        files.push((format!("bindings/{path}"), text.to_owned()));
    }
    Ok(Template {
        files,
        build: "sh build.sh".to_owned(),
        component: format!("build/{file}.wasm"),
    })
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use sha2::{Digest, Sha256};

    /// The contract the bindings in `c/bindings/` were generated from.
    const BINDINGS_CONTRACT_SHA256: &str = include_str!("c/bindings/contract.sha256");

    #[test]
    fn bindings_are_of_todays_contract() {
        let mut today = String::new();
        for byte in Sha256::digest(super::CONTRACT.as_bytes()) {
            write!(today, "{byte:02x}").unwrap();
        }
        assert_eq!(
            BINDINGS_CONTRACT_SHA256.trim(),
            today,
            "wit/faultgate.wit changed since the C bindings in proxy/src/cli/scaffold/c/bindings/ \
             were generated: run scripts/c-bindings (it says how)"
        );
    }
}
