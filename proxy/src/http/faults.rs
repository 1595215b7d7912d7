//! HTTP faults on one request: which apply, their plugin instances, and
//! carrying out their actions.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::sync::watch;

use super::repeat::Repeat;
use super::{Body, edits, full, per_request};
use crate::clock;
use crate::conn::Connection;
use crate::faults::{Chain, Fault, Held};
use crate::plugin_host::{
    Action, AnyInstance, ConnContext, Exchange, Fresh, Header, HttpEdits, PluginError,
    PluginResponse, RequestHead, ResponseHead,
};

/// What the faults decided for one side of an exchange.
pub(super) enum Outcome {
    /// Go on.
    Pass,
    /// Answer this instead.
    Respond(Response<Body>),
    /// Reset the client's connection.
    Reset,
}

/// The HTTP faults that apply to one request, in chain order.
pub(super) struct RequestFaults<'a> {
    conn: &'a Connection,
    number: u64,
    arrived: Instant,
    /// Faults picked by their toxicity; instances are made at the request.
    picked: Vec<(Arc<Fault>, u64)>,
    /// Instances made at the request, for the response.
    open: Vec<(Arc<Fault>, Exchange)>,
    chain: watch::Receiver<Arc<Chain>>,
    /// How often to send the request and which answer the client gets, as
    /// the last fault that asked (`repeat-request`) said.
    repeat: Option<Repeat>,
}

impl<'a> RequestFaults<'a> {
    pub fn new(conn: &'a Connection, chain: &Chain, number: u64, arrived: Instant) -> Self {
        let picked = chain
            .faults
            .iter()
            .filter(|f| per_request(f.plugin.kind()) && f.admits(conn.client.ip()))
            .filter_map(|f| Some((f.clone(), f.roll(conn.seed, conn.id, number)?)))
            .collect();
        Self {
            conn,
            number,
            arrived,
            picked,
            open: Vec::new(),
            chain: conn.chain.clone(),
            repeat: None,
        }
    }

    /// Whether a fault that applies wants to see request bodies.
    pub fn want_body(&self) -> bool {
        self.picked
            .iter()
            .any(|(fault, _)| fault.plugin.description().wants_bytes)
    }

    /// How often the faults asked the request to be sent, if more than once.
    pub fn repeat(&self) -> Option<Repeat> {
        self.repeat
    }

    /// `body`: the request's body, read whole, for faults that want it.
    pub async fn on_request(
        &mut self,
        head: &RequestHead,
        body: Option<&Bytes>,
    ) -> Result<Outcome, PluginError> {
        let with_body = body.map(|body| RequestHead {
            body: Some(body.to_vec()),
            ..head.clone()
        });
        for (fault, random_seed) in std::mem::take(&mut self.picked) {
            let head = match (&with_body, fault.plugin.description().wants_bytes) {
                (Some(with_body), true) => with_body,
                _ => head,
            };
            let context = self.conn.plugin_context(fault.stream, random_seed);
            let (exchange, Fresh(fresh)) = open_exchange(&fault, context).await?;
            if fresh {
                self.conn.stats.plugin_instances.inc();
            }
            let (actions, edits, exchange) = call(exchange, Hook::Request(head.clone())).await?;
            let repeat = edits::repeat_of(&fault, edits)?;
            let outcome = self.carry_out(&fault, actions, repeat.is_some()).await?;
            self.open.push((fault, exchange));
            if !matches!(outcome, Outcome::Pass) {
                return Ok(outcome);
            }
            self.repeat = repeat.or(self.repeat);
        }
        Ok(Outcome::Pass)
    }

    /// The faults see the response's head; one that passes it may have
    /// edited it (`http-host`), and the next sees it edited.
    pub async fn on_response(
        &mut self,
        response: &mut Response<Body>,
    ) -> Result<Outcome, PluginError> {
        for (fault, exchange) in std::mem::take(&mut self.open) {
            let head = response_head(response);
            let (actions, edits, _) = call(exchange, Hook::Response(head)).await?;
            let edits = edits::response_edits(&fault, edits)?;
            let outcome = self.carry_out(&fault, actions, !edits.is_empty()).await?;
            if !matches!(outcome, Outcome::Pass) {
                return Ok(outcome);
            }
            edits::apply(&fault, response, edits)?;
        }
        Ok(Outcome::Pass)
    }

