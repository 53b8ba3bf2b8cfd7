"""A fake OpenAI-compatible LLM judge on loopback. It reads the two answers out of the
AlpacaEval-style prompt and prefers the longer one (or, `biased`, always the first shown),
answering `m` (first) or `M` (second), with logprobs when `logprobs` is set.

Asked anything else, it is a contestant: model `long` answers at length, any other briefly."""

from __future__ import annotations

import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LONG = "A long, careful and detailed answer that covers every part of the question."
_OUTPUT = re.compile(r'"output": """(.*?)"""', re.S)


class JudgeEndpoint:
    def __init__(self, *, logprobs: bool, biased: bool = False, confidence: float = 0.8):
        self.logprobs, self.biased, self.confidence = logprobs, biased, confidence
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> JudgeEndpoint:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, payload: dict) -> dict:
        outputs = _OUTPUT.findall(payload["messages"][-1]["content"])
        if len(outputs) != 2:
            text = LONG if payload.get("model") == "long" else "ok"
            return {"choices": [{"message": {"role": "assistant", "content": text}}]}
        first, second = outputs
        second_better = not self.biased and len(second) > len(first)
        token = "M" if second_better else "m"
        choice = {"message": {"role": "assistant", "content": token}, "finish_reason": "length"}
        if self.logprobs and payload.get("logprobs"):
            p = self.confidence
            top = [
                {"token": token, "logprob": math.log(p)},
                {"token": "m" if token == "M" else "M", "logprob": math.log(1 - p)},
            ]
            choice["logprobs"] = {"content": [{"token": token, "top_logprobs": top}]}
        return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 1}}

    def _handler(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                endpoint.requests.append(payload)
                body = json.dumps(endpoint.answer(payload)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler
