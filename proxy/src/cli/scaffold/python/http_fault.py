"""The fault and its exchanges. componentize-py looks the resources of the
contract's `http` interface up in a module named `http`, which is Python's
own; app.py puts this module in its place (a plugin has no network to use
Python's with anyway)."""

from componentize_py_types import Err
from wit_world.exports import http
from wit_world.imports import host, types

import attributes


class Settings:
    """The attributes, checked (an `Err` names the one at fault)."""

    def __init__(self, attrs):
        self.status = attributes.non_negative(attrs, "status", 503, "an HTTP status")
        if not 100 <= self.status <= 999:
            raise Err(f"status: expected an HTTP status (100-999), got {self.status}")
        self.delay_ms = attributes.non_negative(attrs, "delay", 0, "milliseconds")
        self.path_prefix = attributes.text(attrs, "path_prefix", "")


class Fault(http.Fault):
    """One per attached toxic, shared by every request it applies to."""

    def __init__(self, settings):
        self.settings = settings

    @classmethod
    def create(cls, attrs):
        return cls(Settings(attrs))

    def open(self, conn):
        host.log(host.Level.DEBUG, f"{{name}} on connection {conn.id}")
        return Exchange(self.settings, conn.stream)


class Exchange(http.Exchange):
    """One request and its response."""

    def __init__(self, settings, stream):
        self.settings = settings
        # Attached upstream it acts at the request (the server never sees
        # it); downstream, at the response (the server did the work).
        self.at_request = stream == types.Direction.UPSTREAM
        self.matches = False

    def answer(self):
        body = b"{{name}}\n"
        headers = [http.Header("content-type", "text/plain")]
        return [
            http.Action_Delay(self.settings.delay_ms * 1000),
            http.Action_Respond(http.Response(self.settings.status, headers, body)),
        ]

    def on_request(self, request):
        self.matches = request.path.startswith(self.settings.path_prefix)
        if self.matches and self.at_request:
            return self.answer()
        return [http.Action_Pass()]

    def on_response(self, response):
        if self.matches and not self.at_request:
            return self.answer()
        return [http.Action_Pass()]