    /// Runs one fault's actions. Delays count from the request's arrival.
    /// When the fault is removed or replaced while its actions wait, they
    /// are abandoned and the exchange goes on.
    async fn carry_out(
        &mut self,
        fault: &Arc<Fault>,
        actions: Vec<Action>,
        edited: bool,
    ) -> Result<Outcome, PluginError> {
        let mut cursor = self.arrived;
        // Counted when the fault starts to act, not when it is done: a
        // request it holds may never be done.
        let mut acted = false;
        if edited {
            self.count_acted(fault, &mut acted);
        }
        for action in actions {
            match action {
                Action::Pass => break,
                Action::Delay(micros) => {
                    self.count_acted(fault, &mut acted);
                    cursor = clock::add_micros(cursor, micros);
                    // A time already past is not waited for: a timer set
                    // for it would fire only at the timer's next tick, up
                    // to a millisecond later (a `delay` of 0 cost that).
                    if cursor > Instant::now() && !self.wait(fault, Some(cursor)).await {
                        break;
                    }
                }
                Action::Drop => {
                    self.count_acted(fault, &mut acted);
                    let _held = fault.holding.hold(Held::Request);
                    self.wait(fault, None).await;
                    break;
                }
                Action::Respond(answer) => {
                    self.count_acted(fault, &mut acted);
                    return Ok(Outcome::Respond(plugin_response(fault, answer)?));
                }
                Action::Reset => {
                    self.count_acted(fault, &mut acted);
                    return Ok(Outcome::Reset);
                }
            }
        }
        Ok(Outcome::Pass)
    }

    /// Counts `fault` as having acted on this request, once.
    fn count_acted(&self, fault: &Fault, acted: &mut bool) {
        if std::mem::replace(acted, true) {
            return;
        }
        self.conn.stats.faults_injected.inc();
        tracing::debug!(proxy = %self.conn.proxy, conn = self.conn.id, request = self.number, toxic = %fault.name, "fault acted");
    }

    /// Waits until `until` (forever if `None`); returns false if the fault
    /// left the chain first.
    async fn wait(&mut self, fault: &Fault, until: Option<Instant>) -> bool {
        let sleep = async {
            match until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let gone = async {
            loop {
                if !self
                    .chain
                    .borrow_and_update()
                    .faults
                    .iter()
                    .any(|f| f.id == fault.id)
                {
                    return;
                }
                if self.chain.changed().await.is_err() {
                    // The proxy is gone; its connections are closing.
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            _ = sleep => true,
            _ = gone => false,
        }
    }
}

/// Opens an exchange for one request in the fault's instance. The call
/// runs to its end even if the client goes away meanwhile: a call abandoned
/// half-way would end the instance every connection shares.
async fn open_exchange(
    fault: &Fault,
    context: ConnContext,
) -> Result<(Exchange, Fresh), PluginError> {
    let (AnyInstance::Http(shared), fresh) = fault.instance.get().await? else {
        return Err(PluginError::Call {
            plugin: fault.plugin.name().to_owned(),
            what: "open",
            reason: "used as an HTTP fault, but it is not one".into(),
        });
    };
    let exchange = tokio::spawn(async move { Exchange::open(&shared, &context).await })
        .await
        .unwrap_or_else(|e| Err(abandoned(e)))?;
    Ok((exchange, fresh))
}

/// A hook of an exchange, with what it is shown.
enum Hook {
    Request(RequestHead),
    Response(ResponseHead),
}

/// Runs one hook of `exchange` in a task of its own, so that the call runs
/// to its end even if the request is dropped (the client went away); gives
/// the exchange back with the actions and what the hook asked of the host.
async fn call(
    mut exchange: Exchange,
    hook: Hook,
) -> Result<(Vec<Action>, HttpEdits, Exchange), PluginError> {
    tokio::spawn(async move {
        let answer = match &hook {
            Hook::Request(head) => exchange.on_request(head).await,
            Hook::Response(head) => exchange.on_response(head).await,
        };
        answer.map(|(actions, edits)| (actions, edits, exchange))
    })
    .await
    .unwrap_or_else(|e| Err(abandoned(e)))
}

fn abandoned(error: tokio::task::JoinError) -> PluginError {
    PluginError::Failed {
        plugin: String::new(),
        reason: format!("the call's task ended: {error}"),
    }
}

/// The head of a request, as plugins see it.
pub(super) fn request_head<B>(request: &Request<B>) -> RequestHead {
    RequestHead {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().unwrap_or("").to_owned(),
        headers: headers_for_plugin(request.headers()),
        body: None,
    }
}

/// The head of a response, as plugins see it.
fn response_head<B>(response: &Response<B>) -> ResponseHead {
    ResponseHead {
        status: response.status().as_u16(),
        headers: headers_for_plugin(response.headers()),
    }
}

fn headers_for_plugin(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect()
}

/// A response a plugin asked for; a status or header that HTTP cannot carry
/// fails the request (as any bad plugin answer does), naming it.
fn plugin_response(fault: &Fault, answer: PluginResponse) -> Result<Response<Body>, PluginError> {
    let bad = |reason: String| PluginError::BadStep {
        plugin: fault.plugin.name().to_owned(),
        reason,
    };
    let status = StatusCode::from_u16(answer.status)
        .map_err(|_| bad(format!("respond: {} is not an HTTP status", answer.status)))?;
    let mut response = Response::new(full(answer.body.into()));
    *response.status_mut() = status;
    for Header { name, value } in answer.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("respond: {name:?} is not a header name")))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            bad(format!(
                "respond: header {name}: {value:?} is not a header value"
            ))
        })?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}
