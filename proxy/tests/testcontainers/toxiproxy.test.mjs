// Testcontainers' Toxiproxy module for Node.js (the npm package
// @testcontainers/toxiproxy), unchanged, starting faultgate's image in place
// of Toxiproxy's: it waits for GET /version on 8474, creates a proxy on
// 0.0.0.0:8666 to a Redis container, and drives it with Toxiproxy's own
// client. A latency toxic delays Redis's answers as seen from the host, its
// removal ends the delay, and disabling the proxy cuts it off.
//
// Run by proxy/tests/container_testcontainers.rs, which builds the images
// and sets: DOCKER_HOST, FAULTGATE_IMAGE, REDIS_IMAGE,
// TESTCONTAINERS_RYUK_DISABLED=true (no reaper image to pull; the test
// stops what it starts) and TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1.

import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";

import { ToxiProxyContainer } from "@testcontainers/toxiproxy";
import { GenericContainer, Network, Wait } from "testcontainers";

const faultgateImage = process.env.FAULTGATE_IMAGE;
const redisImage = process.env.REDIS_IMAGE;
const LATENCY_MS = 1000;

// One PING on a new connection to host:port: resolves to the milliseconds
// until +PONG, rejects if the connection ends or errs first, or after 10 s.
function ping(host, port) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host, port });
    let answer = "";
    const fail = (why) => {
      socket.destroy();
      reject(new Error(`PING to ${host}:${port}: ${why}`));
    };
    socket.setTimeout(10_000, () => fail("no answer within 10 s"));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (data) => {
      answer += data.toString();
      if (answer.includes("\r\n")) {
        socket.end();
        if (answer.startsWith("+PONG")) resolve(performance.now() - started);
        else fail(`answered ${JSON.stringify(answer)}`);
      }
    });
    socket.on("end", () => fail("connection closed before an answer"));
    socket.on("error", (error) => fail(error.message));
  });
}

test("the Toxiproxy module drives faultgate's image", { timeout: 180_000 }, async (t) => {
  assert.ok(faultgateImage && redisImage, "FAULTGATE_IMAGE and REDIS_IMAGE must be set");

  // Stopped last started first, once the test is over.
  const started = [];
  t.after(async () => {
    for (const thing of started.reverse()) await thing.stop();
  });
  const network = await new Network().start();
  started.push(network);
  const redis = await new GenericContainer(redisImage)
    .withNetwork(network)
    .withNetworkAliases("redis")
    .withWaitStrategy(Wait.forLogMessage("Ready to accept connections"))
    .start();
  started.push(redis);

  const toxiproxy = await new ToxiProxyContainer(faultgateImage).withNetwork(network).start();
  started.push(toxiproxy);

  const proxy = await toxiproxy.createProxy({ name: "redis", upstream: "redis:6379" });
  assert.equal(proxy.instance.listen, "0.0.0.0:8666");
  assert.equal(proxy.host, "127.0.0.1");

  const before = await ping(proxy.host, proxy.port);
  assert.ok(before < LATENCY_MS, `a PING took ${before} ms before any toxic`);

  const toxic = await proxy.instance.addToxic({
    name: "latency_downstream",
    type: "latency",
    stream: "downstream",
    toxicity: 1,
    attributes: { latency: LATENCY_MS, jitter: 0 },
  });
  assert.equal(toxic.name, "latency_downstream");
  const fetched = await proxy.instance.getToxic("latency_downstream");
  assert.equal(fetched.attributes.latency, LATENCY_MS);
  const delayed = await ping(proxy.host, proxy.port);
  assert.ok(delayed >= LATENCY_MS, `a PING took ${delayed} ms with ${LATENCY_MS} ms of latency`);

  await toxic.remove();
  await assert.rejects(proxy.instance.getToxic("latency_downstream"), /404/);
  const after = await ping(proxy.host, proxy.port);
  assert.ok(after < LATENCY_MS, `a PING took ${after} ms after the toxic was removed`);

  // The module's own switch: a disabled proxy relays nothing.
  await proxy.setEnabled(false);
  await assert.rejects(ping(proxy.host, proxy.port));
  await proxy.setEnabled(true);
  assert.ok((await ping(proxy.host, proxy.port)) < LATENCY_MS);
});
