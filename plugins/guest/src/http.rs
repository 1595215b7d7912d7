//! HTTP faults: plugins for proxies in `http` mode.
//!
//! An HTTP fault is a type that implements [`HttpFault`] (how it is made)
//! and [`HttpExchange`] (what it does), exported with
//! [`export_http_fault!`](crate::export_http_fault). One value is made per
//! request the fault applies to; it sees the request head, then the response
//! head, and answers each with [`Action`]s. A fault with state shared by
//! all its requests (a quota, say) implements [`SharedHttpFault`] and is
//! exported with [`export_shared_http_fault!`](crate::export_shared_http_fault):
//!
//! ```ignore
//! use faultgate_guest::http::{Action, HttpExchange, HttpFault, RequestHead, RequestMatch, action};
//! use faultgate_guest::{Attrs, ConnInfo, Description};
//!
//! /// Answers 418 to every matching request.
//! struct Teapot { when: RequestMatch }
//!
//! impl HttpFault for Teapot {
//!     fn describe() -> Description {
//!         RequestMatch::describe(Description::new("teapot", "Answers 418"))
//!     }
//!     fn new(_conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
//!         Ok(Teapot { when: RequestMatch::from_attrs(attrs)? })
//!     }
//! }
//!
//! impl HttpExchange for Teapot {
//!     fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
//!         if !self.when.matches(request) {
//!             return vec![Action::Pass];
//!         }
//!         vec![action::respond(418, "I'm a teapot\n")]
//!     }
//! }
//!
//! faultgate_guest::export_http_fault!(Teapot);
//! ```
//!
//! Bodies stream through the host untouched. A plugin whose description
//! asks for bytes (`Description::wants_bytes`) also sees request bodies of a
//! known length up to 1 MiB, in `RequestHead::body`.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::bindings::exports::faultgate::plugin::meta;
use crate::http_bindings::exports::faultgate::plugin::http as wit_http;
use crate::{
    Attrs, ConnInfo, Description, Direction, Value, attribute, stand_in_conn, validate_with,
};

pub use crate::http_bindings::exports::faultgate::plugin::http::{
    Action, Header, RequestHead, Response, ResponseHead,
};

/// What an exchange may ask of the host besides its actions (the
/// contract's `http-host`): edits to a passing response, from
/// `on_response`, and sending the request more than once, from
/// `on_request`. Each call is applied when the hook returns, if its
/// actions pass the exchange on.
pub use crate::http_bindings::faultgate::plugin::http_host as host;

/// What a fault does with one request and its response.
pub trait HttpExchange: 'static {
    /// Actions before the request goes upstream. Empty: pass it on.
    fn on_request(&mut self, request: &RequestHead) -> Vec<Action> {
        let _ = request;
        Vec::new()
    }

    /// Actions before the response goes back to the client. Empty: pass it.
    fn on_response(&mut self, response: &ResponseHead) -> Vec<Action> {
        let _ = response;
        Vec::new()
    }
}

/// An HTTP fault that keeps nothing between requests: one value per
/// request it applies to.
pub trait HttpFault: HttpExchange + Sized {
    /// Name (the toxic `type`), summary and attributes.
    fn describe() -> Description;

    /// Makes the fault for one request, or says which attribute is wrong.
    /// `conn.stream` is the stream the fault was attached to.
    fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String>;
}

/// An HTTP fault with state shared by every request it applies to, on
/// every connection: one value per attached toxic.
pub trait SharedHttpFault: Sized + 'static {
    /// What serves one request.
    type Exchange: HttpExchange;

    /// Name (the toxic `type`), summary and attributes.
    fn describe() -> Description;

    /// Makes the fault from its attributes, or says which one is wrong.
    fn new(attrs: &Attrs) -> Result<Self, String>;

    /// The exchange for one request; `conn.stream` is the stream the fault
    /// was attached to.
    fn open(fault: &Rc<Self>, conn: &ConnInfo) -> Result<Self::Exchange, String>;
}

