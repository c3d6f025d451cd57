"""A review site on 127.0.0.1 that misbehaves on purpose, path by path, for crawl reliability tests.

Each path gets a Fault: a function that writes the raw answer to the socket, so a fault can do
what a well-behaved server never would (send fewer bytes than it announced, stall, omit the
charset, redirect in circles). A path may get a list of faults: the n-th request gets the n-th,
the last one repeats. Unknown paths answer 404. Every request is recorded.

    with FaultServer() as site:
        site.add("/broken/", status(500))
        site.add("/busy/", [status(429, headers={"Retry-After": "1"}), page(review_page(...))])
        site.add("/loop/", redirect("/loop/"))
        site.add("/forever/", infinite_pagination())
        site.url("/forever/")  # -> http://127.0.0.1:PORT/forever/

Stdlib only (http.server in a daemon thread); request loops end with the crawl, and a hanging
fault never sleeps longer than it was told.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawl_support import review_node

Fault = Callable[[BaseHTTPRequestHandler, "Request"], int]  # writes the answer, returns its status
UTF8_HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    path: str  # with the query string
    query: dict[str, list[str]]
    at: float  # time.monotonic() on arrival
    host: str  # the Host header

    def page_number(self) -> int:
        try:
            return max(1, int(self.query.get("page", ["1"])[0]))
        except ValueError:
            return 1


def _send(
    handler: BaseHTTPRequestHandler,
    code: int,
    body: bytes,
    *,
    content_type: str | None = UTF8_HTML,
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> int:
    handler.send_response(code)
    if content_type is not None:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)
    return code


def _bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body


# faults ---------------------------------------------------------------------------------------
def page(
    body: str | bytes, *, content_type: str | None = UTF8_HTML, headers: dict[str, str] | None = None
) -> Fault:
    """A plain 200 answer (content_type=None: no Content-Type header at all)."""
    return status(200, body, content_type=content_type, headers=headers)


def status(
    code: int,
    body: str | bytes = b"",
    *,
    content_type: str | None = UTF8_HTML,
    headers: dict[str, str] | None = None,
) -> Fault:
    """Any status: 5xx, 403, 429 or 503 with a Retry-After (seconds, HTTP date, or nonsense)."""
    payload = _bytes(body)
    return lambda handler, request: _send(handler, code, payload, content_type=content_type, headers=headers)


def undeclared(text: str, encoding: str = "latin-1") -> Fault:
    """A page in a legacy encoding served as bare ``text/html``: no charset, no BOM, no <meta>."""
    return page(text.encode(encoding), content_type="text/html")


def hang(seconds: float, then: Fault | None = None) -> Fault:
    """Say nothing for *seconds* (the client times out first), then answer or hang up.

    The wait ends early when the server stops, so a test can hang a request for far longer than
    its crawl can take (a timeout that works is then the only way out) without a stray thread.
    """

    def fault(handler: BaseHTTPRequestHandler, request: Request) -> int:
        server = handler.server
        if isinstance(server, _Server):
            server.stopping.wait(seconds)
        else:
            time.sleep(seconds)
        if then is not None:
            return then(handler, request)
        handler.close_connection = True
        return 0

    return fault


def truncated(body: str | bytes, keep: float = 0.5) -> Fault:
    """Announce the whole body in Content-Length, send only part of it, hang up."""
    payload = _bytes(body)

    def fault(handler: BaseHTTPRequestHandler, request: Request) -> int:
        handler.close_connection = True
        return _send(handler, 200, payload[: int(len(payload) * keep)], length=len(payload))

    return fault


def redirect(location: str, code: int = 302) -> Fault:
    """A redirect; *location* may be relative, the same path (a self-redirect) or another host."""
    return status(code, b"", headers={"Location": location})


def huge(size: int, *, announce: bool = True, chunk: int = 64 * 1024) -> Fault:
    """A page of *size* bytes; announce=False sends no Content-Length and ends by closing."""

    def fault(handler: BaseHTTPRequestHandler, request: Request) -> int:
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", UTF8_HTML)
        if announce:
            handler.send_header("Content-Length", str(size))
        handler.end_headers()
        filler = b"<p>" + b"x" * (chunk - 7) + b"</p>\n"
        sent = 0
        while sent < size:
            part = filler[: min(chunk, size - sent)]
            handler.wfile.write(part)
            sent += len(part)
        return 200

    return fault


def infinite_pagination(per_page: int = 2, prefix: str = "R") -> Fault:
    """?page=N links to ?page=N+1 forever, each page with reviews never seen before."""

    def fault(handler: BaseHTTPRequestHandler, request: Request) -> int:
        n = request.page_number()
        reviews = [
            review(f"{prefix}{n}-{i}", f"Page {n}, review {i}: the agent helped.") for i in range(per_page)
        ]
        base = urlsplit(request.path).path
        return _send(handler, 200, _bytes(review_page(reviews, next_href=f"{base}?page={n + 1}")))

    return fault


def repeating_pagination(reviews: list[dict[str, Any]]) -> Fault:
    """?page=N links to ?page=N+1 forever, every page showing the same reviews."""

    def fault(handler: BaseHTTPRequestHandler, request: Request) -> int:
        base = urlsplit(request.path).path
        return _send(
            handler, 200, _bytes(review_page(reviews, next_href=f"{base}?page={request.page_number() + 1}"))
        )

    return fault


# pages ----------------------------------------------------------------------------------------
def review(
    rid: str, body: str, *, author: str = "Ana P.", rating: int = 4, date: str = "2024-05-03"
) -> dict[str, Any]:
    return {"id": rid, "body": body, "author": author, "rating": rating, "date": date}


def review_page(
    reviews: list[dict[str, Any]],
    *,
    next_href: str | None = None,
    charset: bool = True,
    ascii_json: bool = False,
) -> str:
    """A listing with one JSON-LD block of Review nodes.

    ascii_json=True escapes every non-ASCII character (``"\\ud800"`` stays a lone surrogate
    escape, as a careless site would send it); else the text goes out as it is.
    """
    data = {
        "@context": "https://schema.org",
        "@type": "Organization",
        "name": "Acme",
        "review": [
            review_node(r, f"#r-{r['id']}")
            for r in reviews
        ],
    }
    rel_next = f'<link rel="next" href="{next_href}">' if next_href else ""
    meta = '<meta charset="utf-8">' if charset else ""
    script = json.dumps(data, ensure_ascii=ascii_json).replace("</", "<\\/")
    return (
        f"<!DOCTYPE html><html><head>{meta}<title>Acme reviews</title>{rel_next}"
        f'<script type="application/ld+json">{script}</script></head><body><h1>Acme</h1></body></html>'
    )


def deep_jsonld(depth: int = 100_000) -> str:
    """A JSON-LD block nested *depth* arrays deep (a parser that recurses runs out of stack)."""
    return f'<html><head><script type="application/ld+json">{"[" * depth}{"]" * depth}</script></head><body></body></html>'


def malformed_jsonld() -> str:
    return '<html><head><script type="application/ld+json">{"@type": "Review", "reviewBody": "cut</script></head></html>'


# server ---------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    """The HTTP server, with the event that ends hanging faults when it stops."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.stopping = threading.Event()


class FaultServer:
    """Threaded HTTP/1.1 server on an ephemeral loopback port, one fault (or sequence) per path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._server = _Server((host, 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-http", daemon=True)

    def add(self, path: str, fault: Fault | list[Fault]) -> None:
        """Answer *path* (exact path plus query, else the path alone) with a fault or a sequence."""
        with self._lock:
            self._faults[path] = list(fault) if isinstance(fault, list) else [fault]

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """The URL of *path*; host="localhost" names the same server as another host."""
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        """Requests for *path* (with its query), or for every query of it when *path* has none."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path or ("?" not in path and urlsplit(r.path).path == path)
            ]

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: Request) -> Fault:
        with self._lock:
            faults = self._faults.get(request.path) or self._faults.get(urlsplit(request.path).path)
            index = sum(1 for r in self.requests if r.path == request.path)
            self.requests.append(request)
        if not faults:
            return status(404, "not found")
        return faults[min(index, len(faults) - 1)]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                # A killed crawl resets its keep-alive connections: nothing to report.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = parse_qs(urlsplit(self.path).query)
                request = Request(self.path, query, time.monotonic(), self.headers.get("Host", ""))
                try:
                    server._next(request)(self, request)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeouts, size caps)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler
