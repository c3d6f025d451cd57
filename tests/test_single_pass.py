"""The single-pass scorer on the real default model and its committed sentence heads.

Covers: review scores identical to ``predict`` (short and windowed texts), sentence spans found in
messy text, bad input (empty, one word, 1 MB, no sentence boundary, non-English) flagged without a
crash, a one-sentence review's part equal to ``predict`` on the whole text, the heads' committed
held-out figures (and a recomputation of the aspect F1), the heads hashed into the model revision,
a plain Hugging Face classifier falling back to the three-pass path, the scoring job's switch, and
the heads' training on a small set written outside the model directory: its held-out and
calibration record, the calibration maps and the ECE bootstrap interval.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from tiny_models import build_classifier

from reputation.scoring.job import SINGLE_PASS, THREE_PASS, score_reviews, single_pass_enabled
from sentiment.default_model import PROJECT_DATA_FILE, SENTENCE_HEADS_FILE, artefact_dir, revision_of
from sentiment.labels import CANONICAL_LABELS
from sentiment.limits import CAPPED_FLAG
from sentiment.metrics import ece_interval, expected_calibration_error
from sentiment.model import SentimentModel
from sentiment.package_data import ASPECT_SENTENCES, COMPLAINT_SENTENCES, package_path
from sentiment.single_pass import SinglePassScorer, load_heads, pool_spans, sentence_spans
from sentiment.training.calibration import CALIBRATORS, fit_calibration
from sentiment.training.sentence_heads import (
    HEADS_SENTENCES,
    LAYERS,
    calibration_role,
    load_sentences,
    nll,
    stable_share,
    train_heads,
)
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
    assert heads.layers == LAYERS
    assert figures["aspect_alone"]["f1"] >= 0.95  # the target
    assert figures["aspect_alone"]["ece"] <= 0.05
    held = figures["complaints_heldout"]
    # the classifier itself now trains on such complaints (the previous default read 20 of the 46
    # negative ones as neutral), so the heads need only keep that: at most 5, as the classifier
    assert held["negative_as_neutral_before"] <= 5 and held["negative_as_neutral_after"] <= 5
    sentiment = figures["sentence_sentiment_heldout"]
    _check_sentiment_record(sentiment)
    assert sentiment["n"] > held["n"]
    assert sentiment["ece"] <= 0.05  # the target, on 156 sentences: see the interval in the model card
    # recompute the aspect F1 on the held-out sentences, each read alone
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


# --- training the heads ------------------------------------------------------------------------


def _check_sentiment_record(held: dict) -> None:
    """Fields and sane values of the held-out sentence-sentiment block (no pinned figures)."""
    assert held["n"] == sum(held["per_class"].values()) == sum(held["sources"].values())
    assert set(held["per_class"]) == set(CANONICAL_LABELS) and all(held["per_class"].values())
    for block in (held, held["uncalibrated"], held["review_model"], held["in_context"]):
        assert 0 < block["accuracy"] <= 1 and 0 < block["macro_f1"] <= 1
        assert 0 <= block["ece"] < 0.5 and block["nll"] > 0
    low, high = held["ece_interval_90"]
    assert 0 <= low <= high <= 1
    unseen = held["not_in_review_model_training"]
    assert 0 < unseen["n"] <= held["n"] and unseen["n"] == sum(unseen["per_class"].values())


def _subset(source: Path, target: Path, per_key: int, key: str) -> Path:
    """The first ``per_key`` rows of each value of the ``key`` columns (comma-separated)."""
    with source.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept: list[dict[str, str]] = []
    seen: dict[tuple[str, ...], int] = {}
    for row in rows:
        k = tuple(row[c] for c in key.split(","))
        if seen.get(k, 0) < per_key:
            kept.append(row)
            seen[k] = seen.get(k, 0) + 1
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return target


def test_train_heads_writes_outside_the_model_and_records_calibration(tmp_path: Path) -> None:
    before = hashlib.sha256(HEADS.read_bytes()).hexdigest()
    aspect = _subset(package_path(*ASPECT_SENTENCES), tmp_path / "aspect.csv", 25, "split,is_cs")
    complaints = _subset(package_path(*COMPLAINT_SENTENCES), tmp_path / "complaints.csv", 12, "split,label")
    cs_reviews = _subset(artefact_dir() / PROJECT_DATA_FILE, tmp_path / "cs.csv", 30, "label")
    extra = _subset(package_path(*HEADS_SENTENCES), tmp_path / "extra.csv", 8, "is_cs,label")
    out = tmp_path / "heads-run"  # a directory that does not exist yet
    record = train_heads(
        None, out, aspect=aspect, complaints=complaints, cs_reviews=cs_reviews, extra=extra,
        log=lambda _l: None,
    )  # fmt: skip
    written = out / SENTENCE_HEADS_FILE
    assert load_heads(written).info["evaluation"] == json.loads(json.dumps(record))
    assert hashlib.sha256(HEADS.read_bytes()).hexdigest() == before  # the model's own heads untouched

    held = record["sentence_sentiment_heldout"]
    _check_sentiment_record(held)
    assert held["sources"]["complaints"] == record["complaints_heldout"]["n"]
    assert held["sources"]["cs_reviews"] > 0
    assert set(held["variants"]) == {
        "calibrated_temperature", "calibrated_temperature_bias", "calibrated_vector", "temperature_on_distilled"
    }  # fmt: skip
    complaints_block = record["complaints_heldout"]
    assert complaints_block["n"] == sum(complaints_block["per_class"].values())
    calibration = record["training"]["sentiment_calibration"]
    cv = calibration["cv_nll"]
    assert set(cv) == set(CALIBRATORS)
    assert calibration["method"] == min(cv, key=lambda m: cv[m])  # chosen on the calibration share
    assert calibration["sentences"] == sum(calibration["per_class"].values()) > 0
    assert record["training"]["cs_reviews_file"] == cs_reviews.name
    cs_cv = record["training"]["cs_penalty_cv_nll"]  # the relevance penalty: cross-validated on train rows
    assert str(record["training"]["cs_penalty"]) == min(cs_cv, key=lambda pen: cs_cv[pen])


def test_heldout_and_calibration_sentences_never_move_or_overlap() -> None:
    rows = load_sentences(
        package_path(*ASPECT_SENTENCES),
        package_path(*COMPLAINT_SENTENCES),
        artefact_dir() / PROJECT_DATA_FILE,
        package_path(*HEADS_SENTENCES),
    )
    held = {" ".join(r.text.lower().split()) for r in rows if r.split != "train"}
    train = [r for r in rows if r.split == "train"]
    assert held.isdisjoint(" ".join(r.text.lower().split()) for r in train)
    extra = [r for r in rows if r.source == "heads"]
    assert len(extra) >= 300 and all(r.split == "train" and r.label in CANONICAL_LABELS for r in extra)
    cs_held = [r for r in rows if r.source == "cs_reviews" and r.split == "heldout"]
    cs_all = [r for r in rows if r.source == "cs_reviews"]
    assert 0.2 < len(cs_held) / len(cs_all) < 0.45
    roles = {calibration_role(r) for r in train if r.label is not None}
    assert roles == {"fit", "calibration", "sentiment_calibration"}
    assert {calibration_role(r) for r in train if r.label is None} == {"fit", "calibration"}
    # the split is a hash of the text: case and spacing do not move a sentence
    assert stable_share("The agent  hung up.", "heldout") == stable_share("the agent hung up.", "heldout")
    assert stable_share("The agent hung up.", "heldout") != stable_share("The agent hung up.", "calibration")


def test_calibration_maps_undo_overconfidence() -> None:
    rng = np.random.default_rng(3)
    true_logits = rng.normal(0.0, 1.5, size=(3000, 3)) + np.array([0.5, -0.5, 0.0])
    p = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(3, p=row) for row in p])
    logits = 3.0 * true_logits  # an over-confident model: logits three times too large
    none = fit_calibration(logits, gold, "none")
    temperature = fit_calibration(logits, gold, "temperature")
    assert temperature.scale == pytest.approx(np.full(3, 1 / 3), rel=0.1)
    for method in CALIBRATORS[1:]:
        fitted = fit_calibration(logits, gold, method)
        probs = fitted.probabilities(logits)
        assert nll(probs, gold) < nll(none.probabilities(logits), gold)
        correct = probs.argmax(axis=1) == gold
        assert expected_calibration_error(probs.max(axis=1).tolist(), correct.tolist()) < 0.03
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibration(logits, gold, "isotonic")


def test_ece_interval_brackets_the_spread_of_small_samples() -> None:
    rng = np.random.default_rng(5)
    confidence = rng.uniform(0.4, 1.0, size=150)
    correct = rng.uniform(size=150) < confidence  # calibrated by construction
    low, high = ece_interval(confidence.tolist(), correct.tolist())
    assert 0 <= low < high < 0.25
    assert ece_interval([], []) != ece_interval([], [])  # NaN for no rows
    with pytest.raises(ValueError, match="level"):
        ece_interval([0.5], [True], level=1.5)
