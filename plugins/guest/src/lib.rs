//! Write a faultgate fault plugin as a plain Rust type.
//!
//! A plugin is a WebAssembly component built against `wit/faultgate.wit`.
//! This crate wraps the generated bindings so that a fault is a type.
//!
//! Most faults keep nothing between connections: such a fault is one value
//! per connection direction, a type that implements [`Fault`] (how it is
//! made) and [`Filter`] (what it does with the data), exported with
//! [`export_fault!`]:
//!
//! ```ignore
//! use faultgate_guest::{Attrs, Chunk, ConnInfo, Description, Fault, Filter, Step, attribute, step};
//!
//! /// Delays every chunk by a fixed time.
//! struct Delay { micros: u64 }
//!
//! impl Fault for Delay {
//!     fn describe() -> Description {
//!         Description::new("delay", "Delays every chunk")
//!             .attribute(attribute::integer("ms", 0, "delay in milliseconds"))
//!     }
//!     fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
//!         Ok(Delay { micros: attrs.non_negative("ms", 0, "milliseconds")? * 1000 })
//!     }
//! }
//!
//! impl Filter for Delay {
//!     fn on_data(&mut self, chunk: Chunk) -> Vec<Step> {
//!         vec![step::sleep_us(self.micros), step::forward_all(chunk.len)]
//!     }
//! }
//!
//! faultgate_guest::export_fault!(Delay);
//! ```
//!
//! A fault that counts or keeps time across connections ("every 10th
//! connection", "down for 2 s every 10 s") implements [`SharedFault`]
//! instead: one value per attached toxic, made from its attributes, which
//! opens a [`Filter`] for each connection direction and may hand it an `Rc`
//! of itself; it is exported with [`export_shared_fault!`]. The host makes
//! one instance of the plugin per toxic and serializes every call into it,
//! so a `RefCell` or `Cell` in the fault is all the locking it needs.
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! in `target/wasm32-wasip2/release/` is the plugin.
//!
//! The host owns every socket and timer. A plugin only decides: for each
//! chunk it returns [`Step`]s that the host carries out in order. Time in
//! steps is measured from the chunk's arrival, so `sleep` delays relative to
//! when the data came in.

/// Generated bindings, one module per part of the contract a plugin exports:
/// `meta` (every plugin), `tcp` or `http`. Generating the parts separately
/// lets one crate serve both kinds of plugin; the component gets exactly the
/// exports of the parts its export macro names, and the types and host
/// interfaces are generated once, here.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "package faultgate:guest;
            world meta-part { import faultgate:plugin/host@0.2.0; export faultgate:plugin/meta@0.2.0; }
            world tcp-part { import faultgate:plugin/host@0.2.0; export faultgate:plugin/tcp@0.2.0; }
            world http-part { import faultgate:plugin/host@0.2.0; import faultgate:plugin/http-host@0.2.0; export faultgate:plugin/http@0.2.0; }
            world postgres-part { import faultgate:plugin/host@0.2.0; export faultgate:plugin/postgres@0.2.0; }",
        world: "faultgate:guest/meta-part",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "faultgate_guest::bindings",
    });
}

#[doc(hidden)]
pub mod tcp_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "package faultgate:guest;
            world tcp-part { import faultgate:plugin/host@0.2.0; export faultgate:plugin/tcp@0.2.0; }",
        world: "faultgate:guest/tcp-part",
        pub_export_macro: true,
        default_bindings_module: "faultgate_guest::tcp_bindings",
        with: {
            "faultgate:plugin/types@0.2.0": crate::bindings::faultgate::plugin::types,
            "faultgate:plugin/host@0.2.0": crate::bindings::faultgate::plugin::host,
        },
    });
}

#[doc(hidden)]
pub mod http_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "package faultgate:guest;
            world http-part { import faultgate:plugin/host@0.2.0; import faultgate:plugin/http-host@0.2.0; export faultgate:plugin/http@0.2.0; }",
        world: "faultgate:guest/http-part",
        pub_export_macro: true,
        default_bindings_module: "faultgate_guest::http_bindings",
        with: {
            "faultgate:plugin/types@0.2.0": crate::bindings::faultgate::plugin::types,
            "faultgate:plugin/host@0.2.0": crate::bindings::faultgate::plugin::host,
            "faultgate:plugin/http-host@0.2.0": generate,
        },
    });
}

