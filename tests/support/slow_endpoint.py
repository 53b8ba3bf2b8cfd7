"""An OpenAI-compatible chat endpoint on loopback that holds every request until released: a
generation that is "still running" for as long as a test needs, without a model."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowEndpoint:
    def __init__(self, *, hold_s: float = 120.0):
        self.hold_s = hold_s
        self.arrived = threading.Event()  # set when the first request comes in
        self.released = threading.Event()  # answer held and later requests once set
        self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> SlowEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests += 1
                endpoint.arrived.set()
                endpoint.released.wait(endpoint.hold_s)
                body = json.dumps({
                    "choices": [{"message": {"role": "assistant", "content": "Slow but sure."},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                }).encode()  # fmt: skip
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the caller is gone (a killed worker)
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler
