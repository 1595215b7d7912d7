//! faultgate: a fault-injection TCP proxy whose faults are WebAssembly
//! components, controlled through Toxiproxy's REST API.
//!
//! The parts, by where data and control flow:
//!
//! * [`relay`]: listeners, connections, and the pumps that carry bytes
//!   through a proxy's fault chain.
//! * [`http`]: the reverse proxy of proxies in `http` mode, with HTTP faults
//!   applied per request.
//! * [`tls`]: TLS on listeners and to upstreams.
//! * [`plugin_host`]: the wasmtime host that loads fault plugins and runs one
//!   instance per connection, under time and memory limits.
//! * [`faults`]: what a fault (a "toxic") and a chain are.
//! * [`registry`]: the proxies and their faults, with Toxiproxy's semantics.
//! * [`api`]: the HTTP control API over the registry.
//! * [`config`]: the config file read at start-up.
//! * [`duration`]: durations as people write them ("500ms", "1.5s").
//! * [`runner`]: the scenario runner (`faultgate run`), which drives proxies
//!   through their control API only.

pub mod api;
pub mod clock;
pub mod config;
pub mod duration;
pub mod faults;
pub mod http;
pub mod plugin_host;
pub mod registry;
pub mod relay;
pub mod runner;
pub mod tls;
