// Toxiproxy's Node.js client (toxiproxy-node-client) against faultgate:
// what it shows must be what it shows against Toxiproxy 2.12. Run by
// proxy/tests/toxiproxy_clients.rs with FAULTGATE_API, FREE_PORT and
// TAKEN_PORT set; exits non-zero, saying what differed, on the first
// difference.
import assert from "node:assert/strict";
import pkg from "toxiproxy-node-client";

const Toxiproxy = pkg.Toxiproxy ?? pkg.default;
const toxiproxy = new Toxiproxy(`http://${process.env.FAULTGATE_API}`);

const version = JSON.parse(await toxiproxy.getVersion());
assert.equal(version.version, "2.12.0");
assert.ok(version.faultgate, "the version does not say it is faultgate");

// A toxic given no attributes shows them all at their defaults.
const listen = `localhost:${process.env.FREE_PORT}`;
const proxy = await toxiproxy.createProxy({ name: "node", listen, upstream: "127.0.0.1:1" });
assert.equal(proxy.listen, `127.0.0.1:${process.env.FREE_PORT}`);
const latency = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: null });
assert.deepEqual(latency.attributes, { latency: 0, jitter: 0 });
const patched = await latency.update({ attributes: { jitter: 5 } });
assert.deepEqual(patched.attributes, { latency: 0, jitter: 5 });

// The slicer of the client's own test.
const slicer = await proxy.addToxic({
  type: "slicer", stream: "upstream", toxicity: 1,
  attributes: { average_size: 1000, size_variation: 1000, delay: 1000 },
});
assert.equal(slicer.attributes.size_variation, 1000);

// An attribute Toxiproxy ignores is taken.
await proxy.addToxic({ name: "typo", type: "latency", stream: "upstream", toxicity: 1, attributes: { wobble: 3 } });

// Populate with the host name keeps the proxy and its toxics.
const populated = await toxiproxy.populate([{ name: "node", listen, upstream: "127.0.0.1:1" }]);
assert.ok(populated.node, "populate did not return the proxy");
const kept = await toxiproxy.get("node");
const survived = await kept.getToxic("latency_downstream");
assert.deepEqual(survived.attributes, { latency: 0, jitter: 5 }, "populate replaced the proxy");
await kept.getToxic("typo");

// A listen address in use is Toxiproxy's 500.
await assert.rejects(
  toxiproxy.createProxy({ name: "clash", listen: `127.0.0.1:${process.env.TAKEN_PORT}`, upstream: "127.0.0.1:1" }),
  (error) => {
    assert.match(String(error.message), /500/);
    return true;
  },
);
await assert.rejects(toxiproxy.get("clash"));
console.log("toxiproxy-node-client: all checks passed");
