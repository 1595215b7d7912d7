//! `faultgate plugin new --lang python`: a Python plugin that componentize-py
//! (PyPI) builds into a component as it is.
//!
//! The sources are real Python files beside this one, with `{{name}}` where
//! the plugin's name goes; the contract is copied in as `wit/faultgate.wit`.

use super::{CONTRACT, Template};

const ATTRIBUTES_PY: &str = include_str!("python/attributes.py");
const TCP_APP_PY: &str = include_str!("python/app.py");
const TCP_PY: &str = include_str!("python/tcp.py");
const HTTP_APP_PY: &str = include_str!("python/http_app.py");
const HTTP_FAULT_PY: &str = include_str!("python/http_fault.py");
const README_MD: &str = include_str!("python/README.md");

pub(super) fn template(name: &str, http: bool) -> anyhow::Result<Template> {
    let file = name.replace('-', "_");
    let world = if http { "http-plugin" } else { "tcp-plugin" };
    let build = format!("componentize-py -d wit -w {world} componentize app -o {file}.wasm");
    let (app, module, module_text) = if http {
        (HTTP_APP_PY, "http_fault.py", HTTP_FAULT_PY)
    } else {
        (TCP_APP_PY, "tcp.py", TCP_PY)
    };
    let readme = README_MD
        .replace(
            "{{kind}}",
            if http {
                "An HTTP fault plugin for faultgate (attach it to a proxy in http mode)"
            } else {
                "A faultgate fault plugin"
            },
        )
        .replace("{{build}}", &build)
        .replace("{{file}}", &file)
        .replace("{{module}}", &format!("`{module}`"))
        .replace("{{unit}}", if http { "request" } else { "connection direction" })
        .replace(
            "{{example}}",
            &if http {
                r#"{"type": "NAME", "stream": "upstream", "attributes": {"status": 503, "path_prefix": "/api/"}}"#
            } else {
                r#"{"type": "NAME", "stream": "downstream", "attributes": {"delay": 100}}"#
            }
            .replace("NAME", name),
        );
    let files = [
        ("app.py", app),
        (module, module_text),
        ("attributes.py", ATTRIBUTES_PY),
        ("README.md", &readme),
        (".gitignore", "/*.wasm\n/.venv\n__pycache__/\n"),
        ("wit/faultgate.wit", CONTRACT),
    ];
    Ok(Template {
        files: files
            .into_iter()
            .map(|(path, text)| (path.to_owned(), text.replace("{{name}}", name)))
            .collect(),
        build,
        component: format!("{file}.wasm"),
    })
}
