// faultgate's live page: polls the control API it was served from (GET
// /proxies, /stats, /events, and /proxies/{p}/connections where that
// answers), keeps a few minutes of rates in memory, and draws them. It
// only reads; every element is built with textContent, never from HTML.
"use strict";

const POLL_MS = 1000;
const HISTORY = 300; // samples: five minutes at one a second
const CONNECTIONS_RETRY_MS = 10000; // after a 404, before asking again
const SERIES = [
  ["bytes_upstream", "bytes/s to upstream", formatBytes],
  ["bytes_downstream", "bytes/s to client", formatBytes],
  ["connections", "connections/s", formatRate],
  ["faults", "faults acting/s", formatRate],
];

const state = {
  lastEventId: 0,
  previous: null, // the last /stats answer
  history: new Map(), // proxy -> { series -> [numbers] }
  connectionsListed: new Map(), // proxy -> time a list may be asked again
  downSince: null,
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function formatBytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB/s";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB/s";
  return Math.round(n) + " B/s";
}
function formatRate(n) { return (n >= 10 ? Math.round(n) : n.toFixed(1)) + "/s"; }
function formatValue(v) { return typeof v === "string" ? v : JSON.stringify(v); }
function clock(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "omit", signal: AbortSignal.timeout(4000) });
  if (!response.ok) {
    const error = new Error(path + " answered " + response.status);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function setStatus(up, text) {
  const status = document.getElementById("status");
  status.className = "status " + (up ? "up" : "down");
  status.textContent = text;
  document.body.dataset.connected = up ? "yes" : "no";
}

// Rates per second from two /stats readings; a counter that went down
// (faultgate restarted) starts again from zero.
function record(stats) {
  const previous = state.previous;
  state.previous = stats;
  if (!previous) return;
  const seconds = Math.max((stats.at_ms - previous.at_ms) / 1000, 0.001);
  for (const [name, now] of Object.entries(stats.proxies)) {
    const before = previous.proxies[name];
    if (!before) continue;
    const rate = (key) => Math.max(now[key] - before[key], 0) / seconds;
    let series = state.history.get(name);
    if (!series) {
      series = Object.fromEntries(SERIES.map(([key]) => [key, []]));
      state.history.set(name, series);
    }
    const sample = {
      bytes_upstream: rate("bytes_upstream"),
      bytes_downstream: rate("bytes_downstream"),
      connections: rate("connections_total"),
      faults: rate("faults_injected"),
    };
    for (const [key] of SERIES) {
      series[key].push(sample[key]);
      if (series[key].length > HISTORY) series[key].shift();
    }
  }
  for (const name of state.history.keys()) {
    if (!(name in stats.proxies)) state.history.delete(name);
  }
}

function chart(key, label, format, values) {
  const last = values.length ? values[values.length - 1] : 0;
  const peak = Math.max(1, ...values);
  // The first minute fills the chart; after that it scrolls, up to HISTORY.
  const width = Math.max(values.length, 60) - 1;
  const points = values
    .map((v, i) => `${width - (values.length - 1 - i)},${(48 - (v / peak) * 46 - 1).toFixed(1)}`)
    .join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} 48`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label}, last ${Math.round(HISTORY / 60)} minutes`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  return el("div", { class: "chart", "data-chart": key, "data-last": String(last), "data-peak": String(Math.max(...values, 0)), "data-samples": String(values.length) },
    el("div", { class: "label" }, el("span", {}, label), el("span", { class: "value" }, format(last))),
    svg);
}

