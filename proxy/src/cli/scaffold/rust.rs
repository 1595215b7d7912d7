//! `faultgate plugin new --lang rust`: a plugin crate that builds as it is.
//!
//! The crate carries its own copy of the guest crate and of the contract
//! (both compiled into this binary), so it builds anywhere with only
//! `rustup target add wasm32-wasip2` and crates.io.

use super::{CONTRACT, Template, type_name};

/// The guest crate's sources, by path inside it.
const GUEST_SOURCES: [(&str, &str); 3] = [
    (
        "src/lib.rs",
        include_str!("../../../../plugins/guest/src/lib.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../../plugins/guest/src/http.rs"),
    ),
    (
        "src/postgres.rs",
        include_str!("../../../../plugins/guest/src/postgres.rs"),
    ),
];

/// The crate: its manifest, a working fault, the guest crate and the
/// contract.
pub(super) fn template(name: &str, http: bool) -> Template {
    let mut files = vec![
        ("Cargo.toml".to_owned(), cargo_toml(name)),
        (
            ".cargo/config.toml".to_owned(),
            "[build]\ntarget = \"wasm32-wasip2\"\n".to_owned(),
        ),
        (".gitignore".to_owned(), "/target\n".to_owned()),
        (
            "src/lib.rs".to_owned(),
            if http {
                http_lib_rs(name)
            } else {
                lib_rs(name)
            },
        ),
        ("README.md".to_owned(), readme(name, http)),
        (
            "faultgate-guest/Cargo.toml".to_owned(),
            GUEST_MANIFEST.to_owned(),
        ),
        (
            "faultgate-guest/wit/faultgate.wit".to_owned(),
            CONTRACT.to_owned(),
        ),
    ];
    for (path, text) in GUEST_SOURCES {
        // In faultgate's repository the contract sits two levels up.
        files.push((
            format!("faultgate-guest/{path}"),
            text.replace("\"../../wit\"", "\"wit\""),
        ));
    }
    Template {
        files,
        build: "cargo build --release".to_owned(),
        component: format!(
            "target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ),
    }
}

const GUEST_MANIFEST: &str = r#"[package]
name = "faultgate-guest"
description = "Write faultgate fault plugins as plain Rust types"
version = "0.1.0"
edition = "2024"

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc", "std"] }
regex-lite = "0.1"
"#;

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
faultgate-guest = {{ path = "faultgate-guest" }}

# Small and fast plugins.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A crate of its own, even when created inside another workspace.
[workspace]
"#
    )
}

fn lib_rs(name: &str) -> String {
    let ty = type_name(name);
    format!(
        r#"//! `{name}`: a faultgate fault plugin.
//!
//! As written it delays every chunk by `delay` milliseconds and, when
//! `reset_after` is set, resets the connection at that chunk. Change it into
//! the fault you need: the host calls `on_data` for every chunk of the
//! direction the fault is attached to, and carries out the steps it returns,
//! in order.
//!
//! One `{ty}` is made per connection direction, so it keeps that
//! connection's state. A fault that counts or keeps time across
//! connections implements `SharedFault` instead (see the plugin guide).

use faultgate_guest::{{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, host, step}};

struct {ty} {{
    delay_ms: u64,
    reset_after: u64,
    chunks_seen: u64,
}}

impl Fault for {ty} {{
    fn describe() -> Description {{
        Description::new("{name}", "Delays every chunk, and resets after some chunks if asked")
            .version(env!("CARGO_PKG_VERSION"))
            .attribute(attribute::integer("delay", 0, "delay of each chunk, in milliseconds"))
            .attribute(attribute::integer("reset_after", 0, "reset the connection at this chunk; 0 = never"))
    }}

    /// Called per connection direction, and when the fault is attached (to
    /// check the attributes: an error here is the API caller's 400).
    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {{
        host::log(host::Level::Debug, &format!("{name} on connection {{}} from {{}}", conn.id, conn.client));
        Ok(Self {{
            delay_ms: attrs.non_negative("delay", 0, "milliseconds")?,
            reset_after: attrs.non_negative("reset_after", 0, "chunks")?,
            chunks_seen: 0,
        }})
    }}
}}

impl Filter for {ty} {{
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {{
        self.chunks_seen += 1;
        if self.reset_after != 0 && self.chunks_seen >= self.reset_after {{
            return vec![Step::Reset];
        }}
        // Time in steps counts from the chunk's arrival.
        vec![step::sleep_ms(self.delay_ms), step::forward_all(chunk.len)]
    }}
}}

faultgate_guest::export_fault!({ty});
"#
    )
}