#[doc(hidden)]
pub mod postgres_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "package faultgate:guest;
            world postgres-part { import faultgate:plugin/host@0.2.0; export faultgate:plugin/postgres@0.2.0; }",
        world: "faultgate:guest/postgres-part",
        pub_export_macro: true,
        default_bindings_module: "faultgate_guest::postgres_bindings",
        with: {
            "faultgate:plugin/types@0.2.0": crate::bindings::faultgate::plugin::types,
            "faultgate:plugin/host@0.2.0": crate::bindings::faultgate::plugin::host,
        },
    });
}

pub mod http;
pub mod postgres;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use bindings::exports::faultgate::plugin::meta;
pub use bindings::faultgate::plugin::host;
pub use bindings::faultgate::plugin::types::{
    AttributeSpec, ByteRange, Chunk, ConnInfo, Direction, Step, Value, ValueType,
};
use tcp_bindings::exports::faultgate::plugin::tcp;

/// What a plugin says about itself (`faultgate plugin check`, `GET /plugins`).
pub type Description = bindings::faultgate::plugin::types::Description;

/// What a fault does on one direction of one connection.
pub trait Filter: 'static {
    /// Steps before any data of this direction.
    fn on_open(&mut self) -> Vec<Step> {
        Vec::new()
    }

    /// Steps for one chunk.
    fn on_data(&mut self, chunk: Chunk) -> Vec<Step>;

    /// Steps when a [`Step::Wake`] this filter asked for has come due.
    fn on_wake(&mut self) -> Vec<Step> {
        Vec::new()
    }

    /// Steps when the sender has finished, before the end is passed on.
    fn on_close(&mut self) -> Vec<Step> {
        Vec::new()
    }
}

/// A fault that keeps nothing between connections: one value per
/// connection and direction it applies to.
pub trait Fault: Filter + Sized {
    /// Name (the toxic `type`), summary and attributes. Attributes not
    /// listed here are rejected, so a typo is an error rather than a no-op.
    fn describe() -> Description;

    /// Makes the fault for one connection, or says which attribute is wrong.
    /// The same code validates attributes when a fault is attached through
    /// the API, so the error reaches the API caller as a 400.
    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String>;
}

/// A fault with state shared by every connection it applies to: one value
/// per attached toxic, kept for as long as the toxic lives (or until its
/// instance fails: then a fresh one is made).
pub trait SharedFault: Sized + 'static {
    /// What serves one direction of one connection.
    type Filter: Filter;

    /// Name (the toxic `type`), summary and attributes.
    fn describe() -> Description;

    /// Makes the fault from its attributes, or says which one is wrong.
    fn new(attrs: &Attrs) -> Result<Self, String>;

    /// A filter for one connection direction. Keep `fault` (an `Rc`) in the
    /// filter to reach the shared state later. A filter is dropped when its
    /// connection ends, or the toxic leaves it.
    fn open(fault: &Rc<Self>, conn: &ConnInfo) -> Result<Self::Filter, String>;
}

/// A [`Fault`] as a [`SharedFault`] whose shared state is its attributes.
#[doc(hidden)]
pub struct PerConnection<F> {
    attrs: Attrs,
    fault: PhantomData<F>,
}

impl<F: Fault> SharedFault for PerConnection<F> {
    type Filter = F;

    fn describe() -> Description {
        F::describe()
    }

    fn new(attrs: &Attrs) -> Result<Self, String> {
        // The connection's own values are checked when it opens; the
        // attributes are checked now, with a stand-in connection.
        F::new(&stand_in_conn(), attrs)?;
        Ok(Self {
            attrs: attrs.clone(),
            fault: PhantomData,
        })
    }

    fn open(fault: &Rc<Self>, conn: &ConnInfo) -> Result<F, String> {
        F::new(conn, &fault.attrs)
    }
}