/// An [`HttpFault`] as a [`SharedHttpFault`] whose shared state is its
/// attributes.
#[doc(hidden)]
pub struct PerRequest<F> {
    attrs: Attrs,
    fault: PhantomData<F>,
}

impl<F: HttpFault> SharedHttpFault for PerRequest<F> {
    type Exchange = F;

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

/// Shorthands for building actions.
pub mod action {
    use super::{Action, Header, Response};

    /// A plain-text response.
    pub fn respond(status: u16, body: &str) -> Action {
        Action::Respond(Response {
            status,
            headers: vec![Header {
                name: "content-type".into(),
                value: "text/plain; charset=utf-8".into(),
            }],
            body: body.as_bytes().to_vec(),
        })
    }

    pub fn delay_ms(millis: u64) -> Action {
        Action::Delay(millis.saturating_mul(1000))
    }
}

impl RequestHead {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// Which requests a fault applies to, from the attributes every built-in
/// HTTP fault shares: `method`, `path_prefix`, `path_regex` and `header`.
/// Every condition given must hold; none given matches every request.
#[derive(Debug, Clone, Default)]
pub struct RequestMatch {
    methods: Vec<String>,
    path_prefix: String,
    path_regex: Option<regex_lite::Regex>,
    header: Option<(String, Option<String>)>,
}

impl RequestMatch {
    /// Adds the matching attributes to a description.
    pub fn describe(description: Description) -> Description {
        description
            .attribute(attribute::text(
                "method",
                "",
                "only these methods, e.g. \"GET\" or \"GET,POST\" (empty: any)",
            ))
            .attribute(attribute::text(
                "path_prefix",
                "",
                "only paths starting with this, e.g. \"/git/team-a.git/\"",
            ))
            .attribute(attribute::text(
                "path_regex",
                "",
                "only paths matching this regular expression",
            ))
            .attribute(attribute::text(
                "header",
                "",
                "only requests with this header: \"Name\" (present) or \"Name: value\"",
            ))
    }

    /// Reads the matching attributes; errors name the attribute.
    pub fn from_attrs(attrs: &Attrs) -> Result<Self, String> {
        let methods = attrs
            .text("method", "")?
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = methods
            .iter()
            .find(|m| !m.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!("method: {bad:?} is not an HTTP method"));
        }
        let regex = attrs.text("path_regex", "")?;
        let path_regex = if regex.is_empty() {
            None
        } else {
            Some(
                regex_lite::Regex::new(&regex)
                    .map_err(|e| format!("path_regex: not a valid regular expression: {e}"))?,
            )
        };
        let header = attrs.text("header", "")?;
        let header = if header.trim().is_empty() {
            None
        } else {
            let (name, value) = match header.split_once(':') {
                Some((name, value)) => (name.trim(), Some(value.trim().to_owned())),
                None => (header.trim(), None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "header: expected \"Name\" or \"Name: value\", got {header:?}"
                ));
            }
            Some((name.to_owned(), value))
        };
        Ok(Self {
            methods,
            path_prefix: attrs.text("path_prefix", "")?,
            path_regex,
            header,
        })
    }

    pub fn matches(&self, request: &RequestHead) -> bool {
        let method = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&request.method));
        let prefix = request.path.starts_with(&self.path_prefix);
        let regex = self
            .path_regex
            .as_ref()
            .is_none_or(|r| r.is_match(&request.path));
        let header = match &self.header {
            None => true,
            Some((name, wanted)) => request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .any(|h| wanted.as_ref().is_none_or(|w| &h.value == w)),
        };
        method && prefix && regex && header
    }
}

/// When a matching fault acts: at the request when attached `upstream`, at
/// the response when attached `downstream`. Keeps what the request hook
/// found for the response hook.
#[derive(Debug, Clone)]
pub struct Trigger {
    when: RequestMatch,
    stream: Direction,
    matched: bool,
}

