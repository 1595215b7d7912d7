//! The contract's three worlds (`tcp-plugin`, `http-plugin`,
//! `postgres-plugin`) behind one enum each for a linked plugin and a live
//! instance's exports, so the rest of the host handles every kind the same
//! way. `meta` is exported by every world; the macro writes the one match
//! that reaches it whichever world an instance is of.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{
    self, Attributes, HttpPlugin, HttpPluginPre, PostgresPlugin, PostgresPluginPre, TcpPlugin,
    TcpPluginPre,
};
use super::kind::PluginKind;
use super::state::InstanceState;

macro_rules! worlds {
    ($($kind:ident: $bindings:ident, $pre:ident, $interface:literal;)*) => {
        /// A linked plugin, by the world it implements.
        pub enum PluginPre {
            $($kind($pre<InstanceState>),)*
        }

        /// A live instance's exports, by world.
        pub enum Bindings {
            $($kind($bindings),)*
        }

        impl PluginPre {
            /// Links `instance_pre` as the world its component exports
            /// (a component exporting none of the kinds' interfaces is
            /// tried as a TCP plugin, so the error names what is missing).
            pub fn new(
                instance_pre: InstancePre<InstanceState>,
                exports: impl Fn(&str) -> bool,
            ) -> wasmtime::Result<Self> {
                $(if exports($interface) {
                    return Ok(Self::$kind($pre::new(instance_pre)?));
                })*
                Ok(Self::Tcp(TcpPluginPre::new(instance_pre)?))
            }

            pub fn kind(&self) -> PluginKind {
                match self {
                    $(Self::$kind(_) => PluginKind::$kind,)*
                }
            }

            pub async fn instantiate(
                &self,
                store: &mut Store<InstanceState>,
            ) -> wasmtime::Result<Bindings> {
                Ok(match self {
                    $(Self::$kind(pre) => Bindings::$kind(pre.instantiate_async(store).await?),)*
                })
            }
        }

        impl Bindings {
            pub async fn describe(
                &self,
                store: &mut Store<InstanceState>,
            ) -> wasmtime::Result<bindings::Description> {
                match self {
                    $(Self::$kind(b) => b.faultgate_plugin_meta().call_describe(store).await,)*
                }
            }

            pub async fn validate(
                &self,
                store: &mut Store<InstanceState>,
                attributes: &Attributes,
            ) -> wasmtime::Result<Result<(), String>> {
                match self {
                    $(Self::$kind(b) => b.faultgate_plugin_meta().call_validate(store, attributes).await,)*
                }
            }
        }

        $(impl TryFrom<Bindings> for $bindings {
            type Error = PluginKind;

            /// This world's exports, or the kind the instance is instead.
            fn try_from(bindings: Bindings) -> Result<Self, PluginKind> {
                match bindings {
                    Bindings::$kind(b) => Ok(b),
                    #[allow(unreachable_patterns)]
                    other => Err(other.kind()),
                }
            }
        })*

        impl Bindings {
            fn kind(&self) -> PluginKind {
                match self {
                    $(Self::$kind(_) => PluginKind::$kind,)*
                }
            }
        }
    };
}

// HTTP and Postgres first: a component is of the first kind it exports.
worlds! {
    Http: HttpPlugin, HttpPluginPre, "http";
    Postgres: PostgresPlugin, PostgresPluginPre, "postgres";
    Tcp: TcpPlugin, TcpPluginPre, "tcp";
}
