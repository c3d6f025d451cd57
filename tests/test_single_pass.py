"""The single-pass scorer on the real default model and its committed sentence heads.

Covers: review scores identical to ``predict`` (short and windowed texts), sentence spans found in
messy text, bad input (empty, one word, 1 MB, no sentence boundary, non-English) flagged without a
crash, a one-sentence review's part equal to ``predict`` on the whole text, the heads' committed
held-out figures (and a recomputation of the aspect F1), the heads hashed into the model revision,
a plain Hugging Face classifier falling back to the three-pass path, and the scoring job's switch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from tiny_models import build_classifier

from reputation.scoring.job import SINGLE_PASS, THREE_PASS, score_reviews, single_pass_enabled
from sentiment.default_model import SENTENCE_HEADS_FILE, artefact_dir, revision_of
from sentiment.limits import CAPPED_FLAG
from sentiment.model import SentimentModel
from sentiment.package_data import ASPECT_SENTENCES, package_path
from sentiment.single_pass import SinglePassScorer, load_heads, pool_spans, sentence_spans
from storage.database import connect, utcnow

HEADS = artefact_dir() / SENTENCE_HEADS_FILE
MIXED = [
    "The jacket fits well and the colour is lovely. But the agent on the phone was rude and hung up on me.",
    "2 hours on hold and still no answer.",
    "Where is my refund? I emailed support three times. The shoes are fine though.",
    "Great price, fast delivery, would buy again.",
]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel.load()


@pytest.fixture(scope="module")
def scorer(model: SentimentModel) -> SinglePassScorer:
    found = SinglePassScorer.for_model(model)
    assert found is not None, "the default model ships sentence heads"
    return found


def test_review_scores_equal_predict(model: SentimentModel, scorer: SinglePassScorer) -> None:
    long = " ".join(MIXED * 40)  # several windows
    texts = [*MIXED, long]
    readings = scorer.read(texts)
    for reading, prediction in zip(readings, model.predict(texts), strict=True):
        assert reading.overall.label == prediction.label
        assert reading.overall.score == pytest.approx(prediction.score, abs=1e-9)
    assert "windowed" in readings[-1].overall.flags
    assert readings[-1].aspect.sentences == sentence_spans(long)[0]
    assert all(len(r.aspect.relevance) == len(r.aspect.sentences) for r in readings)


def test_sentence_spans_point_into_the_text() -> None:
    text = "Title here!!!\n\n  The agent was rude.   Hold music 😡 Nobody answered\n- bullet one\n- bullet two"
    sentences, spans, aligned = sentence_spans(text)
    assert aligned and len(sentences) == len(spans) >= 4
    for sentence, (start, end) in zip(sentences, spans, strict=True):
        assert " ".join(text[start:end].split()) == sentence


def test_customer_service_sentences_are_found_and_parts_split(scorer: SinglePassScorer) -> None:
    reading = scorer.read([MIXED[0]])[0]
    assert reading.aspect.sentences == [
        "The jacket fits well and the colour is lovely.",
        "But the agent on the phone was rude and hung up on me.",
    ]
    assert reading.aspect.cs_sentences == ["But the agent on the phone was rude and hung up on me."]
    assert reading.cs is not None and reading.other is not None
    assert reading.cs.score is not None and reading.other.score is not None
    assert reading.cs.label == "negative" and reading.cs.score < 0 < reading.other.score
    assert 0 < reading.aspect.cs_relevance < 1


def test_bad_input_is_flagged_not_fatal(model: SentimentModel, scorer: SinglePassScorer) -> None:
    texts = ["", "   ", "Rubbish", "x" * 1_000_000, "word " * 3000, "El agente fue muy grosero conmigo", "!!!"]
    readings = scorer.read(texts)
    predictions = model.predict(texts)
    assert readings[0].overall.flags == ["empty"] and readings[0].aspect.sentences == []
    assert readings[0].cs is None and readings[0].other is None
    assert readings[1].overall.flags == ["empty"]
    assert CAPPED_FLAG in readings[3].overall.flags
    for reading, prediction in zip(readings, predictions, strict=True):
        assert reading.overall.score == prediction.score or (
            reading.overall.score is not None and reading.overall.score == pytest.approx(prediction.score)
        )
        if len(reading.aspect.sentences) == 1:  # one sentence: its part is predict on the whole text
            part = reading.cs if reading.cs is not None else reading.other
            assert part is not None and part.score == prediction.score


def test_committed_heads_meet_their_targets_and_are_small(model: SentimentModel) -> None:
    heads = load_heads(HEADS)
    figures = heads.info["evaluation"]
    assert HEADS.stat().st_size < 200_000
    assert figures["aspect_alone"]["f1"] >= 0.95
    assert figures["aspect_alone"]["ece"] <= 0.05
    held = figures["complaints_heldout"]
    assert held["negative_as_neutral_after"] < held["negative_as_neutral_before"]
    # recompute the aspect F1 on the held-out sentences, each read alone
    import csv

    with package_path(*ASPECT_SENTENCES).open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "eval"]
    texts = [r["text"] for r in rows]
    encoded = model.encode(texts, None, offsets=True)
    _, pooled, read = pool_spans(model, encoded, [np.array([[0, len(t)]]) for t in texts], heads.layers)
    assert read.all()
    predicted = heads.relevance(pooled) >= heads.threshold
    truth = np.array([r["is_cs"] == "1" for r in rows])
    tp = float((predicted & truth).sum())
    f1 = 2 * tp / (predicted.sum() + truth.sum())
    assert f1 == pytest.approx(figures["aspect_alone"]["f1"], abs=0.01)


def test_heads_are_part_of_the_revision(tmp_path: Path) -> None:
    copy = tmp_path / "artefact"
    shutil.copytree(artefact_dir(), copy)
    with_heads = revision_of(copy)
    (copy / SENTENCE_HEADS_FILE).unlink()
    assert revision_of(copy) != with_heads


def _add(db: sqlite_utils.Database, bodies: list[str]) -> None:
    now = utcnow()
    db.table("brands").upsert({"id": "b", "name": "B"}, pk="id")
    db.table("sources").upsert({"id": "s", "brand_id": "b", "url": "http://127.0.0.1/"}, pk="id")
    rows = [
        {"id": f"r{i}", "source_id": "s", "brand_id": "b", "title": None, "body": body,
         "body_hash": hashlib.sha256(body.encode()).hexdigest(), "language": "en", "first_seen": now, "last_seen": now}
        for i, body in enumerate(bodies)
    ]  # fmt: skip
    with db.conn:
        db.table("reviews").insert_all(rows)


def test_job_switch_and_fallback_for_a_plain_classifier(model: SentimentModel, tmp_path: Path) -> None:
    db = connect(tmp_path / "on.db")
    _add(db, [*MIXED, "", "Rubbish"])
    summary = score_reviews(db, model=model, progress=False, single_pass=True)
    assert summary.scoring_path == SINGLE_PASS and summary.scored == len(MIXED) + 2
    rows = {r["review_id"]: r for r in db.query("SELECT * FROM review_sentiment")}
    predictions = model.predict([*MIXED, "Rubbish"])
    for i, prediction in enumerate(predictions[:-1]):
        assert rows[f"r{i}"]["score"] == pytest.approx(prediction.score)
    assert json.loads(rows["r0"]["cs_sentences"]) == ["But the agent on the phone was rude and hung up on me."]
    assert rows["r0"]["cs_score"] < rows["r0"]["other_score"]
    one = rows[f"r{len(MIXED) + 1}"]  # one word: its part is the review's own score
    assert (one["cs_score"] if one["cs_score"] is not None else one["other_score"]) == pytest.approx(
        predictions[-1].score
    )
    assert rows[f"r{len(MIXED)}"]["score"] is None and "empty" in json.loads(rows[f"r{len(MIXED)}"]["flags"])

    tiny = SentimentModel.load(build_classifier(tmp_path / "tiny"))
    assert SinglePassScorer.for_model(tiny) is None  # no heads: the three-pass path
    plain = connect(tmp_path / "plain.db")
    _add(plain, MIXED)
    assert score_reviews(plain, model=tiny, progress=False, single_pass=True).scoring_path == THREE_PASS


def test_single_pass_is_the_default_and_the_environment_switches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPUTATION_SINGLE_PASS", raising=False)
    assert single_pass_enabled()
    monkeypatch.setenv("REPUTATION_SINGLE_PASS", "0")
    assert not single_pass_enabled() and single_pass_enabled(True)
