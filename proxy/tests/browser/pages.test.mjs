// The live page and the HTML report, opened in headless Chromium as a
// person would: run by proxy/tests/browser.rs, which passes the faultgate
// binary (FAULTGATE_BIN) and where to keep screenshots (ARTIFACTS).
//
// The live page: a faultgate with a TCP proxy to an echo server and traffic
// going through it; the proxy is listed, a fault added through the API
// appears without a reload, the byte chart moves, the open connections are
// shown; faultgate stopped, the page says so; started again, it recovers.
// The report: a real failing run (a delay fault makes a wait_until miss its
// bound) and a scenario whose stack is not reachable.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

const BIN = process.env.FAULTGATE_BIN;
const ARTIFACTS = process.env.ARTIFACTS;
assert.ok(BIN && ARTIFACTS, "FAULTGATE_BIN and ARTIFACTS must be set");
mkdirSync(ARTIFACTS, { recursive: true });

// The flags that work on a machine with no network beyond loopback.
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (what) => console.log(`# ${what}`);

async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

async function api(base, method, url, body) {
  const response = await fetch(base + url, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

function startFaultgate(port) {
  const child = spawn(BIN, ["serve", "--api", `127.0.0.1:${port}`, "--no-plugin-cache"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => { log = (log + d).slice(-20000); });
  child.log = () => log;
  return child;
}

async function ready(base, child) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`faultgate exited: ${child.log()}`);
    try { if ((await api(base, "GET", "/version")).status === 200) return; } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error(`faultgate did not answer within 30s: ${child.log()}`);
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(10000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

// Traffic through the proxy: one connection that stays open and echoes a
// chunk every 100 ms. Returns a function that stops it.
function traffic(address) {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  let socket = null;
  let stopped = false;
  const chunk = Buffer.alloc(16 << 10, 120);
  const connect = () => {
    if (stopped) return;
    socket = net.connect(port, host);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => { if (!stopped) setTimeout(connect, 200); });
  };
  connect();
  const timer = setInterval(() => { if (socket && socket.writable) socket.write(chunk); }, 100);
  return () => { stopped = true; clearInterval(timer); if (socket) socket.destroy(); };
}

async function livePage(browser) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const echo = net.createServer((s) => { s.on("error", () => {}); s.pipe(s); });
  await new Promise((r) => echo.listen(0, "127.0.0.1", r));
  let fg = startFaultgate(port);
  try {
    await ready(base, fg);
    const created = await api(base, "POST", "/proxies", {
      name: "echo", listen: "127.0.0.1:0", upstream: `127.0.0.1:${echo.address().port}`,
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const stopTraffic = traffic(created.json.listen);
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const consoleErrors = [];
      page.on("pageerror", (e) => consoleErrors.push(String(e)));
      await page.goto(`${base}/ui`);

      step("the proxy is listed, with its addresses");
      const card = page.locator('[data-proxy="echo"]');
      await card.waitFor({ timeout: 10000 });
      const head = await card.locator(".proxy-head").innerText();
      assert.ok(head.includes(created.json.listen) && head.includes("enabled") && head.includes("tcp"), head);
      assert.equal(await page.locator("body").getAttribute("data-connected"), "yes");

      step("the byte chart moves");
      const chart = card.locator('[data-chart="bytes_downstream"]');
      await page.waitForFunction(() => {
        const c = document.querySelector('[data-proxy="echo"] [data-chart="bytes_downstream"]');
        return c && Number(c.dataset.last) > 0;
      }, null, { timeout: 15000 });
      const samples = Number(await chart.getAttribute("data-samples"));
      const points = await chart.locator("polyline").getAttribute("points");
      await page.waitForFunction((before) => {
        const c = document.querySelector('[data-proxy="echo"] [data-chart="bytes_downstream"]');
        return Number(c.dataset.samples) > before;
      }, samples, { timeout: 10000 });
      assert.notEqual(await chart.locator("polyline").getAttribute("points"), points, "the chart's line did not change");
      assert.ok(Number(await card.locator('[data-chart="bytes_upstream"]').getAttribute("data-last")) > 0);

      step("the open connections: the list where the API has it, else the count");
      const listed = await api(base, "GET", "/proxies/echo/connections");
      const connections = card.locator("[data-connections]");
      if (listed.status === 200) {
        await page.waitForSelector('[data-proxy="echo"] [data-connections="list"] [data-connection]', { timeout: 5000 });
      } else {
        assert.equal(await connections.getAttribute("data-connections"), "count");
        await page.waitForFunction(() => /^[1-9]\d* connections? open/.test(
          document.querySelector('[data-proxy="echo"] [data-connections]').textContent), null, { timeout: 5000 });
      }

      step("a fault added through the API appears without a reload");
      await page.evaluate(() => { window.notReloaded = true; });
      const added = await api(base, "POST", "/proxies/echo/toxics", {
        name: "slow_replies", type: "latency", attributes: { latency: 50 },
      });
      assert.equal(added.status, 200, JSON.stringify(added.json));
      const row = card.locator('[data-toxic="slow_replies"]');
      await row.waitFor({ timeout: 5000 });
      const rowText = await row.innerText();
      assert.ok(rowText.includes("latency") && rowText.includes("latency=50") && rowText.includes("downstream"), rowText);
      assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was reloaded");
      await page.waitForSelector('#events [data-kind="toxic_added"]', { timeout: 5000 });
      const event = await page.locator('#events [data-kind="toxic_added"]').innerText();
      assert.ok(event.includes("slow_replies") && event.includes("latency"), event);

      step("the page cannot change anything: the API refuses the browser's request");
      const refused = await page.evaluate(async () => {
        const r = await fetch("/proxies/echo/toxics/slow_replies", { method: "DELETE" });
        return r.status;
      });
      assert.equal(refused, 403);
      assert.equal((await api(base, "GET", "/proxies/echo/toxics")).json.length, 1);

      // Let the chart gather a few more points for the screenshot.
      await sleep(6000);
      await page.screenshot({ path: path.join(ARTIFACTS, "live-page.png"), fullPage: true });

      step("a narrow window still shows it all");
      await page.setViewportSize({ width: 380, height: 800 });
      await page.screenshot({ path: path.join(ARTIFACTS, "live-page-narrow.png"), fullPage: true });
      await page.setViewportSize({ width: 1100, height: 900 });

      step("faultgate gone: the page says so");
      await stop(fg);
      await page.waitForSelector('body[data-connected="no"]', { timeout: 10000 });
      const status = await page.locator("#status").innerText();
      assert.ok(status.includes("not answering"), status);
      await page.screenshot({ path: path.join(ARTIFACTS, "live-page-gone.png") });

      step("faultgate back: the page recovers");
      fg = startFaultgate(port);
      await ready(base, fg);
      await page.waitForSelector('body[data-connected="yes"]', { timeout: 10000 });
      await page.waitForSelector("#no-proxies:not([hidden])", { timeout: 5000 });
      // The new faultgate's events only: the old one's are gone.
      await page.waitForFunction(() => !document.querySelector('#events [data-kind="toxic_added"]'), null, { timeout: 5000 });
      assert.equal(await card.count(), 0);
      assert.deepEqual(consoleErrors, []);
      await page.close();
    } finally {
      stopTraffic();
    }
  } finally {
    await stop(fg);
    echo.close();
  }
}

function run(args, env, cwd) {
  return new Promise((resolve) => {
    const child = spawn(BIN, ["run", ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { out += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60000);
    child.on("exit", (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

const FAILING = `
name = "the API answers quickly through a slowed proxy"

[proxies.web]
api = "\${FAULTGATE_API}"
create = { listen = "127.0.0.1:\${WEB_PORT}", upstream = "\${FAULTGATE_ADDRESS}", mode = "http" }

[[steps]]
name = "fast before the fault"
http = { url = "http://127.0.0.1:\${WEB_PORT}/version", expect = { within = "300ms" } }

[[steps]]
name = "slow every answer"
fault = { proxy = "web", add = { name = "lag", type = "http_delay", attributes = { delay = 400 } } }

[[steps]]
name = "answers within 200ms"
wait_until = { within = "2s", every = "300ms", check = { http = { url = "http://127.0.0.1:\${WEB_PORT}/version", expect = { within = "200ms" } } } }

[[steps]]
name = "never reached"
sleep = "10ms"

[[teardown]]
name = "the fault goes"
fault = { proxy = "web", remove = "lag" }
`;

const UNREACHABLE = `
name = "a stack that is not there"

[proxies.web]
api = "http://127.0.0.1:\${DEAD_PORT}"

[[steps]]
sleep = "1ms"
`;

async function report(browser) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const fg = startFaultgate(port);
  try {
    await ready(base, fg);
    const dir = mkdtempSync(path.join(os.tmpdir(), "faultgate-report-"));
    writeFileSync(path.join(dir, "slowed.toml"), FAILING);
    writeFileSync(path.join(dir, "unreachable.toml"), UNREACHABLE);
    const html = path.join(dir, "report.html");
    const result = await run(
      // Named from their directory, as a CI job names them.
      ["slowed.toml", "unreachable.toml", "--html", "report.html"],
      {
        FAULTGATE_API: base, FAULTGATE_ADDRESS: `127.0.0.1:${port}`,
        WEB_PORT: String(await freePort()), DEAD_PORT: String(await freePort()),
      },
      dir,
    );
    assert.equal(result.code, 2, result.out);

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    // The report needs nothing but the file: every request off it fails.
    const requests = [];
    page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
    await page.goto(`file://${html}`);

    step("the summary gives each scenario's verdict");
    const summary = await page.locator(".summary").innerText();
    assert.ok(/FAILED/.test(summary) && /NOT RUN/.test(summary), summary);
    assert.ok(summary.includes("not reachable"), summary);

    step("the timeline shows the fault window behind the failed step");
    const scenario = page.locator('section.scenario[data-verdict="failed"]');
    const window = scenario.locator('.row.fault[data-proxy="web"][data-fault="lag"] rect.window');
    assert.equal(await window.count(), 1);
    const from = Number(await window.getAttribute("data-from"));
    const to = Number(await window.getAttribute("data-to"));
    const failing = scenario.locator(".row.step.failing");
    assert.equal(await failing.count(), 1);
    const label = await failing.locator(".label").innerText();
    assert.ok(label.includes("failed here") && label.includes("answers within 200ms"), label);
    const bar = failing.locator("rect.bar.failed");
    const barFrom = Number(await bar.getAttribute("data-from"));
    const barTo = Number(await bar.getAttribute("data-to"));
    assert.ok(from <= barFrom && to >= barTo, `fault ${from}-${to}, failed step ${barFrom}-${barTo}`);
    assert.ok(barTo - barFrom >= 1.5, `the wait lasted ${barTo - barFrom}s`);
    // The fault went in teardown, after the failing step; the report keeps
    // milliseconds, and teardown can come within one, so the ends may meet.
    const ticks = failing.locator("rect.attempt.failed");
    assert.ok((await ticks.count()) >= 3, `${await ticks.count()} failed attempts shown`);
    assert.equal(await failing.locator("rect.attempt.passed").count(), 0);
    // Shaded behind the steps too: the band is drawn in the step rows.
    assert.ok((await failing.locator("rect.band").count()) >= 1);
    // Visible on screen: the bar has a width a person can see.
    const box = await bar.boundingBox();
    assert.ok(box && box.width > 100, JSON.stringify(box));

    step("each step's detail: what was sent, expected, got");
    const detail = await scenario.locator("article.detail.failing").innerText();
    for (const text of ["GET http://127.0.0.1:", "an answer within 200ms", "no answer within 200ms", "did not hold", "attempts"]) {
      assert.ok(detail.includes(text), `${text} missing from: ${detail}`);
    }
    const skipped = await scenario.locator("article.detail.skipped").innerText();
    assert.ok(skipped.includes("never reached"), skipped);

    step("the scenario that could not run says why");
    const notRun = await page.locator('section.scenario[data-verdict="not-run"]').innerText();
    assert.ok(notRun.includes("not reachable") && notRun.includes("exit code 2"), notRun);
    assert.deepEqual(requests, []);

    await page.screenshot({ path: path.join(ARTIFACTS, "report.png"), fullPage: true });
    await page.setViewportSize({ width: 380, height: 800 });
    await page.screenshot({ path: path.join(ARTIFACTS, "report-narrow.png"), fullPage: true });
    await page.pdf?.({ path: path.join(ARTIFACTS, "report.pdf") }).catch(() => {});
    await page.close();
  } finally {
    await stop(fg);
  }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 60000 });
try {
  await livePage(browser);
  await report(browser);
  console.log("# pass: the live page and the report");
} finally {
  await browser.close();
}
