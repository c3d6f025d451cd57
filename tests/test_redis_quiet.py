"""`-q` on the distributed mode's commands, run for real against a real redis-server.

`reputation ingest`, `reputation worker crawl` and `reputation worker score` print their summary
lines without -q and nothing under it (data asked for with --json still prints); an error still
goes to stderr as one line, with exit status 1. (A quiet crawl worker that crawls is in
tests/test_redis_walk.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from crawl_support import rows
from redis_server import RedisServer
from tiny_models import build_classifier

from crawler.identity import AUTHOR_KEY_ENV
from crawler.items import ReviewItem
from crawler.pipelines.stream_writer import item_fields
from reputation.cli import cli
from reputation.distributed import streams
from reputation.distributed.score_ingest import enqueue_unscored
from storage.database import connect, utcnow

ROOT = Path(__file__).resolve().parents[1]
# No author key from the environment: the worker must find it in Redis or refuse.
ENV = {**{k: v for k, v in os.environ.items() if k != AUTHOR_KEY_ENV}, "PYTHONWARNINGS": "ignore"}
WAIT_S = 600  # a loaded machine starts Python, Scrapy and torch slowly


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "reputation.db"
    db = connect(path)
    db.table("brands").insert({"id": "northwind", "name": "Northwind"})
    db.table("sources").insert({"id": "src1", "brand_id": "northwind", "url": "http://127.0.0.1/r/"})
    db.close()
    return path


def reputation(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command line in its own process: what cron or a service manager runs."""
    return subprocess.run([sys.executable, "-m", "reputation.cli", *argv], cwd=ROOT, env=env or ENV,
                          capture_output=True, text=True, timeout=WAIT_S)  # fmt: skip


def send_review(client: Any, n: int) -> None:
    """One review item in the items stream, as a crawl worker sends it."""
    body = f"Review {n}: the agent was helpful."
    item = ReviewItem(id=f"site:src1:{n}", source_id="src1", brand_id="northwind", body=body,
                      body_hash=hashlib.sha256(body.encode()).hexdigest(), author_hash="a")  # fmt: skip
    client.xadd(streams.ITEMS_STREAM, item_fields(item, "test"))


def test_ingest_summary_only_without_q(db_path: Path, redis_server: RedisServer, tmp_path: Path) -> None:
    client = streams.connect(redis_server.url, wait=False)
    runner = CliRunner()
    ingest = ["--db", str(db_path), "ingest", "--redis", redis_server.url, "--once", "--no-enqueue"]

    send_review(client, 1)
    quiet = runner.invoke(cli, ["-q", *ingest])
    assert quiet.exit_code == 0, quiet.output
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert [r["id"] for r in rows(db_path, "SELECT id FROM reviews")] == ["site:src1:1"]  # it did its work

    send_review(client, 2)
    loud = runner.invoke(cli, ingest)
    assert loud.exit_code == 0, loud.output
    items, scores = loud.stdout.splitlines()
    assert items.startswith("items 1 (") and "new 1" in items and scores == "scores stored 0, unchanged 0"

    send_review(client, 1)
    data = runner.invoke(cli, ["-q", *ingest, "--json"])  # data asked for still prints
    assert data.exit_code == 0, data.output
    assert json.loads(data.stdout)["item_outcomes"]["unchanged"] == 1

    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database\n" * 100)
    failed = reputation("-q", "--db", str(not_a_db), "ingest", "--redis", redis_server.url, "--once")
    assert failed.returncode == 1 and failed.stdout == ""
    assert len(failed.stderr.splitlines()) == 1 and failed.stderr.startswith("Error: "), failed.stderr


def test_crawl_worker_summary_only_without_q_and_an_error_is_one_line(redis_server: RedisServer) -> None:
    refused = reputation("-q", "worker", "crawl", "--redis", redis_server.url, "--idle-exit", "0")
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith("Error: no author key in Redis")

    loud = reputation("worker", "crawl", "--redis", redis_server.url, "--idle-exit", "0",
                      env={**ENV, AUTHOR_KEY_ENV: "k" * 32})  # fmt: skip
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert loud.stdout == "pages 0, items streamed 0\n"  # an empty frontier: nothing to crawl


def add_reviews(db_path: Path, n: int) -> None:
    db: sqlite_utils.Database = connect(db_path)
    now = utcnow()
    bodies = [f"Review {i}: the agent {'sorted it out' if i % 2 else 'hung up on me'}." for i in range(n)]
    db.table("reviews").insert_all(
        {"id": f"r{i}", "source_id": "src1", "brand_id": "northwind", "body": body, "language": "en",
         "body_hash": hashlib.sha256(body.encode()).hexdigest(), "first_seen": now, "last_seen": now}
        for i, body in enumerate(bodies)
    )  # fmt: skip
    db.close()


def test_score_worker_summary_only_without_q_and_an_error_is_one_line(
    db_path: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    model = build_classifier(tmp_path / "model", layers=1, model_id="tiny-quiet")
    n = 6
    add_reviews(db_path, n)
    client = streams.connect(redis_server.url, wait=False)
    db = connect(db_path)
    assert enqueue_unscored(client, db, "tiny-quiet", "q1") == n
    db.close()
    score = ["worker", "score", "--redis", redis_server.url, "--model", str(model), "--device", "cpu",
             "--exit-when-idle"]  # fmt: skip

    quiet = reputation("-q", *score)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout == ""
    assert client.xlen(streams.SCORES_STREAM) == n  # it scored everything, silently

    loud = CliRunner().invoke(cli, score)  # nothing left to score: the summary says so
    assert loud.exit_code == 0, loud.output
    (line,) = loud.stdout.splitlines()
    assert ": model tiny-quiet @ " in line and "scored 0, failed 0" in line

    missing = reputation("-q", *score[:4], "--model", str(tmp_path / "no-model"), "--exit-when-idle")
    assert missing.returncode == 1 and missing.stdout == ""
    assert len(missing.stderr.splitlines()) == 1, missing.stderr
    assert "no-model does not exist" in missing.stderr
