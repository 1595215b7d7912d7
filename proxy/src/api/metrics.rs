//! `GET /metrics`: Prometheus text format.
//!
//! Label values are escaped as the format says (`\\`, `\"`, `\n`): a name
//! is whatever a client chose, and one bad line makes Prometheus refuse the
//! whole page.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::server::ServerStats;
use crate::conn::{Counter, Stats};
use crate::faults::Holding;
use crate::listener::Proxy;

/// One per-proxy metric: name, Prometheus type, help text, and how to read it.
type Series = (&'static str, &'static str, &'static str, fn(&Stats) -> u64);

/// A label value as the text format writes it.
fn label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

pub async fn render(
    State(registry): State<AppState>,
    State(server): State<Arc<ServerStats>>,
) -> impl IntoResponse {
    let proxies = registry.list().await;
    let mut out = String::new();
    let series: [Series; 7] = [
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
            "faultgate_plugin_instance_limit_refusals_total",
            "counter",
            "Connections (tcp) or requests (http) refused because a fault's plugin instance had to be made afresh while --max-plugin-instances were in use.",
            |s| s.instance_limit_refusals.get(),
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
                label(proxy.name()),
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
            label(proxy.name()),
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
                label(proxy.name()),
                label(&fault.name),
                fault.instance.failures().count()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP faultgate_connections_refused_total Connections closed as soon as they were accepted: at the process's open-file limit (open_files).\n# TYPE faultgate_connections_refused_total counter"
    );
    for proxy in &proxies {
        let _ = writeln!(
            out,
            "faultgate_connections_refused_total{{proxy=\"{}\",reason=\"open_files\"}} {}",
            label(proxy.name()),
            proxy.stats().refused_open_files.get()
        );
    }
    toxic_holds(&mut out, &proxies);
    api_connections(&mut out, &server);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// One per-toxic gauge of holds: name, help text, and how to read it.
type HoldGauge = (&'static str, &'static str, fn(&Holding) -> u64);

/// What each toxic holds now: the gauges that show a system under test
/// really ran into a hang.
fn toxic_holds(out: &mut String, proxies: &[Arc<Proxy>]) {
    let gauges: [HoldGauge; 2] = [
        (
            "faultgate_toxic_connections_held",
            "Connections a toxic is holding now: their data in the toxic's direction stopped by its hold step (blackhole and the like), until the toxic is removed or the connection ends.",
            |h| h.connections(),
        ),
        (
            "faultgate_toxic_requests_held",
            "HTTP requests a toxic is holding now, unanswered (http_blackhole and the like), until the toxic is removed or the client goes away.",
            |h| h.requests(),
        ),
    ];
    for (name, help, read) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for proxy in proxies {
            for fault in &proxy.chain().faults {
                let _ = writeln!(
                    out,
                    "{name}{{proxy=\"{}\",toxic=\"{}\",type=\"{}\"}} {}",
                    label(proxy.name()),
                    label(&fault.name),
                    label(fault.plugin.name()),
                    read(&fault.holding)
                );
            }
        }
    }
}

/// A counter by reason: name, help text, and each reason's counter.
type CounterFamily<'a> = (
    &'static str,
    &'static str,
    &'a [(&'static str, &'a Counter)],
);

/// The control API's own connections.
fn api_connections(out: &mut String, server: &ServerStats) {
    let _ = writeln!(
        out,
        "# HELP faultgate_api_connections_open Control API connections open now.\n# TYPE faultgate_api_connections_open gauge\nfaultgate_api_connections_open {}",
        server.open.get()
    );
    let families: [CounterFamily; 2] = [
        (
            "faultgate_api_connections_refused_total",
            "Control API connections answered 503 and closed: every one open was answering a request at --max-api-connections (connection_limit), or the process was at its open-file limit with the API's reserve of descriptors used up (open_files).",
            &[
                ("connection_limit", &server.refused_at_limit),
                ("open_files", &server.refused_open_files),
            ],
        ),
        (
            "faultgate_api_connections_closed_total",
            "Control API connections faultgate closed: a request head not complete within --api-header-timeout of its first byte (header_timeout), nothing moving for --api-idle-timeout (idle_timeout), the one quiet longest closed to make way for a new one at --max-api-connections (evicted).",
            &[
                ("header_timeout", &server.closed_header_timeout),
                ("idle_timeout", &server.closed_idle),
                ("evicted", &server.evicted),
            ],
        ),
    ];
    for (name, help, reasons) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (reason, counter) in reasons {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", counter.get());
        }
    }
}