function faultsTable(toxics) {
  if (!toxics.length) return el("p", { class: "quiet" }, "No faults.");
  const rows = toxics.map((t) => {
    const attributes = Object.entries(t.attributes || {}).map(([k, v]) => `${k}=${formatValue(v)}`).join(", ");
    const failed = t.plugin_failures ? ` · plugin failed ${t.plugin_failures}×: ${t.plugin_last_failure || ""}` : "";
    return el("tr", { "data-toxic": t.name },
      el("td", {}, el("strong", {}, t.name)),
      el("td", {}, t.type),
      el("td", {}, t.stream),
      el("td", {}, t.every ? `every ${t.every}` : `toxicity ${t.toxicity}`),
      el("td", {}, el("code", {}, attributes || "-"), failed));
  });
  return el("table", { class: "faults" },
    el("thead", {}, el("tr", {}, ...["fault", "type", "stream", "applies to", "attributes"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

function connectionsView(name, listed, counters) {
  if (Array.isArray(listed)) {
    if (!listed.length) return el("p", { class: "connections quiet", "data-connections": "list" }, "No connections open.");
    const rows = listed.map((c) => el("tr", { "data-connection": String(c.id) },
      el("td", {}, String(c.id)), el("td", {}, c.client), el("td", {}, c.upstream),
      el("td", {}, (c.age_ms / 1000).toFixed(1) + " s"),
      el("td", {}, `${c.bytes_upstream} ↑ / ${c.bytes_downstream} ↓`),
      el("td", {}, (c.toxics || []).join(", ") || "-", c.held ? " (held)" : "")));
    return el("table", { class: "connections", "data-connections": "list" },
      el("thead", {}, el("tr", {}, ...["id", "client", "upstream", "age", "bytes", "faults"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows));
  }
  const open = counters ? counters.connections_open : 0;
  return el("p", { class: "connections", "data-connections": "count" },
    `${open} connection${open === 1 ? "" : "s"} open`,
    counters ? ` (${counters.connections_total} in all)` : "");
}

async function connectionLists(names) {
  const lists = new Map();
  const now = Date.now();
  await Promise.all(names.map(async (name) => {
    if ((state.connectionsListed.get(name) || 0) > now) return;
    try {
      lists.set(name, await getJson(`/proxies/${encodeURIComponent(name)}/connections`));
    } catch (error) {
      if (error.status) state.connectionsListed.set(name, now + CONNECTIONS_RETRY_MS);
      else throw error;
    }
  }));
  return lists;
}

function renderProxies(proxies, stats, lists) {
  const names = Object.keys(proxies).sort();
  document.getElementById("no-proxies").hidden = names.length > 0;
  const cards = names.map((name) => {
    const p = proxies[name];
    const series = state.history.get(name) || {};
    return el("article", { class: "proxy" + (p.enabled ? "" : " disabled"), "data-proxy": name },
      el("div", { class: "proxy-head" },
        el("h3", {}, name),
        el("span", { class: "where" }, `${p.listen} → ${p.upstream}`),
        el("span", { class: "badge" }, p.mode || "tcp"),
        el("span", { class: "badge " + (p.enabled ? "on" : "off") }, p.enabled ? "enabled" : "disabled")),
      faultsTable(p.toxics || []),
      connectionsView(name, lists.get(name), stats.proxies[name]),
      el("div", { class: "charts" }, ...SERIES.map(([key, label, format]) => chart(key, label, format, series[key] || []))));
  });
  document.getElementById("proxies").replaceChildren(...cards);
}

function renderEvents(answer) {
  const list = document.getElementById("events");
  for (const e of answer.events) {
    list.prepend(el("li", { "data-kind": e.kind },
      el("time", { datetime: new Date(e.at_ms).toISOString() }, clock(e.at_ms)),
      el("span", { class: "kind " + e.kind }, e.kind.replace(/_/g, " ")),
      el("span", {}, [e.proxy, e.toxic].filter(Boolean).join(" / "), e.proxy ? ": " : "", e.message)));
  }
  while (list.children.length > 256) list.lastElementChild.remove();
  document.getElementById("no-events").hidden = list.children.length > 0;
  state.lastEventId = answer.last_id;
}

async function poll() {
  try {
    const [proxies, stats, events] = await Promise.all([
      getJson("/proxies"), getJson("/stats"), getJson(`/events?after=${state.lastEventId}`),
    ]);
    if (events.last_id < state.lastEventId) {
      // A new faultgate: its ids start again, and the old events are not its.
      document.getElementById("events").replaceChildren();
      state.lastEventId = 0;
      events.events = (await getJson("/events?after=0")).events;
    }
    record(stats);
    const lists = await connectionLists(Object.keys(proxies));
    renderProxies(proxies, stats, lists);
    renderEvents(events);
    state.downSince = null;
    setStatus(true, `connected · updated ${clock(stats.at_ms)}`);
  } catch (error) {
    if (state.downSince === null) state.downSince = Date.now();
    state.previous = null;
    setStatus(false, `faultgate is not answering since ${clock(state.downSince)} (${error.message}); trying again every second`);
  }
}

async function loop() {
  for (;;) {
    const started = Date.now();
    await poll();
    await new Promise((resolve) => setTimeout(resolve, Math.max(POLL_MS - (Date.now() - started), 100)));
  }
}

loop();
