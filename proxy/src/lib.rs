//! faultgate: a fault-injection TCP proxy whose faults are WebAssembly
//! components, controlled through Toxiproxy's REST API.
//!
//! The rooms, from the bottom up (a room uses only rooms above it in this
//! list; see ARCHITECTURE.md at the top of the repository):
//!
//! * [`clock`], [`tls`]: the one monotonic clock; TLS on listeners and to
//!   upstreams.
//! * [`net`]: byte streams to peers, dialing an upstream, hyper's adapter.
//! * [`plugin_host`]: the wasmtime host that loads fault plugins and runs
//!   their instances under time and memory limits.
//! * [`faults`]: what a fault (a "toxic") and a chain are.
//! * [`conn`]: one accepted connection as every part serving it sees it.
//! * [`postgres`]: the Postgres wire protocol (framing, startup, replies).
//! * [`relay`]: pumping bytes between two endpoints through the chain.
//! * [`http`]: serving HTTP on a connection handed to it, faults per request.
//! * [`listener`]: a proxy's listener; accepting connections and deciding
//!   how each is served.
//! * [`registry`]: the proxies and their faults, with Toxiproxy's semantics.
//! * [`api`]: the HTTP control API over the registry.
//! * [`config`]: the config file read at start-up.
//! * [`duration`]: durations as people write them ("500ms", "1.5s").
//! * [`runner`]: the scenario runner (`faultgate run`), which drives proxies
//!   through their control API only.

pub mod api;
pub mod clock;
pub mod config;
pub mod conn;
pub mod duration;
pub mod faults;
pub mod http;
pub mod listener;
pub mod net;
pub mod plugin_host;
pub mod postgres;
pub mod registry;
pub mod relay;
pub mod runner;
pub mod tls;
