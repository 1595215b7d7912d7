"""`py_jitter`: TCP latency with jitter, in Python.

Every chunk waits `latency` milliseconds plus or minus up to `jitter`
(uniform, whole milliseconds), drawn from the host's random stream of the
connection: under `faultgate serve --seed N` the same connections draw the
same delays, run after run. Each delay drawn is logged at debug level.
"""

from wit_world import exports
from wit_world.imports import types

import tcp

def spec(name, summary, default=0):
    return types.AttributeSpec(name, types.ValueType.INTEGER, types.Value_Integer(default), summary)

class Meta(exports.Meta):
    def describe(self):
        return types.Description(
            name="py_jitter",
            version="0.1.0",
            summary="Delays every chunk by a latency with seeded jitter (written in Python)",
            attributes=[
                spec("latency", "mean delay of each chunk, in milliseconds"),
                spec("jitter", "the delay varies by up to this much either way, in milliseconds"),
                # Declarations, not attributes: what the interpreter needs
                # beyond faultgate's default limits.
                spec("@memory-mib", "the memory one instance needs, in MiB", 32),
                spec("@deadline-ms", "the time one call may need, in milliseconds", 1000),
            ],
            wants_bytes=False,
        )

    def validate(self, attributes):
        tcp.Jitter.parse(attributes)

class Tcp(exports.Tcp):
    pass