impl Trigger {
    pub fn new(conn: &ConnInfo, attrs: &Attrs) -> Result<Self, String> {
        Ok(Self {
            when: RequestMatch::from_attrs(attrs)?,
            stream: conn.stream,
            matched: false,
        })
    }

    /// Whether to act now, at the request.
    pub fn at_request(&mut self, request: &RequestHead) -> bool {
        self.matched = self.when.matches(request);
        self.matched && self.stream == Direction::Upstream
    }

    /// Whether to act now, at the response.
    pub fn at_response(&self) -> bool {
        self.matched && self.stream == Direction::Downstream
    }

    /// `act()` if the fault acts at this request, else nothing.
    pub fn on_request(
        &mut self,
        request: &RequestHead,
        act: impl FnOnce() -> Vec<Action>,
    ) -> Vec<Action> {
        if self.at_request(request) {
            act()
        } else {
            Vec::new()
        }
    }

    /// `act()` if the fault acts at this response, else nothing.
    pub fn on_response(&self, act: impl FnOnce() -> Vec<Action>) -> Vec<Action> {
        if self.at_response() {
            act()
        } else {
            Vec::new()
        }
    }
}

/// Ties a [`SharedHttpFault`] to the generated export traits.
#[doc(hidden)]
pub struct HttpPlugin<S>(PhantomData<S>);

#[doc(hidden)]
pub struct HttpFaultOf<S>(Rc<S>);

#[doc(hidden)]
pub struct ExchangeOf<E>(RefCell<E>);

impl<S: SharedHttpFault> meta::Guest for HttpPlugin<S> {
    fn describe() -> Description {
        S::describe()
    }

    fn validate(attributes: Vec<(String, Value)>) -> Result<(), String> {
        validate_with(&S::describe(), attributes, S::new)
    }
}

impl<S: SharedHttpFault> wit_http::Guest for HttpPlugin<S> {
    type Fault = HttpFaultOf<S>;
    type Exchange = ExchangeOf<S::Exchange>;
}

impl<S: SharedHttpFault> wit_http::GuestFault for HttpFaultOf<S> {
    fn create(attributes: Vec<(String, Value)>) -> Result<wit_http::Fault, String> {
        let attrs = Attrs::new(attributes, &S::describe())?;
        Ok(wit_http::Fault::new(HttpFaultOf(Rc::new(S::new(&attrs)?))))
    }

    fn open(&self, conn: ConnInfo) -> Result<wit_http::Exchange, String> {
        let exchange = S::open(&self.0, &conn)?;
        Ok(wit_http::Exchange::new(ExchangeOf(RefCell::new(exchange))))
    }
}

impl<E: HttpExchange> wit_http::GuestExchange for ExchangeOf<E> {
    fn on_request(&self, request: RequestHead) -> Vec<Action> {
        self.0.borrow_mut().on_request(&request)
    }

    fn on_response(&self, response: ResponseHead) -> Vec<Action> {
        self.0.borrow_mut().on_response(&response)
    }
}

/// Exports an [`HttpFault`] type (one value per request) as the plugin's
/// implementation of the contract's `http-plugin` world. Use it once, in
/// the crate's `lib.rs`.
#[macro_export]
macro_rules! export_http_fault {
    ($fault:ty) => {
        $crate::export_shared_http_fault!($crate::http::PerRequest<$fault>);
    };
}

/// Exports a [`SharedHttpFault`] type (one value per toxic) as the plugin's
/// implementation of the contract's `http-plugin` world.
#[macro_export]
macro_rules! export_shared_http_fault {
    ($fault:ty) => {
        type __FaultgateExportedHttpPlugin = $crate::http::HttpPlugin<$fault>;
        $crate::bindings::export!(__FaultgateExportedHttpPlugin with_types_in $crate::bindings);
        $crate::http_bindings::export!(__FaultgateExportedHttpPlugin with_types_in $crate::http_bindings);
    };
}
