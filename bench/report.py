"""Results of a benchmark run: one row per figure, a markdown table and a JSON file.

Every figure is compared with a baseline measured in the same process and session, so
a noisy, shared machine moves both sides alike; the ratio is what the targets judge.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LATEST_FILE = BENCH_DIR / "latest.json"


@dataclass
class Figure:
    """One measured number, what it is compared with, and whether it meets its target.

    ``ratio`` is value / baseline (higher is better) unless ``lower_is_better``, in which
    case it is baseline / value, so a ratio above 1 always means "ours wins".
    ``target`` is a readable rule (``ratio >= 3``, ``value <= 10 s``) checked by ``check``.
    """

    benchmark: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    lower_is_better: bool = False
    target: str = ""
    passed: bool | None = None  # None: informational, no target
    note: str = ""
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.value == 0 or self.baseline == 0:
            return None
        return self.baseline / self.value if self.lower_is_better else self.value / self.baseline

    def check(self, rule: Callable[[float, float, float], bool], target: str) -> Figure:
        """Judge with ``rule(value, baseline, ratio)``; missing numbers are NaN, so they miss."""
        nan = float("nan")
        self.target = target
        value = nan if self.value is None else self.value
        baseline = nan if self.baseline is None else self.baseline
        ratio = nan if self.ratio is None else self.ratio
        self.passed = bool(rule(value, baseline, ratio))
        return self

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def repeat(fn: Callable[[], Any], repetitions: int) -> list[float]:
    """Wall-clock seconds of ``repetitions`` calls of ``fn``."""
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (CPU, cores, library versions, torch threads)."""
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import torch

        info.update(
            torch=torch.__version__,
            torch_threads=torch.get_num_threads(),
            torch_interop_threads=torch.get_num_interop_threads(),
            cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        )
    except ImportError:
        info["torch"] = None
    for module in ("transformers", "scrapy", "pandas", "sqlite3"):
        try:
            mod = __import__(module)
            info[module] = getattr(mod, "sqlite_version", None) if module == "sqlite3" else mod.__version__
        except ImportError:
            info[module] = None
    return info


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    if magnitude >= 1e9:
        text = f"{value / 1e9:.2f} G"
    elif magnitude >= 1e6:
        text = f"{value / 1e6:.2f} M"
    elif magnitude >= 1e4:
        text = f"{value:,.0f} "
    elif magnitude >= 100:
        text = f"{value:.0f} "
    elif magnitude >= 1:
        text = f"{value:.2f} "
    else:
        text = f"{value:.3g} "
    return (text + unit).strip()


def markdown_table(figures: Iterable[Figure]) -> str:
    """The table the README pastes: figure, ours, baseline, ratio, target, verdict."""
    lines = [
        "| benchmark | figure | ours | baseline | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        baseline = f"{_fmt(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline_name else "–"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "–"
        verdict = {True: "pass", False: "**miss**", None: "info"}[f.passed]
        name = f.name + (f" — {f.note}" if f.note else "")
        lines.append(
            f"| {f.benchmark} | {name} | {_fmt(f.value, f.unit)} | {baseline} | {ratio} | {f.target or '–'} | {verdict} |"
        )
    return "\n".join(lines)


def write_results(figures: Sequence[Figure], meta: dict[str, Any], *, latest: bool = True) -> Path:
    """bench/results/<timestamp>.json always; bench/latest.json for a full (committed) run."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "figures": [f.as_dict() for f in figures], "table": markdown_table(figures)}
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(text, encoding="utf-8")
    if latest:
        LATEST_FILE.write_text(text, encoding="utf-8")
    return path
