"""A scriptable HTTP server on loopback for client-level tests: each route answers from a queue of
canned responses, and every request is recorded (headers included) for assertions."""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Canned:
    status: int = 200
    body: bytes | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (time-out tests)
    drop: bool = False  # close the connection without answering
    truncate_to: int | None = None  # announce the full length but send only this many bytes


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[tuple[str, str], deque[Canned]] = defaultdict(deque)
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                path = self.path.split("?")[0]
                queue = outer.routes.get((self.command, path)) or outer.routes.get((self.command, self.path))
                canned = (
                    (queue.popleft() if len(queue) > 1 else queue[0])
                    if queue
                    else Canned(404, {"error": {"code": 404, "message": "no route"}})
                )
                if canned.delay:
                    threading.Event().wait(canned.delay)
                if canned.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = canned.body if isinstance(canned.body, bytes) else json.dumps(canned.body).encode()
                self.send_response(canned.status)
                if not isinstance(canned.body, bytes):
                    self.send_header("Content-Type", "application/json")
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if canned.truncate_to is not None:
                    self.wfile.write(payload[: canned.truncate_to])
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def on(self, method: str, path: str, *responses: Canned) -> None:
        """Answer ``method path`` with these responses in order; the last one repeats."""
        self.routes[(method, path)] = deque(responses)

    def requests_to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.split("?")[0] == path]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def scripted(host: str = "127.0.0.1") -> Iterator[ScriptedServer]:
    with ScriptedServer(host) as server:
        yield server
