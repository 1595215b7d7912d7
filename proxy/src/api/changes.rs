//! Every change the API makes to proxies and faults, told twice: as a
//! `tracing` line at info (proxy, toxic, type, what changed, which call)
//! and as an event in the live page's [`EventLog`].
//!
//! A layer around the routes rather than a line in each handler: it sees
//! the call, the state before it and the answer after it, so handlers stay
//! as they are and nothing is recorded for a call that was refused (a
//! non-2xx answer changed nothing).

use std::collections::HashMap;
use std::sync::Arc;

use axum::RequestExt;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::events::EventLog;

/// The largest answer read back to describe a change (the API's own JSON).
const ANSWER_LIMIT: usize = 16 << 20;

/// What the layer needs: the registry to look before, the log to write.
#[derive(Clone)]
pub struct Recorder {
    pub registry: AppState,
    pub events: Arc<EventLog>,
}

/// The state a change is compared against.
enum Before {
    Nothing,
    Toxic(Option<Value>),
    /// The chain's faults: name and type.
    Chain(Vec<(String, String)>),
    Enabled(Option<bool>),
}

pub async fn record(
    State(recorder): State<Recorder>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if !matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(request).await;
    }
    let params = request
        .extract_parts::<Path<HashMap<String, String>>>()
        .await
        .map(|Path(p)| p)
        .unwrap_or_default();
    let route = route(request.uri().path(), &params);
    let call = format!("{method} {}", request.uri().path());
    let proxy = params.get("proxy").cloned();
    let toxic = params.get("toxic").cloned();
    let before = recorder
        .before(route, proxy.as_deref(), toxic.as_deref())
        .await;

    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ANSWER_LIMIT).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let change = Change {
        events: &recorder.events,
        call: &call,
        proxy: proxy.as_deref(),
        toxic: toxic.as_deref(),
    };
    change.describe(&method, route, before, &answer);
    Response::from_parts(parts, Body::from(bytes))
}

/// The route a request took, as the router writes it.
fn route(path: &str, params: &HashMap<String, String>) -> &'static str {
    match (params.contains_key("proxy"), params.contains_key("toxic")) {
        (true, true) => "/proxies/{proxy}/toxics/{toxic}",
        // `/proxies/{proxy}/toxics`: one segment more than the proxy's own.
        (true, false) if path.trim_matches('/').split('/').count() == 3 => {
            "/proxies/{proxy}/toxics"
        }
        (true, false) => "/proxies/{proxy}",
        _ => match path {
            "/proxies" => "/proxies",
            "/populate" => "/populate",
            "/reset" => "/reset",
            _ => "",
        },
    }
}

impl Recorder {
    async fn before(&self, route: &str, proxy: Option<&str>, toxic: Option<&str>) -> Before {
        let Some(proxy) = proxy else {
            return Before::Nothing;
        };
        let Ok(found) = self.registry.get(proxy).await else {
            return Before::Nothing;
        };
        match route {
            "/proxies/{proxy}/toxics/{toxic}" => Before::Toxic(
                toxic
                    .and_then(|t| found.chain().find(t).map(|f| f.view()))
                    .and_then(|v| serde_json::to_value(v).ok()),
            ),
            "/proxies/{proxy}/toxics" => Before::Chain(
                found
                    .chain()
                    .faults
                    .iter()
                    .map(|f| (f.name.clone(), f.view().kind))
                    .collect(),
            ),
            "/proxies/{proxy}" => Before::Enabled(Some(found.enabled())),
            _ => Before::Nothing,
        }
    }
}

/// One change that was made.
struct Change<'a> {
    events: &'a EventLog,
    call: &'a str,
    proxy: Option<&'a str>,
    toxic: Option<&'a str>,
}

