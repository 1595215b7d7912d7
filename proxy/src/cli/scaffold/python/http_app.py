"""`{{name}}`: a faultgate HTTP fault plugin, in Python, for proxies in http
mode.

As written it answers requests whose path starts with `path_prefix` with
`status` after waiting `delay` milliseconds. Attached `upstream` it acts
before the request reaches the server; attached `downstream`, after the
server answered. Change it into the fault you need: `http_fault.py` holds the
fault (one per attached toxic) and its exchanges (one per request); this
file describes the plugin and checks its attributes.
"""

from wit_world import exports
from wit_world.imports import types

import sys

import attributes
import http_fault

# componentize-py finds the `http` interface's resources (Fault, Exchange)
# in the module named `http`: this plugin's, not Python's.
sys.modules["http"] = http_fault


class Meta(exports.Meta):
    def describe(self):
        return types.Description(
            name="{{name}}",
            version="0.1.0",
            summary="Answers matching requests with a status, after a delay",
            attributes=[
                attributes.integer_spec("status", 503, "the status to answer with"),
                attributes.integer_spec("delay", 0, "wait before answering, in milliseconds"),
                attributes.text_spec("path_prefix", "", "act on requests whose path starts with this; empty = every request"),
            ]
            + attributes.RUNTIME_NEEDS,
            wants_bytes=False,
        )

    def validate(self, attributes):
        # Raises Err naming the attribute at fault: the API caller's 400.
        http_fault.Settings(attributes)


class Http(exports.Http):
    pass