impl Description {
    /// A description with no attributes, versioned by the calling crate.
    pub fn new(name: &str, summary: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: String::new(),
            summary: summary.to_owned(),
            attributes: Vec::new(),
            wants_bytes: false,
        }
    }

    /// Adds an attribute.
    pub fn attribute(mut self, spec: AttributeSpec) -> Self {
        self.attributes.push(spec);
        self
    }

    /// Sets the version shown to users, usually `env!("CARGO_PKG_VERSION")`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// Asks for the bytes of every chunk (they are copied into the plugin).
    pub fn wants_bytes(mut self) -> Self {
        self.wants_bytes = true;
        self
    }

    /// Declares the streams the fault acts on; the host refuses a toxic
    /// attached to any other, saying which are supported. Without it a
    /// fault is taken to act on both. Carried as the reserved attribute
    /// [`STREAMS`] (see `wit/faultgate.wit`, `attribute-spec`).
    pub fn streams(self, streams: &[Direction]) -> Self {
        let names: Vec<&str> = streams
            .iter()
            .map(|s| match s {
                Direction::Upstream => "upstream",
                Direction::Downstream => "downstream",
            })
            .collect();
        self.declaration(
            STREAMS,
            Value::Text(names.join(",")),
            "the streams this fault acts on",
        )
    }

    /// Declares the proxy modes (`tcp`, `http`, `postgres`) the fault acts
    /// in, among those its kind works in; without it, all of them. Carried
    /// as the reserved attribute [`MODES`].
    pub fn modes(self, modes: &[&str]) -> Self {
        self.declaration(
            MODES,
            Value::Text(modes.join(",")),
            "the proxy modes this fault acts in",
        )
    }

    /// Declares the linear memory (MiB, at most 64) one instance of the
    /// plugin needs, when that is more than faultgate gives by default
    /// (`--plugin-memory-mib`, 16). Carried as the reserved attribute
    /// [`MEMORY_MIB`].
    pub fn memory_mib(self, mib: u32) -> Self {
        self.declaration(
            MEMORY_MIB,
            Value::Integer(mib.into()),
            "the memory one instance needs, in MiB",
        )
    }

    /// Declares the time (ms, at most 60000) one call may need, when that
    /// is more than faultgate's default deadline (`--plugin-deadline-ms`,
    /// 100). Carried as the reserved attribute [`DEADLINE_MS`].
    pub fn deadline_ms(self, ms: u32) -> Self {
        self.declaration(
            DEADLINE_MS,
            Value::Integer(ms.into()),
            "the time one call may need, in milliseconds",
        )
    }

    fn declaration(mut self, name: &str, value: Value, summary: &str) -> Self {
        self.attributes.retain(|a| a.name != name);
        self.attributes.push(AttributeSpec {
            name: name.to_owned(),
            type_: match value {
                Value::Integer(_) => ValueType::Integer,
                _ => ValueType::Text,
            },
            default: Some(value),
            summary: summary.to_owned(),
        });
        self
    }
}

/// The reserved attribute name under which a description declares its
/// streams (a comma-separated list in its default). Names starting with
/// `@` are declarations, never attributes a toxic may be given.
pub const STREAMS: &str = "@streams";
/// The reserved attribute name under which a description declares its modes.
pub const MODES: &str = "@modes";
/// The reserved attribute name under which a description declares the
/// memory one instance needs (an integer default, MiB).
pub const MEMORY_MIB: &str = "@memory-mib";
/// The reserved attribute name under which a description declares the time
/// one call may need (an integer default, ms).
pub const DEADLINE_MS: &str = "@deadline-ms";

/// Whether an attribute spec is a declaration (`@streams`, `@modes`), not an
/// attribute a toxic is given.
fn is_declaration(spec: &AttributeSpec) -> bool {
    spec.name.starts_with('@')
}

/// Attribute specs for [`Description::attribute`].
pub mod attribute {
    use super::{AttributeSpec, Value, ValueType};

    fn spec(name: &str, kind: ValueType, default: Option<Value>, summary: &str) -> AttributeSpec {
        AttributeSpec {
            name: name.to_owned(),
            type_: kind,
            default,
            summary: summary.to_owned(),
        }
    }

    pub fn integer(name: &str, default: i64, summary: &str) -> AttributeSpec {
        spec(
            name,
            ValueType::Integer,
            Some(Value::Integer(default)),
            summary,
        )
    }

