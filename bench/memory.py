"""Peak memory of one product operation, measured in a fresh child process.

Every measurement gets its own interpreter: ``python -m bench.memory rollup DB`` or
``python -m bench.memory score DB MODEL N``. The peak is VmHWM from /proc/self/status: unlike
``getrusage().ru_maxrss``, which a child inherits from the (large) benchmark process that forked
it and keeps across exec, VmHWM starts afresh with the new program.
The child prints one JSON line: {"maxrss_mb": ..., "baseline_mb": ..., "seconds": ...}, where
baseline_mb is the high-water mark after imports and model loading, before the work starts.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _maxrss_mb() -> float:
    """Peak resident memory of this program in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _rollup(db_path: str) -> dict[str, Any]:
    from bench.synth import AS_OF
    from reputation.rollups.build import build_rollups
    from storage.database import connect

    db = connect(db_path)
    baseline = _maxrss_mb()
    start = time.perf_counter()
    build_rollups(db, as_of=AS_OF)
    return {"seconds": time.perf_counter() - start, "baseline_mb": baseline}


def _score(db_path: str, model_dir: str, limit: int) -> dict[str, Any]:
    from reputation.scoring.job import load_model, score_reviews
    from storage.database import connect

    db = connect(db_path)
    model = load_model(model_dir)
    baseline = _maxrss_mb()
    start = time.perf_counter()
    summary = score_reviews(db, model=model, limit=limit, progress=False)
    return {"seconds": time.perf_counter() - start, "baseline_mb": baseline, "scored": summary.scored}


def measure(args: list[str], timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m bench.memory ARGS`` and return its JSON result."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", *args],
        cwd=root, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory {' '.join(args)} failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str]) -> int:
    if argv[:1] == ["rollup"] and len(argv) == 2:
        result = _rollup(argv[1])
    elif argv[:1] == ["score"] and len(argv) == 4:
        result = _score(argv[1], argv[2], int(argv[3]))
    else:
        print("usage: python -m bench.memory rollup DB | score DB MODEL_DIR N", file=sys.stderr)
        return 2
    result["maxrss_mb"] = _maxrss_mb()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
