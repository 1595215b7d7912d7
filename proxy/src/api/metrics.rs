//! `GET /metrics`: Prometheus text format.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::conn::Stats;

/// One per-proxy metric: name, Prometheus type, help text, and how to read it.
type Series = (&'static str, &'static str, &'static str, fn(&Stats) -> u64);

pub async fn render(State(registry): State<AppState>) -> impl IntoResponse {
    let proxies = registry.list().await;
    let mut out = String::new();
    let series: [Series; 6] = [
        (
            "faultgate_connections_total",
            "counter",
            "Connections accepted.",
            |s| s.connections_total.get(),
        ),
        (
            "faultgate_connections_open",
            "gauge",
            "Connections open now.",
            |s| s.connections_open.get(),
        ),
        (
            "faultgate_plugin_failures_total",
            "counter",
            "Connections (tcp) or requests (http) failed by a plugin that trapped, ran out of time or memory, or answered a bad step.",
            |s| s.plugin_failures.get(),
        ),
        (
            "faultgate_plugin_instances_total",
            "counter",
            "Plugin instances made: one per fault attached (or rebound to a replaced plugin), and one each time a failed one is made afresh.",
            |s| s.plugin_instances.get(),
        ),
        (
            "faultgate_http_requests_total",
            "counter",
            "HTTP requests received (proxies in http mode).",
            |s| s.http_requests.get(),
        ),
        (
            "faultgate_faults_injected_total",
            "counter",
            "Times a fault acted: a TCP fault applied to a connection direction, or an HTTP fault delayed, answered, reset or held a request.",
            |s| s.faults_injected.get(),
        ),
    ];
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for proxy in &proxies {
            let _ = writeln!(
                out,
                "{name}{{proxy=\"{}\"}} {}",
                proxy.name(),
                read(proxy.stats())
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP faultgate_toxics Faults attached now.\n# TYPE faultgate_toxics gauge"
    );
    for proxy in &proxies {
        let _ = writeln!(
            out,
            "faultgate_toxics{{proxy=\"{}\"}} {}",
            proxy.name(),
            proxy.chain().faults.len()
        );
    }
    let _ = writeln!(
        out,
        "# HELP faultgate_toxic_plugin_failures_total Instances of a toxic's plugin that failed (trapped, ran out of time or memory); each failure ends the connections the instance served.\n# TYPE faultgate_toxic_plugin_failures_total counter"
    );
    for proxy in &proxies {
        for fault in &proxy.chain().faults {
            let _ = writeln!(
                out,
                "faultgate_toxic_plugin_failures_total{{proxy=\"{}\",toxic=\"{}\"}} {}",
                proxy.name(),
                fault.name,
                fault.instance.failures().count()
            );
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