    pub fn float(name: &str, default: f64, summary: &str) -> AttributeSpec {
        spec(name, ValueType::Float, Some(Value::Float(default)), summary)
    }

    pub fn boolean(name: &str, default: bool, summary: &str) -> AttributeSpec {
        spec(
            name,
            ValueType::Boolean,
            Some(Value::Boolean(default)),
            summary,
        )
    }

    pub fn text(name: &str, default: &str, summary: &str) -> AttributeSpec {
        spec(
            name,
            ValueType::Text,
            Some(Value::Text(default.to_owned())),
            summary,
        )
    }
}

/// Shorthands for building steps.
pub mod step {
    use super::{ByteRange, Step};

    /// Pass on the whole chunk of `len` bytes.
    pub fn forward_all(len: u32) -> Step {
        forward(0, len)
    }

    /// Pass on bytes [start, end) of the chunk.
    pub fn forward(start: u32, end: u32) -> Step {
        Step::Forward(ByteRange { start, end })
    }

    pub fn sleep_us(micros: u64) -> Step {
        Step::Sleep(micros)
    }

    pub fn sleep_ms(millis: u64) -> Step {
        Step::Sleep(millis.saturating_mul(1000))
    }
}

/// A uniform random number in `low..=high` from the connection's seeded
/// stream (so a run with the same `--seed` makes the same choices).
pub fn random_between(low: i64, high: i64) -> i64 {
    if high <= low {
        return low;
    }
    let span = (high - low) as u64 + 1;
    low + (host::random() % span) as i64
}

/// The longest duration an attribute in milliseconds may give: a day. A
/// fault that should last longer is a fault to remove by hand (`blackhole`,
/// `timeout` 0), and the bound keeps every sum of times far from overflow.
pub const MAX_MILLIS: u64 = 86_400_000;

/// The attributes a fault was given, with typed getters. Every error names
/// the attribute.
#[derive(Clone)]
pub struct Attrs {
    values: Vec<(String, Value)>,
}

impl Attrs {
    /// Checks names against the description: unknown ones are an error.
    pub fn new(values: Vec<(String, Value)>, description: &Description) -> Result<Self, String> {
        let accepted = || description.attributes.iter().filter(|a| !is_declaration(a));
        for (name, _) in &values {
            if !accepted().any(|a| &a.name == name) {
                let known: Vec<&str> = accepted().map(|a| a.name.as_str()).collect();
                return Err(if known.is_empty() {
                    format!(
                        "unknown attribute {name:?}; {} takes no attributes",
                        description.name
                    )
                } else {
                    format!(
                        "unknown attribute {name:?}; expected one of: {}",
                        known.join(", ")
                    )
                });
            }
        }
        Ok(Self { values })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// An integer. A float with no fraction (JSON `5.0`) counts.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Integer(i)) => Ok(*i),
            Some(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(*f as i64),
            Some(other) => Err(format!("{name}: expected an integer, got {}", show(other))),
        }
    }

    /// A non-negative integer; `unit` is named in the error.
    pub fn non_negative(&self, name: &str, default: u64, unit: &str) -> Result<u64, String> {
        let wrong =
            |got: String| format!("{name}: expected a non-negative integer ({unit}), got {got}");
        match self.get(name) {
            None => Ok(default),
            Some(value) => match self.int(name, 0) {
                Ok(i) if i >= 0 => Ok(i as u64),
                _ => Err(wrong(show(value))),
            },
        }
    }

    /// A whole number from 0 to `max`; the error names the attribute, the
    /// range and `unit`.
    pub fn up_to(&self, name: &str, default: u64, max: u64, unit: &str) -> Result<u64, String> {
        let value = self.non_negative(name, default, unit)?;
        if value > max {
            return Err(format!("{name}: expected 0 to {max} ({unit}), got {value}"));
        }
        Ok(value)
    }

    /// A duration in milliseconds, up to a day, in microseconds.
    pub fn millis(&self, name: &str, default: u64) -> Result<u64, String> {
        Ok(self.up_to(name, default, MAX_MILLIS, "milliseconds")? * 1000)
    }

