//! Postgres faults: plugins for proxies in `postgres` mode.
//!
//! The host frames the wire protocol; a Postgres fault sees whole messages
//! of one direction (`conn.stream`: `upstream` is the client's, `downstream`
//! the server's) and answers with [`PgAction`]s: TCP steps applied to the
//! message, or a reply to the peer the message came from. A message over
//! 1 MiB is not held whole: the fault is given its tag and length with no
//! bytes, and its steps apply as the message streams by (its `forward`
//! ranges must then come in order; [`PgAction::forward_all`] does). A fault is a type
//! that implements [`PgFault`] (how it is made, per session direction) and
//! [`PgSession`] (what it does), exported with
//! [`export_postgres_fault!`](crate::export_postgres_fault); one with state
//! shared by all its sessions implements [`SharedPgFault`] and is exported
//! with [`export_shared_postgres_fault!`](crate::export_shared_postgres_fault).
//!
//! ```ignore
//! use faultgate_guest::postgres::{Message, PgAction, PgFault, PgSession, error_response, ready_for_query};
//! use faultgate_guest::{Attrs, ConnInfo, Description, Step};
//!
//! /// Answers every simple query with a serialization failure.
//! struct AlwaysConflict;
//!
//! impl PgFault for AlwaysConflict {
//!     fn describe() -> Description {
//!         Description::new("always-conflict", "Every query fails with 40001").wants_bytes()
//!     }
//!     fn new(_conn: &ConnInfo, _attrs: &Attrs) -> Result<Self, String> {
//!         Ok(AlwaysConflict)
//!     }
//! }
//!
//! impl PgSession for AlwaysConflict {
//!     fn on_message(&mut self, message: Message) -> Vec<PgAction> {
//!         if message.tag != b'Q' {
//!             return vec![PgAction::forward_all(&message)];
//!         }
//!         let mut answer = error_response("ERROR", "40001", "could not serialize access");
//!         answer.extend(ready_for_query(b'I'));
//!         // `drop` ends the message's actions, so it comes last.
//!         vec![PgAction::Reply(answer), PgAction::Step(Step::Drop)]
//!     }
//! }
//!
//! faultgate_guest::export_postgres_fault!(AlwaysConflict);
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::bindings::exports::faultgate::plugin::meta;
use crate::postgres_bindings::exports::faultgate::plugin::postgres as wit_pg;
use crate::{Attrs, ConnInfo, Description, Step, Value, stand_in_conn, step, validate_with};

pub use crate::postgres_bindings::exports::faultgate::plugin::postgres::{
    Action as PgAction, Message,
};

/// What a fault does on one direction of one Postgres session.
pub trait PgSession: 'static {
    /// Actions before any message of this direction, or at once on a
    /// connection already open when the fault is attached.
    fn on_open(&mut self) -> Vec<PgAction> {
        Vec::new()
    }

    /// Actions for one message.
    fn on_message(&mut self, message: Message) -> Vec<PgAction>;

    /// Actions when a [`Step::Wake`] this session asked for has come due.
    fn on_wake(&mut self) -> Vec<PgAction> {
        Vec::new()
    }

    /// Actions when the sender has finished.
    fn on_close(&mut self) -> Vec<PgAction> {
        Vec::new()
    }
}

/// A Postgres fault that keeps nothing between sessions: one value per
/// connection and direction it applies to.
pub trait PgFault: PgSession + Sized {
    /// Name (the toxic `type`), summary and attributes.
    fn describe() -> Description;

    /// Makes the fault for one connection direction, or says which
    /// attribute is wrong.
    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String>;
}

/// A Postgres fault with state shared by every session it applies to: one
/// value per attached toxic.
pub trait SharedPgFault: Sized + 'static {
    /// What serves one direction of one session.
    type Session: PgSession;

    /// Name (the toxic `type`), summary and attributes.
    fn describe() -> Description;

    /// Makes the fault from its attributes, or says which one is wrong.
    fn new(attrs: &Attrs) -> Result<Self, String>;

    /// The session for one connection direction.
    fn open(fault: &Rc<Self>, conn: &ConnInfo) -> Result<Self::Session, String>;
}

/// A [`PgFault`] as a [`SharedPgFault`] whose shared state is its
/// attributes.
#[doc(hidden)]
pub struct PerSession<F> {
    attrs: Attrs,
    fault: PhantomData<F>,
}

impl<F: PgFault> SharedPgFault for PerSession<F> {
    type Session = F;

    fn describe() -> Description {
        F::describe()
    }

    fn new(attrs: &Attrs) -> Result<Self, String> {
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

impl PgAction {
    /// Pass the whole message on.
    pub fn forward_all(message: &Message) -> Self {
        Self::Step(step::forward_all(message.len))
    }
}

impl Message {
    /// The body: what follows the type byte and length (for the startup
    /// packet, what follows the length).
    pub fn body(&self) -> &[u8] {
        let bytes = self.bytes.as_deref().unwrap_or_default();
        let header = if self.tag == 0 { 4 } else { 5 };
        bytes.get(header..).unwrap_or_default()
    }

    /// The SQL of a simple query ('Q') or of a statement being prepared
    /// ('P'); `None` for other messages, without `wants-bytes`, or for a
    /// message too long to be given whole (over 1 MiB: its bytes stream
    /// past the fault unseen).
    pub fn sql(&self) -> Option<String> {
        self.bytes.as_ref()?;
        let body = self.body();
        let text = match self.tag {
            b'Q' => body,
            // Parse: statement name, then the query, both NUL-terminated.
            b'P' => {
                let name_end = body.iter().position(|b| *b == 0)?;
                &body[name_end + 1..]
            }
            _ => return None,
        };
        let end = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        Some(String::from_utf8_lossy(&text[..end]).into_owned())
    }

    /// The channel of a NotificationResponse ('A').
    pub fn notification_channel(&self) -> Option<String> {
        if self.tag != b'A' {
            return None;
        }
        let text = self.body().get(4..)?;
        let end = text.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&text[..end]).into_owned())
    }
}

