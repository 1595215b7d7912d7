"""Toxiproxy's Python client (toxiproxy-python) against faultgate: what it
shows must be what it shows against Toxiproxy 2.12. Run by
proxy/tests/toxiproxy_clients.rs with FAULTGATE_API and TAKEN_PORT set;
exits non-zero, saying what differed, on the first difference."""

import json
import os

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, ProxyExists

host, port = os.environ["FAULTGATE_API"].rsplit(":", 1)
server = Toxiproxy()
server.update_api_consumer(host, int(port))

version = json.loads(server.version())
assert version["version"] == "2.12.0", version
assert "faultgate" in version, version

proxy = server.create(upstream="127.0.0.1:1", name="py")

# A toxic given no attributes shows them all at their defaults.
proxy.add_toxic(type="latency")
toxic = proxy.get_toxic("latency_downstream")
assert toxic.attributes == {"latency": 0, "jitter": 0}, toxic.attributes

# What Toxiproxy takes is taken: an unknown attribute, toxicity 2, a
# negative latency. None of them is an InvalidToxic.
try:
    proxy.add_toxic(type="latency", name="typo", attributes={"wobble": 3})
    proxy.add_toxic(type="latency", name="over", stream="upstream", toxicity=2)
    proxy.add_toxic(type="latency", name="negative", attributes={"latency": -5})
except InvalidToxic as refused:
    raise AssertionError(f"refused what Toxiproxy takes: {refused}")
assert set(proxy.toxics()) == {"latency_downstream", "typo", "over", "negative"}
assert proxy.get_toxic("negative").attributes == {"latency": 0, "jitter": 0}

# A listen address in use is not a ProxyExists: that is a name taken.
taken = f"127.0.0.1:{os.environ['TAKEN_PORT']}"
response = APIConsumer.post("/proxies", json={"name": "clash", "listen": taken, "upstream": "127.0.0.1:1"})
assert response.status_code == 500, response.status_code
try:
    server.create(upstream="127.0.0.1:1", name="clash", listen=taken)
except ProxyExists:
    raise AssertionError("a port in use was read as a proxy that exists")
except Exception:
    pass
assert server.get_proxy("clash") is None
print("toxiproxy-python: all checks passed")