    pub fn float(&self, name: &str, default: f64) -> Result<f64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Integer(i)) => Ok(*i as f64),
            Some(Value::Float(f)) if f.is_finite() => Ok(*f),
            Some(other) => Err(format!("{name}: expected a number, got {}", show(other))),
        }
    }

    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => Err(format!(
                "{name}: expected true or false, got {}",
                show(other)
            )),
        }
    }

    pub fn text(&self, name: &str, default: &str) -> Result<String, String> {
        match self.get(name) {
            None => Ok(default.to_owned()),
            Some(Value::Text(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{name}: expected a string, got {}", show(other))),
        }
    }

    /// A string that must be one of `choices`.
    pub fn choice(&self, name: &str, default: &str, choices: &[&str]) -> Result<String, String> {
        let value = self.text(name, default)?;
        if choices.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(format!(
                "{name}: expected one of {}, got {value:?}",
                choices.join(", ")
            ))
        }
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Text(s) => format!("{s:?}"),
    }
}

/// A connection for checking attributes when there is none.
fn stand_in_conn() -> ConnInfo {
    ConnInfo {
        id: 0,
        proxy: String::new(),
        client: String::new(),
        upstream: String::new(),
        stream: Direction::Downstream,
    }
}

/// The `validate` every kind of fault shares: see whether `make` accepts
/// the attributes.
fn validate_with<F>(
    description: &Description,
    attributes: Vec<(String, Value)>,
    make: impl FnOnce(&Attrs) -> Result<F, String>,
) -> Result<(), String> {
    let attrs = Attrs::new(attributes, description)?;
    make(&attrs).map(drop)
}

/// Ties a [`SharedFault`] to the generated export traits. Used by
/// [`export_shared_fault!`] and [`export_fault!`].
#[doc(hidden)]
pub struct Plugin<S>(PhantomData<S>);

#[doc(hidden)]
pub struct FaultOf<S>(Rc<S>);

#[doc(hidden)]
pub struct FilterOf<F>(RefCell<F>);

impl<S: SharedFault> meta::Guest for Plugin<S> {
    fn describe() -> Description {
        S::describe()
    }

    fn validate(attributes: Vec<(String, Value)>) -> Result<(), String> {
        validate_with(&S::describe(), attributes, S::new)
    }
}

impl<S: SharedFault> tcp::Guest for Plugin<S> {
    type Fault = FaultOf<S>;
    type Filter = FilterOf<S::Filter>;
}

impl<S: SharedFault> tcp::GuestFault for FaultOf<S> {
    fn create(attributes: Vec<(String, Value)>) -> Result<tcp::Fault, String> {
        let attrs = Attrs::new(attributes, &S::describe())?;
        Ok(tcp::Fault::new(FaultOf(Rc::new(S::new(&attrs)?))))
    }

    fn open(&self, conn: ConnInfo) -> Result<tcp::Filter, String> {
        let filter = S::open(&self.0, &conn)?;
        Ok(tcp::Filter::new(FilterOf(RefCell::new(filter))))
    }
}

impl<F: Filter> tcp::GuestFilter for FilterOf<F> {
    fn on_open(&self) -> Vec<Step> {
        self.0.borrow_mut().on_open()
    }

    fn on_data(&self, chunk: Chunk) -> Vec<Step> {
        self.0.borrow_mut().on_data(chunk)
    }

    fn on_wake(&self) -> Vec<Step> {
        self.0.borrow_mut().on_wake()
    }

    fn on_close(&self) -> Vec<Step> {
        self.0.borrow_mut().on_close()
    }
}

/// Exports a [`Fault`] type (one value per connection) as the plugin's
/// implementation of the contract. Use it once, in the crate's `lib.rs`.
#[macro_export]
macro_rules! export_fault {
    ($fault:ty) => {
        $crate::export_shared_fault!($crate::PerConnection<$fault>);
    };
}

/// Exports a [`SharedFault`] type (one value per toxic) as the plugin's
/// implementation of the contract. Use it once, in the crate's `lib.rs`.
#[macro_export]
macro_rules! export_shared_fault {
    ($fault:ty) => {
        type __FaultgateExportedPlugin = $crate::Plugin<$fault>;
        $crate::bindings::export!(__FaultgateExportedPlugin with_types_in $crate::bindings);
        $crate::tcp_bindings::export!(__FaultgateExportedPlugin with_types_in $crate::tcp_bindings);
    };
}
