"""The crawl benchmark's CPU accounting: a child's CPU is counted once it has been waited for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.crawling import CpuUse, cpu_ceiling, with_cpu

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_a_waited_for_child_s_cpu_is_counted_as_the_child_s() -> None:
    done, cpu = with_cpu(lambda: subprocess.run([sys.executable, "-c", BURN], check=True))
    assert done.returncode == 0
    assert cpu.children >= 0.3  # the child spun until it had used 0.3 s of CPU
    assert cpu.here < cpu.children  # this process only waited


def test_the_ceiling_spreads_every_cpu_second_over_every_cpu() -> None:
    # 8 CPU-s in the crawl's processes and 2 in the server, on 2 CPUs: 5 s at best, so 1000 pages
    # can go no faster than 200 pages/s
    assert cpu_ceiling(1000, CpuUse(children=8.0, here=2.0), cpus=2) == pytest.approx(200.0)
    assert cpu_ceiling(1000, CpuUse(children=8.0, here=2.0), cpus=1) == pytest.approx(100.0)
    assert cpu_ceiling(10, CpuUse(children=0.0, here=0.0), cpus=2) == float("inf")
