"""Serving the review app with werkzeug's threaded server, without logging OAuth codes."""

from __future__ import annotations

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

REDACTED_PATHS = ("/auth/callback",)


class RedactingRequestHandler(WSGIRequestHandler):
    """The access log drops the query string of the OAuth callback (it carries the one-time code)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "")
        if "?" in path and path.startswith(REDACTED_PATHS):
            self.path = path.split("?", 1)[0] + "?[redacted]"
            try:
                super().log_request(code, size)
            finally:
                self.path = path
            return
        super().log_request(code, size)


def make_review_server(app: Flask, host: str = "127.0.0.1", port: int = 8000) -> BaseWSGIServer:
    """A threaded server; `port=0` picks a free port (see `.port`)."""
    return make_server(host, port, app, threaded=True, request_handler=RedactingRequestHandler)
