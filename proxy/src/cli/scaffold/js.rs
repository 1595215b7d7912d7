//! `faultgate plugin new --lang js`: a JavaScript module and its npm
//! manifest, built into a component by `jco componentize`.
//!
//! The tool versions are the ones faultgate's own JavaScript plugins are
//! built and tested with (plugins/js/toolchain/package.json).

use super::{CONTRACT, Template};

const TCP_APP: &str = include_str!("js/tcp.js");
const HTTP_APP: &str = include_str!("js/http.js");
const README: &str = include_str!("js/README.md");

pub(super) fn template(name: &str, http: bool) -> anyhow::Result<Template> {
    let component = format!("{name}.wasm");
    let (app, world, kind, example) = if http {
        (
            HTTP_APP,
            "http-plugin",
            "An HTTP fault plugin for faultgate: attach it to a proxy in http mode.",
            r#"{"type": "NAME", "stream": "upstream", "attributes": {"status": 503, "path_prefix": "/api/"}}"#,
        )
    } else {
        (
            TCP_APP,
            "tcp-plugin",
            "A faultgate fault plugin.",
            r#"{"type": "NAME", "stream": "downstream", "attributes": {"delay": 100}}"#,
        )
    };
    let files = vec![
        ("app.js".to_owned(), app.replace("NAME", name)),
        ("package.json".to_owned(), package_json(name, world)),
        (
            ".gitignore".to_owned(),
            "/node_modules\n/*.wasm\n".to_owned(),
        ),
        ("wit/faultgate.wit".to_owned(), CONTRACT.to_owned()),
        (
            "README.md".to_owned(),
            README
                .replace("KIND", kind)
                .replace("EXAMPLE", example)
                .replace("NAME", name),
        ),
    ];
    Ok(Template {
        files,
        build: "npm install && npm run build".to_owned(),
        component,
    })
}

/// The plugin's npm manifest: the build script and the tools it needs.
fn package_json(name: &str, world: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{
    "build": "jco componentize app.js --wit wit --world-name {world} --disable all -o {name}.wasm"
  }},
  "devDependencies": {{
    "@bytecodealliance/componentize-js": "0.23.0",
    "@bytecodealliance/jco": "1.35.0"
  }},
  "overrides": {{
    "@bytecodealliance/preview2-shim": "0.25.0",
    "@bytecodealliance/componentize-js": "0.23.0"
  }}
}}
"#
    )
}
