"""A real HTTP server on 127.0.0.1 with programmable routes, for crawl tests.

Routes answer with a fixed reply or a sequence (the n-th request gets the n-th reply,
the last one repeats), can delay their answer or run an action first (kill the client,
say), and every request is logged with its arrival time so tests can check what was
(never) fetched and when.

    with LocalServer() as site:
        site.route("/robots.txt", "User-agent: *\\nDisallow: /private/\\n", content_type="text/plain")
        site.route("/busy/", [Reply(429, headers={"Retry-After": "1"}), Reply(200, "<html>ok</html>")])
        site.url("/busy/")  # -> http://127.0.0.1:PORT/busy/
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit


@dataclass
class Reply:
    """One answer: status, body, headers, how long to wait and what to do before sending it."""

    status: int = 200
    body: str | bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "text/html; charset=utf-8"
    action: Callable[[], None] | None = None  # runs in the server thread when this reply is due

    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class Hit:
    """One request the server received."""

    path: str  # path with query string
    at: float  # time.monotonic() on arrival
    status: int  # what was answered
    headers: dict[str, str]


class LocalServer:
    """Threaded HTTP server on an ephemeral loopback port; unknown paths answer 404."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.hits: list[Hit] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-http", daemon=True)

    # routes ---------------------------------------------------------------------------
    def route(
        self,
        path: str,
        reply: Reply | list[Reply] | str | bytes,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        """Answer *path* (path plus query, exact match) with a reply, a sequence, or a body."""
        if isinstance(reply, Reply):
            replies = [reply]
        elif isinstance(reply, list):
            replies = list(reply)
        else:
            replies = [Reply(status, reply, dict(headers or {}), delay, content_type)]
        with self._lock:
            self._routes[path] = replies

    def robots(self, text: str) -> None:
        self.route("/robots.txt", text, content_type="text/plain; charset=utf-8")

    # inspection ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits_for(self, path: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if hit.path == path]

    def paths(self) -> list[str]:
        with self._lock:
            return [hit.path for hit in self.hits]

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # serving ---------------------------------------------------------------------------
    def _next_reply(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            replies = self._routes.get(path) or self._routes.get(urlsplit(path).path)
            index = sum(1 for hit in self.hits if hit.path == path)
            reply = replies[min(index, len(replies) - 1)] if replies else Reply(404, "not found")
            self.hits.append(Hit(path, time.monotonic(), reply.status, headers))
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                reply = server._next_reply(self.path, dict(self.headers.items()))
                if reply.action is not None:
                    reply.action()
                if reply.delay:
                    time.sleep(reply.delay)  # server side only: simulates a slow site
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler
