//! Rust bindings for the worlds of `wit/faultgate.wit`: `tcp-plugin`,
//! `http-plugin` and `postgres-plugin`. The other worlds reuse the TCP world's shared types and
//! host interface, so a `Value` or `Step` is one type across both.

mod tcp_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tcp-plugin",
        exports: { default: async },
    });
}

mod http_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "http-plugin",
        exports: { default: async },
        with: {
            "faultgate:plugin/types": super::tcp_world::faultgate::plugin::types,
            "faultgate:plugin/host": super::tcp_world::faultgate::plugin::host,
        },
    });
}

mod postgres_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "postgres-plugin",
        exports: { default: async },
        with: {
            "faultgate:plugin/types": super::tcp_world::faultgate::plugin::types,
            "faultgate:plugin/host": super::tcp_world::faultgate::plugin::host,
        },
    });
}

pub use http_world::exports::faultgate::plugin::http::{
    Action, Header, RequestHead, Response as PluginResponse, ResponseHead,
};
pub use http_world::faultgate::plugin::http_host::{
    Host as HttpHost, add_to_linker as add_http_host_to_linker,
};
pub use http_world::{HttpPlugin, HttpPluginPre};
pub use postgres_world::exports::faultgate::plugin::postgres::{
    Action as PgAction, Message as PgMessage,
};
pub use postgres_world::{PostgresPlugin, PostgresPluginPre};
pub use tcp_world::faultgate::plugin::host::{Host, Level};
pub use tcp_world::faultgate::plugin::types::Host as TypesHost;
pub use tcp_world::faultgate::plugin::types::{
    AttributeSpec, ByteRange, Chunk, ConnInfo, Description, Direction, Step, Value, ValueType,
};
pub use tcp_world::{TcpPlugin, TcpPluginPre};

/// The attributes as the WIT contract carries them.
pub type Attributes = Vec<(String, Value)>;
