//! Rust bindings for the `tcp-plugin` world of `wit/faultgate.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "tcp-plugin",
    exports: { default: async },
});

pub use faultgate::plugin::host::Level;
pub use faultgate::plugin::types::{
    ByteRange, Chunk, ConnInfo, Description, Direction, Step, Value, ValueType,
};

/// The attributes as the WIT contract carries them.
pub type Attributes = Vec<(String, Value)>;
