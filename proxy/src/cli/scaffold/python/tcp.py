"""The fault and its filters: componentize-py finds the resources of the
contract's `tcp` interface in this module, by their names."""

from wit_world.exports import tcp
from wit_world.imports import host, types

import attributes


class Settings:
    """The attributes, checked (an `Err` names the one at fault)."""

    def __init__(self, attrs):
        self.delay_ms = attributes.non_negative(attrs, "delay", 0, "milliseconds")
        self.reset_after = attributes.non_negative(attrs, "reset_after", 0, "chunks")


class Fault(tcp.Fault):
    """One per attached toxic, shared by every connection it applies to."""

    def __init__(self, settings):
        self.settings = settings

    @classmethod
    def create(cls, attrs):
        return cls(Settings(attrs))

    def open(self, conn):
        host.log(host.Level.DEBUG, f"{{name}} on connection {conn.id} from {conn.client}")
        return Filter(self.settings)


class Filter(tcp.Filter):
    """One direction of one connection: its state is that connection's."""

    def __init__(self, settings):
        self.settings = settings
        self.chunks_seen = 0

    def on_open(self):
        return []

    def on_data(self, chunk):
        self.chunks_seen += 1
        if self.settings.reset_after and self.chunks_seen >= self.settings.reset_after:
            return [types.Step_Reset()]
        # Time in steps counts from the chunk's arrival.
        return [
            types.Step_Sleep(self.settings.delay_ms * 1000),
            types.Step_Forward(types.ByteRange(0, chunk.len)),
        ]

    def on_wake(self):
        return []

    def on_close(self):
        return []
