"""`python -m bench [--quick] [--only scoring|crawl|storage]`: run, print a table, save JSON.

A full run writes bench/results/<timestamp>.json and bench/latest.json (committed); --quick
and --only runs write only the timestamped file, so latest.json always holds a full run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import Figure, machine_info, markdown_table, write_results

BENCHMARKS = ("scoring", "crawl", "storage", "redis-score", "redis-crawl")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _guarded(name: str, fn: Callable[[], list[Figure]]) -> list[Figure]:
    """A benchmark that breaks becomes one failed row; the others still run."""
    start = time.perf_counter()
    _say(f"[{name}] starting")
    try:
        figures = fn()
    except Exception as exc:  # report, do not abort the suite
        traceback.print_exc()
        return [Figure(name, "benchmark failed", None, "", note=f"{type(exc).__name__}: {exc}"[:300], passed=False)]
    _say(f"[{name}] done in {time.perf_counter() - start:.0f} s")
    return figures


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs, few repetitions: a smoke run")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--repetitions", type=int, default=None, help="repetitions per timing (default 3, quick 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    from bench import crawling, hardware, scoring, storage
    from bench.models import benchmark_model

    selected = args.only or list(BENCHMARKS)
    repetitions = args.repetitions or (2 if args.quick else 3)
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if args.quick else "full",
        "selected": selected,
        "repetitions": repetitions,
        "machine": machine_info(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="reputation-bench-"))
    figures: list[Figure] = []
    try:
        model_dir, is_default = benchmark_model()
        meta["model"] = {"path": str(model_dir), "default": is_default}
        flops: float | None = None
        if "scoring" in selected:
            hw, flops = hardware.run(args.quick)
            figures += hw
            figures += _guarded("scoring", lambda: scoring.run(
                quick=args.quick, matmul_flops=flops, model_dir=model_dir, is_default=is_default, say=_say))
        if "crawl" in selected:
            figures += _guarded("crawl", lambda: crawling.run(
                workdir / "crawl", quick=args.quick, repetitions=repetitions, say=_say))
        if "storage" in selected:
            (workdir / "storage").mkdir()
            figures += _guarded("storage", lambda: storage.run(
                workdir / "storage", quick=args.quick, repetitions=repetitions, model_dir=model_dir, say=_say))
        if "redis-score" in selected:  # scoring workers over Redis (bench/redis_score.py)
            from bench import redis_score
            figures += _guarded("redis-score", lambda: redis_score.run(
                workdir / "redis-score", quick=args.quick, model_dir=model_dir, is_default=is_default, say=_say))
        if "redis-crawl" in selected:  # crawl workers on the Redis frontier (bench/redis_crawl.py)
            from bench import redis_crawl
            figures += _guarded("redis-crawl", lambda: redis_crawl.run(workdir / "redis-crawl", quick=args.quick, say=_say))
    finally:
        if args.keep:
            _say(f"working files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    full = not args.quick and not args.only
    path = write_results(figures, meta, latest=full)
    print(markdown_table(figures))
    _say(f"\n{len(figures)} figures in {meta['seconds']:.0f} s; saved {path}" + (" and bench/latest.json" if full else ""))
    misses = [f for f in figures if f.passed is False]
    if misses:
        _say("missed: " + "; ".join(f"{f.benchmark}: {f.name}" for f in misses))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
