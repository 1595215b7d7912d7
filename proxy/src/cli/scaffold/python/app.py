"""`{{name}}`: a faultgate fault plugin, in Python.

As written it delays every chunk by `delay` milliseconds and, when
`reset_after` is set, resets the connection at that chunk. Change it into
the fault you need: `tcp.py` holds the fault (one per attached toxic) and
its filters (one per direction of each connection); this file describes
the plugin and checks its attributes.
"""

from wit_world import exports
from wit_world.imports import types

import attributes
import tcp


class Meta(exports.Meta):
    def describe(self):
        return types.Description(
            name="{{name}}",
            version="0.1.0",
            summary="Delays every chunk, and resets after some chunks if asked",
            attributes=[
                attributes.integer_spec("delay", 0, "delay of each chunk, in milliseconds"),
                attributes.integer_spec("reset_after", 0, "reset the connection at this chunk; 0 = never"),
            ]
            + attributes.RUNTIME_NEEDS,
            # Only the chunk's length is needed: the host copies no bytes in.
            wants_bytes=False,
        )

    def validate(self, attributes):
        # Raises Err naming the attribute at fault: the API caller's 400.
        tcp.Settings(attributes)


class Tcp(exports.Tcp):
    pass
