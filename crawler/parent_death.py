"""Processes that end with the one that started them (Linux's ``PR_SET_PDEATHSIG``).

A crawl child holds the launcher's writer lock (crawler.launcher), and an extraction worker is
forked with the crawl's descriptors, that lock among them: neither may outlive its parent and
keep the lock held by an orphan that nobody waits for. Each asks the kernel, first thing, for a
SIGKILL when its parent dies, then checks that the parent is still the one it was started by,
since a parent that died before the request was made sends nothing. SIGKILL rather than
SIGTERM: Scrapy's graceful stop waits for requests in flight while holding the lock, and a
killed crawl's run-log row is closed as ``interrupted`` by the next run anyway. Elsewhere than
Linux only the check is made.

The child asks for itself rather than through a ``preexec_fn``: without one, Python starts the
child with vfork instead of copying the caller, which from a process holding a loaded model
(1.7 GB) took 85 ms per crawl.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_PID_ENV = "REPUTATION_PARENT_PID"  # set by crawler.launcher for the crawl children
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """The kernel SIGKILLs this process when its parent dies; it exits now if the parent is not ``parent_pid``.

    The signal follows the thread that started this process: the launcher's waits in
    ``_run_child`` until the child ends, and the extraction pool's is the reactor thread.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request: nobody will signal us
        print(f"error: the process that started this one ({parent_pid}) is gone; stopping", file=sys.stderr)
        os._exit(1)


def die_with_launcher() -> None:
    """``die_with_parent`` for a crawl child, when the launcher named itself in PARENT_PID_ENV."""
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit():
        die_with_parent(int(parent))