/// One protocol message: type byte, length, body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An ErrorResponse as Postgres sends it: severity (e.g. "FATAL",
/// "ERROR"), SQLSTATE code and message.
pub fn error_response(severity: &str, code: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', text),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

/// ReadyForQuery with a transaction status: b'I' idle, b'T' in a
/// transaction, b'E' in a failed transaction.
pub fn ready_for_query(status: u8) -> Vec<u8> {
    message(b'Z', &[status])
}

/// Checks a SQLSTATE: five digits or upper-case letters.
pub fn check_sqlstate(name: &str, code: &str) -> Result<(), String> {
    if code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(format!(
            "{name}: expected a SQLSTATE (five digits or capital letters, e.g. \"40001\"), got {code:?}"
        ))
    }
}

/// Which statements a fault applies to, from its `sql_regex` attribute
/// (empty: every statement).
#[derive(Debug, Clone)]
pub struct SqlMatch(Option<regex_lite::Regex>);

impl SqlMatch {
    pub fn attribute() -> crate::AttributeSpec {
        crate::attribute::text(
            "sql_regex",
            "",
            "only statements whose SQL matches this regular expression (empty: every one)",
        )
    }

    pub fn from_attrs(attrs: &Attrs) -> Result<Self, String> {
        let pattern = attrs.text("sql_regex", "")?;
        if pattern.is_empty() {
            return Ok(Self(None));
        }
        regex_lite::Regex::new(&pattern)
            .map(|r| Self(Some(r)))
            .map_err(|e| format!("sql_regex: not a valid regular expression: {e}"))
    }

    /// Whether `message` is a query or a Parse whose SQL matches. With no
    /// regex every statement matches, even one whose SQL the fault is not
    /// shown (a message over 1 MiB); with one, such a statement does not.
    pub fn matches(&self, message: &Message) -> bool {
        match &self.0 {
            None => matches!(message.tag, b'Q' | b'P'),
            Some(regex) => message.sql().is_some_and(|sql| regex.is_match(&sql)),
        }
    }
}

/// `Step` values as actions.
impl From<Step> for PgAction {
    fn from(step: Step) -> Self {
        Self::Step(step)
    }
}

/// Ties a [`SharedPgFault`] to the generated export traits.
#[doc(hidden)]
pub struct PgPlugin<S>(PhantomData<S>);

#[doc(hidden)]
pub struct PgFaultOf<S>(Rc<S>);

#[doc(hidden)]
pub struct SessionOf<P>(RefCell<P>);

impl<S: SharedPgFault> meta::Guest for PgPlugin<S> {
    fn describe() -> Description {
        S::describe()
    }

    fn validate(attributes: Vec<(String, Value)>) -> Result<(), String> {
        validate_with(&S::describe(), attributes, S::new)
    }
}

impl<S: SharedPgFault> wit_pg::Guest for PgPlugin<S> {
    type Fault = PgFaultOf<S>;
    type Session = SessionOf<S::Session>;
}

impl<S: SharedPgFault> wit_pg::GuestFault for PgFaultOf<S> {
    fn create(attributes: Vec<(String, Value)>) -> Result<wit_pg::Fault, String> {
        let attrs = Attrs::new(attributes, &S::describe())?;
        Ok(wit_pg::Fault::new(PgFaultOf(Rc::new(S::new(&attrs)?))))
    }

    fn open(&self, conn: ConnInfo) -> Result<wit_pg::Session, String> {
        let session = S::open(&self.0, &conn)?;
        Ok(wit_pg::Session::new(SessionOf(RefCell::new(session))))
    }
}

impl<P: PgSession> wit_pg::GuestSession for SessionOf<P> {
    fn on_open(&self) -> Vec<PgAction> {
        self.0.borrow_mut().on_open()
    }

    fn on_message(&self, message: Message) -> Vec<PgAction> {
        self.0.borrow_mut().on_message(message)
    }

    fn on_wake(&self) -> Vec<PgAction> {
        self.0.borrow_mut().on_wake()
    }

    fn on_close(&self) -> Vec<PgAction> {
        self.0.borrow_mut().on_close()
    }
}

/// Exports a [`PgFault`] type (one value per session direction) as the
/// plugin's implementation of the contract's `postgres-plugin` world. Use
/// it once, in the crate's `lib.rs`.
#[macro_export]
macro_rules! export_postgres_fault {
    ($fault:ty) => {
        $crate::export_shared_postgres_fault!($crate::postgres::PerSession<$fault>);
    };
}

/// Exports a [`SharedPgFault`] type (one value per toxic) as the plugin's
/// implementation of the contract's `postgres-plugin` world.
#[macro_export]
macro_rules! export_shared_postgres_fault {
    ($fault:ty) => {
        type __FaultgateExportedPgPlugin = $crate::postgres::PgPlugin<$fault>;
        $crate::bindings::export!(__FaultgateExportedPgPlugin with_types_in $crate::bindings);
        $crate::postgres_bindings::export!(__FaultgateExportedPgPlugin with_types_in $crate::postgres_bindings);
    };
}