fn http_lib_rs(name: &str) -> String {
    let ty = type_name(name);
    format!(
        r#"//! `{name}`: a faultgate HTTP fault plugin, for proxies in http mode.
//!
//! As written it answers matching requests with `status` after waiting
//! `delay` milliseconds. Which requests match is set by the attributes every
//! built-in HTTP fault shares (`method`, `path_prefix`, `path_regex`,
//! `header`). Attached `upstream` it acts before the request reaches the
//! server; attached `downstream`, after the server answered. Change it into
//! the fault you need: the host calls `on_request` and `on_response` for every
//! request the fault applies to, and carries out the actions they return.

use faultgate_guest::http::{{Action, HttpExchange, HttpFault, RequestHead, RequestMatch, ResponseHead, Trigger, action}};
use faultgate_guest::{{Attrs, ConnInfo, Description, attribute, host}};

struct {ty} {{
    trigger: Trigger,
    /// What it does to a matching request: wait, then answer.
    answer: Vec<Action>,
}}

impl HttpFault for {ty} {{
    fn describe() -> Description {{
        RequestMatch::describe(
            Description::new("{name}", "Answers matching requests with a status, after a delay")
                .version(env!("CARGO_PKG_VERSION"))
                .attribute(attribute::integer("status", 503, "the status to answer with"))
                .attribute(attribute::integer("delay", 0, "wait before answering, in milliseconds")),
        )
    }}

    /// Called per request, and when the fault is attached (to validate the
    /// attributes: an error here is the API caller's 400).
    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {{
        let status = attrs.int("status", 503)?;
        if !(100..=999).contains(&status) {{
            return Err(format!("status: expected an HTTP status (100-999), got {{status}}"));
        }}
        host::log(host::Level::Debug, &format!("{name} on connection {{}}", conn.id));
        let delay_ms = attrs.non_negative("delay", 0, "milliseconds")?;
        let body = "{name}\n";
        Ok(Self {{
            trigger: Trigger::new(conn, attrs)?,
            answer: vec![action::delay_ms(delay_ms), action::respond(status as u16, body)],
        }})
    }}
}}

impl HttpExchange for {ty} {{
    // The trigger knows whether to act at the request (attached upstream)
    // or at the response (downstream), and only for matching requests.
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {{
        self.trigger.on_request(request, || self.answer.clone())
    }}

    fn on_response(&mut self, _response: &ResponseHead) -> Vec<Action> {{
        self.trigger.on_response(|| self.answer.clone())
    }}
}}

faultgate_guest::export_http_fault!({ty});
"#
    )
}

fn readme(name: &str, http: bool) -> String {
    let file = name.replace('-', "_");
    let example = if http {
        r#"{"type": "NAME", "stream": "upstream", "attributes": {"status": 503, "path_prefix": "/api/"}}"#
    } else {
        r#"{"type": "NAME", "stream": "downstream", "attributes": {"delay": 100}}"#
    }
    .replace("NAME", name);
    let kind = if http {
        "An HTTP fault plugin for faultgate: attach it to a proxy in http mode."
    } else {
        "A faultgate fault plugin."
    };
    format!(
        r#"# {name}

{kind}

```sh
rustup target add wasm32-wasip2      # once
cargo build --release                # builds target/wasm32-wasip2/release/{file}.wasm
faultgate plugin check target/wasm32-wasip2/release/{file}.wasm
```

Load it at start-up, or into a running faultgate:

```sh
faultgate serve --plugin target/wasm32-wasip2/release/{file}.wasm
curl --data-binary @target/wasm32-wasip2/release/{file}.wasm localhost:8474/plugins
```

Attach it like any toxic:

```sh
curl -X POST localhost:8474/proxies/PROXY/toxics \
  -d '{example}'
```

`faultgate-guest/` is the helper crate and `faultgate-guest/wit/` the plugin
contract, copied here by `faultgate plugin new` so the crate builds on its own.
"#
    )
}