impl Change<'_> {
    fn describe(&self, method: &Method, route: &str, before: Before, answer: &Value) {
        match (route, method, before) {
            ("/proxies/{proxy}/toxics", &Method::POST, _) => {
                let name = text(&answer["name"]);
                self.fault(
                    "toxic_added",
                    answer,
                    &name,
                    format!("added {}", toxic_words(answer)),
                );
            }
            ("/proxies/{proxy}/toxics", &Method::PUT, Before::Chain(old_faults)) => {
                let new_faults: Vec<&Value> = answer
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let new: Vec<String> = new_faults.iter().map(|t| text(&t["name"])).collect();
                let old: Vec<String> = old_faults.iter().map(|(name, _)| name.clone()).collect();
                // Each fault the replacement took away or put on, told as
                // a single change would be, then the replacement as a whole.
                for (name, kind) in old_faults.iter().filter(|(name, _)| !new.contains(name)) {
                    tracing::info!(proxy = self.proxy, toxic = name.as_str(), r#type = %kind, change = "removed by replacing the chain", call = self.call, "fault changed");
                }
                for fault in new_faults
                    .iter()
                    .filter(|t| !old.contains(&text(&t["name"])))
                {
                    tracing::info!(proxy = self.proxy, toxic = text(&fault["name"]).as_str(), r#type = %text(&fault["type"]), change = %format!("added {} by replacing the chain", toxic_words(fault)), call = self.call, "fault changed");
                }
                let message = format!(
                    "chain replaced: [{}] -> [{}]",
                    old.join(", "),
                    new.join(", ")
                );
                tracing::info!(
                    proxy = self.proxy,
                    before = %old.join(","),
                    after = %new.join(","),
                    call = self.call,
                    "faults replaced"
                );
                self.events
                    .push("toxics_replaced", self.proxy, None, message);
            }
            ("/proxies/{proxy}/toxics/{toxic}", &Method::DELETE, Before::Toxic(old)) => {
                let old = old.unwrap_or(Value::Null);
                let name = self.toxic.unwrap_or_default().to_owned();
                self.fault(
                    "toxic_removed",
                    &old,
                    &name,
                    format!("removed {}", toxic_words(&old)),
                );
            }
            ("/proxies/{proxy}/toxics/{toxic}", _, Before::Toxic(old)) => {
                let old = old.unwrap_or(Value::Null);
                let name = text(&answer["name"]);
                let message = format!("updated: {}", differences(&old, answer));
                self.fault("toxic_updated", answer, &name, message);
            }
            ("/proxies/{proxy}", &Method::DELETE, _) => {
                self.proxy_change("proxy_deleted", "deleted".into());
            }
            ("/proxies/{proxy}", _, Before::Enabled(was)) => {
                let now = answer["enabled"].as_bool();
                match (was, now) {
                    (Some(false), Some(true)) => {
                        self.proxy_change("proxy_enabled", "enabled".into())
                    }
                    (Some(true), Some(false)) => self.proxy_change(
                        "proxy_disabled",
                        "disabled: connections refused, open ones closed".into(),
                    ),
                    _ => self.proxy_change(
                        "proxy_updated",
                        format!(
                            "updated: listen {}, upstream {}",
                            text(&answer["listen"]),
                            text(&answer["upstream"])
                        ),
                    ),
                }
            }
            ("/proxies", &Method::POST, _) => {
                let name = text(&answer["name"]);
                let message = format!(
                    "created: listen {}, upstream {}, mode {}",
                    text(&answer["listen"]),
                    text(&answer["upstream"]),
                    text(&answer["mode"])
                );
                tracing::info!(proxy = %name, call = self.call, "{message}");
                self.events
                    .push("proxy_created", Some(&name), None, message);
            }
            ("/populate", _, _) => {
                let names: Vec<String> = answer["proxies"]
                    .as_array()
                    .map(|a| a.iter().map(|p| text(&p["name"])).collect())
                    .unwrap_or_default();
                let message = format!("populated: {}", names.join(", "));
                tracing::info!(call = self.call, "{message}");
                self.events.push("populated", None, None, message);
            }
            ("/reset", _, _) => {
                let message = "reset: every proxy enabled, every fault removed".to_owned();
                tracing::info!(call = self.call, "{message}");
                self.events.push("reset", None, None, message);
            }
            _ => {}
        }
    }

    /// A change to one fault: logged with its proxy, name and type.
    fn fault(&self, kind: &'static str, view: &Value, name: &str, message: String) {
        tracing::info!(
            proxy = self.proxy,
            toxic = name,
            r#type = %text(&view["type"]),
            change = %message,
            call = self.call,
            "fault changed"
        );
        self.events.push(kind, self.proxy, Some(name), message);
    }

    fn proxy_change(&self, kind: &'static str, message: String) {
        tracing::info!(proxy = self.proxy, change = %message, call = self.call, "proxy changed");
        self.events.push(kind, self.proxy, None, message);
    }
}

/// A toxic in words: `latency (downstream, toxicity 1, latency=500)`.
fn toxic_words(view: &Value) -> String {
    let attributes: Vec<String> = view["attributes"]
        .as_object()
        .map(|a| a.iter().map(|(k, v)| format!("{k}={}", text(v))).collect())
        .unwrap_or_default();
    format!(
        "{} ({}, toxicity {}{}{})",
        text(&view["type"]),
        text(&view["stream"]),
        text(&view["toxicity"]),
        if attributes.is_empty() { "" } else { ", " },
        attributes.join(", ")
    )
}

/// What differs between two views of a toxic: `latency 100 -> 500`.
fn differences(old: &Value, new: &Value) -> String {
    let mut changes = Vec::new();
    for key in ["stream", "toxicity", "every"] {
        if old[key] != new[key] {
            changes.push(format!("{key} {} -> {}", text(&old[key]), text(&new[key])));
        }
    }
    let empty = serde_json::Map::new();
    let old_attributes = old["attributes"].as_object().unwrap_or(&empty);
    let new_attributes = new["attributes"].as_object().unwrap_or(&empty);
    for (key, value) in new_attributes {
        let was = old_attributes.get(key).unwrap_or(&Value::Null);
        if was != value {
            changes.push(format!("{key} {} -> {}", text(was), text(value)));
        }
    }
    if changes.is_empty() {
        "nothing".to_owned()
    } else {
        changes.join(", ")
    }
}

/// A JSON value as text: strings without quotes, nothing as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
