//! faultgate: a fault-injection TCP proxy whose faults are WebAssembly
//! components, controlled through Toxiproxy's REST API.
//!
//! The parts, by where data and control flow:
//!
//! * [`relay`]: listeners, connections, and the pumps that carry bytes
//!   through a proxy's fault chain.
//! * [`plugin_host`]: the wasmtime host that loads fault plugins and runs one
//!   instance per connection, under time and memory limits.
//! * [`faults`]: what a fault (a "toxic") and a chain are.
//! * [`registry`]: the proxies and their faults, with Toxiproxy's semantics.
//! * [`api`]: the HTTP control API over the registry.
//! * [`config`]: the config file read at start-up.

pub mod api;
pub mod clock;
pub mod config;
pub mod faults;
pub mod plugin_host;
pub mod registry;
pub mod relay;
