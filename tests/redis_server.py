"""A real Redis server (Debian's ``redis-server``) on 127.0.0.1 for tests of the distributed mode.

    def test_x(redis_server: RedisServer) -> None:
        client = redis.Redis.from_url(redis_server.url)
        ...
        redis_server.restart()        # same port, same data (append-only file), new process

The server runs in the test's own directory with ``--save ''`` (no RDB snapshots) and
``--appendonly yes`` + ``appendfsync always`` so a restart keeps every acknowledged write:
that is what a production Redis behind a crawl should be configured with, and what the
"Redis restarted during a crawl loses nothing" test relies on. Tests that need no Redis
never start one; a machine without ``redis-server`` skips with the reason
(``.ci/run`` / ``make test`` install it).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out to outgoing connections and to bind(port 0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_port() -> int:
    """A loopback port free now and outside the ephemeral range.

    redis-server binds it later, in another process: a port from bind(port 0) could meanwhile
    go to any outgoing connection (a crawl, a client), one below the range can only go to another
    server that picks its port by hand; ``start`` tries another port should even that happen.
    """
    low, high = _ephemeral_range()
    below = (1024, low - 1) if low - 1024 >= 1000 else (high + 1, 65535)
    for _ in range(100):
        port = random.randint(*below)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _PortTaken(RuntimeError):
    """redis-server could not bind its port."""


class RedisServer:
    """One redis-server process on a fixed loopback port, restartable on the same port and data."""

    def __init__(self, workdir: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self._port_chosen_here = port is None
        self._started = False
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until it answers PING (the wait ends as soon as it does).

        A first start on a port chosen here that someone else took meanwhile moves to another port.
        """
        for _attempt in range(5):
            try:
                self._start_once(timeout)
            except _PortTaken:
                if self._started or not self._port_chosen_here:
                    raise
                self.port = _free_port()
                continue
            self._started = True
            return
        raise RuntimeError("redis-server found no free port in 5 tries")

    def _start_once(self, timeout: float) -> None:
        args = [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                self.proc = None
                if "Address already in use" in log:
                    (self.workdir / "redis.log").unlink()
                    raise _PortTaken(log)
                raise RuntimeError(f"redis-server exited with {code}: {log}")
            if self.ping() and self._serving_pid() == self.proc.pid:  # ours, not another on that port
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def ping(self) -> bool:
        """True when the server answers PING (raw RESP, so this module needs no client library)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _serving_pid(self) -> int | None:
        """The process id of the server answering on the port (from INFO), None if unknown."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"INFO server\r\n")
                reply = b""
                while b"process_id:" not in reply or not reply.split(b"process_id:", 1)[1].count(b"\r\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        return None
                    reply += chunk
        except OSError:
            return None
        return int(reply.split(b"process_id:", 1)[1].split(b"\r\n", 1)[0])

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (a clean shutdown) or, with ``kill``, SIGKILL (a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop (or kill) the server, stay down ``down_for`` seconds, start it on the same port."""
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def require_redis_server() -> None:
    """Skip the calling test when Debian's redis-server is not installed."""
    if shutil.which("redis-server") is None and not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server not installed (apt-get install redis-server; .ci/run installs it)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server per test (own port, own data dir), stopped after the test."""
    require_redis_server()
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of a fresh redis-server (``redis://127.0.0.1:PORT/0``)."""
    return redis_server.url
