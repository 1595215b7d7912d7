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
const HTTP_SOURCE: &str = include_str!("c/http.c");
const ATTRIBUTES_H: &str = include_str!("c/attributes.h");
const ATTRIBUTES_C: &str = include_str!("c/attributes.c");
const BUILD_SCRIPT: &str = include_str!("c/build.sh");
const README: &str = include_str!("c/README.md");
const TYPE_INFO: &str = include_str!("c/type_info.c");
const TCP_BINDINGS: [(&str, &str); 2] = [
    ("tcp_plugin.c", include_str!("c/bindings/tcp_plugin.c")),
    ("tcp_plugin.h", include_str!("c/bindings/tcp_plugin.h")),
];
const HTTP_BINDINGS: [(&str, &str); 2] = [
    ("http_plugin.c", include_str!("c/bindings/http_plugin.c")),
    ("http_plugin.h", include_str!("c/bindings/http_plugin.h")),
];

pub(super) fn template(name: &str, http: bool) -> Template {
    let file = name.replace('-', "_");
    let (source, world, bindings, kind, example) = if http {
        (
            HTTP_SOURCE,
            "http-plugin",
            HTTP_BINDINGS,
            "An HTTP fault plugin for faultgate, in C: attach it to a proxy in http mode.",
            r#"{"type": "NAME", "stream": "upstream", "attributes": {"status": 503, "path_prefix": "/api/"}}"#,
        )
    } else {
        (
            TCP_SOURCE,
            "tcp-plugin",
            TCP_BINDINGS,
            "A faultgate fault plugin, in C.",
            r#"{"type": "NAME", "stream": "downstream", "attributes": {"delay": 100}}"#,
        )
    };
    let bindings_name = world.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{kind}}", kind)
            .replace("{{example}}", &example.replace("NAME", name))
            .replace("{{name}}", name)
            .replace("{{file}}", &file)
            .replace("{{world}}", world)
            .replace("{{bindings}}", &bindings_name)
    };
    let mut files = vec![
        (format!("{file}.c"), fill(source)),
        ("attributes.h".to_owned(), fill(ATTRIBUTES_H)),
        ("attributes.c".to_owned(), fill(ATTRIBUTES_C)),
        ("build.sh".to_owned(), fill(BUILD_SCRIPT)),
        ("README.md".to_owned(), fill(README)),
        (".gitignore".to_owned(), "/build\n".to_owned()),
        ("wit/faultgate.wit".to_owned(), CONTRACT.to_owned()),
        ("bindings/type_info.c".to_owned(), fill(TYPE_INFO)),
    ];
    for (path, text) in bindings {
        files.push((format!("bindings/{path}"), text.to_owned()));
    }
    Template {
        files,
        build: "sh build.sh".to_owned(),
        component: format!("build/{file}.wasm"),
    }
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
