"""``python -m relations.training [--out DIR]``: train the heads, evaluate, write the artefact."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from relations.model import default_artefact
from relations.training.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relations.training", description=__doc__)
    parser.add_argument("--out", type=Path, default=None,
                        help="artefact directory (default: the package's relations/models/minilm-relations)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the frozen encoder's outputs here, so a re-run with the same sentences skips encoding")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    result = train(args.out or default_artefact(), args.cache)
    summary = result["metrics"]["end_to_end"]["detection"], result["metrics"]["mentions"], result["training"]["total_seconds"]
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
