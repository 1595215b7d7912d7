"""The `py_jitter` fault and its filters (the contract's `tcp` resources)."""

from componentize_py_types import Err
from wit_world.exports import tcp
from wit_world.imports import host, types

# Whole milliseconds, below an hour: more is a typo, not a fault.
MAX_MS = 3_600_000


class Jitter:
    """The attributes, checked: `latency` and `jitter` in milliseconds."""

    def __init__(self, latency_ms, jitter_ms):
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms

    @classmethod
    def parse(cls, attributes):
        given = dict(attributes)
        for name in given:
            if name not in ("latency", "jitter"):
                raise Err(f"{name}: not an attribute of py_jitter (it takes latency, jitter)")

        def millis(name):
            value = given.get(name, types.Value_Integer(0))
            if not isinstance(value, types.Value_Integer) or not 0 <= value.value <= MAX_MS:
                got = getattr(value, "value", value)
                raise Err(f"{name}: expected whole milliseconds (0 to {MAX_MS}), got {got!r}")
            return value.value

        return cls(millis("latency"), millis("jitter"))

    def draw_ms(self):
        """One delay: latency + a uniform offset in [-jitter, +jitter],
        never below 0. One draw of the connection's stream per chunk."""
        span = 2 * self.jitter_ms + 1
        offset = host.random() % span - self.jitter_ms
        return max(0, self.latency_ms + offset)


class Fault(tcp.Fault):
    def __init__(self, jitter):
        self.jitter = jitter

    @classmethod
    def create(cls, attributes):
        return cls(Jitter.parse(attributes))

    def open(self, conn):
        return Filter(self.jitter)


class Filter(tcp.Filter):
    def __init__(self, jitter):
        self.jitter = jitter

    def on_open(self):
        return []

    def on_data(self, chunk):
        delay_ms = self.jitter.draw_ms()
        host.log(host.Level.DEBUG, f"py_jitter delay {delay_ms} ms")
        return [
            types.Step_Sleep(delay_ms * 1000),
            types.Step_Forward(types.ByteRange(0, chunk.len)),
        ]

    def on_wake(self):
        return []

    def on_close(self):
        return []
