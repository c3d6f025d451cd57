"""The scoring job: stored reviews in, review_sentiment rows out, resumable at any point.

Work is found by query, not remembered: a review needs scoring when it has no row for
this (model_id, model_revision), when its body changed since it was scored, or when its
last attempt failed. Reviews are read in chunks ordered by id and each chunk's rows are
written in one transaction, so a killed job loses at most the chunk in hand and the next
run picks up the rest. The primary key (review_id, model_id, model_revision) makes a
second row for the same review and model revision impossible.

Customer-service (CS) part, per review (sentiment.aspect): the text is split into
sentences and each gets a CS relevance. ``cs_relevance`` is the share of the review's
characters in sentences at or above the detector's threshold (0.0 = nothing about customer
service; NULL when the text has no sentences). ``cs_sentences`` are those sentences, and
``cs_score``/``cs_label`` come from classifying them joined together; those three are
NULL when no sentence passes, and the CS score never mixes in product or price talk.
``other_score`` is the sentiment of the remaining sentences (product, price, delivery...):
the brand's own baseline, which vendor-switch comparisons subtract; it is the overall score
when no sentence is about customer service and NULL when every sentence is. The detector is part
of the job: when its encoder or head cannot be loaded the job stops with ModelUnavailableError
rather than write rows with the cs_* columns missing.

Two paths give these columns. The three-pass path (above: classifier, sentence encoder, classifier
again over the joined parts) is the reference and the fallback. The single-pass path
(sentiment.single_pass) reads everything from one forward pass of the classifier, with sentence
heads that ship next to the model's weights and are part of its revision: sentence relevance and
sentiment come from the review's own hidden states, ``cs_score``/``other_score`` are the
character-weighted sentence sentiment of each part, and a part that is the whole review (one
sentence, or all sentences on one side) is the review's prediction itself. It runs when
``single_pass`` is on (the default; ``REPUTATION_SINGLE_PASS=0`` turns it off, ``=1`` on) and the
model has heads and a torch backend; any other model (a plain Hugging Face classifier) keeps the
three-pass path. ``ScoreSummary.scoring_path`` says which ran.

Bounds: the model and the detector read only the first ``MAX_SCORED_CHARS`` characters of a
review's text (title plus body; sentiment.limits explains the figure). The whole body stays
stored in ``reviews``; the row of a review scored on a prefix carries the ``capped`` flag.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils
from tqdm import tqdm

from sentiment.aspect import AspectModelError, CustomerServiceDetector
from sentiment.limits import CAPPED_FLAG, MAX_TEXT_CHARS, cap_text
from sentiment.model import ModelLoadError, Prediction, SentimentModel
from sentiment.single_pass import SentenceHeadsError, SinglePassScorer
from storage.database import transaction, utcnow
from storage.errors import ReputationError
from storage.runlog import start_run

ERROR_FLAG = "score_error"
NON_ENGLISH_FLAG = "non_english"
#: Characters of one review's text (title and body) that are scored; see sentiment.limits.
MAX_SCORED_CHARS = MAX_TEXT_CHARS
_PK = ("review_id", "model_id", "model_revision")
#: Whether the job reads everything from one forward pass when the model has sentence heads.
#: On since the demo's ranking and switch direction came out as generated with it (tests/test_demo.py).
SINGLE_PASS_DEFAULT = True
SINGLE_PASS_ENV = "REPUTATION_SINGLE_PASS"
SINGLE_PASS, THREE_PASS = "single-pass", "three-pass"

_PENDING = """
    FROM reviews r
    LEFT JOIN review_sentiment s
      ON s.review_id = r.id AND s.model_id = :model_id AND s.model_revision = :revision
    WHERE (s.review_id IS NULL OR s.body_hash != r.body_hash OR s.flags LIKE '%"score_error"%')
"""


def pending_chunks(
    db: sqlite_utils.Database,
    model_id: str,
    revision: str,
    columns: str,
    *,
    chunk: int,
    limit: int | None = None,
) -> Iterator[list[Any]]:
    """The reviews ``model_id@revision`` still has to score, ``columns`` of each (the first must be
    ``r.id``), in chunks ordered by id, at most ``limit`` rows in all.

    Keyset pagination (``r.id > last id``), not OFFSET: the caller may score a chunk, write its rows
    or hand it on before asking for the next, which takes it out of the pending set; the next chunk
    starts after the last id either way. Used by this job and by the Redis writer's enqueue.
    """
    params: dict[str, Any] = {"model_id": model_id, "revision": revision}
    after, taken = "", 0
    while limit is None or taken < limit:
        take = chunk if limit is None else min(chunk, limit - taken)
        rows = db.execute(
            f"SELECT {columns} " + _PENDING + " AND r.id > :after ORDER BY r.id LIMIT :take",
            {**params, "after": after, "take": take},
        ).fetchall()
        if not rows:
            return
        yield rows
        taken += len(rows)
        after = rows[-1][0]


#: What reads the customer-service part: the three-pass detector or the single-pass scorer.
Detector = CustomerServiceDetector | SinglePassScorer


class ModelUnavailableError(ReputationError):
    """The sentiment model or the customer-service detector cannot be loaded; the message names it."""


@dataclass
class ScoreSummary:
    """What one run of the job did."""

    model_id: str
    model_revision: str
    scored: int = 0  # rows written (new plus re-scored)
    rescored: int = 0  # of those, reviews whose text changed or whose earlier attempt failed
    skipped: int = 0  # reviews already scored by this model revision
    flagged: int = 0  # rows written with at least one flag
    failed: int = 0  # reviews that raised while scoring; stored with the score_error flag
    flags: dict[str, int] = field(default_factory=dict)
    customer_service: bool = False  # whether the CS aspect detector ran (always, once loading succeeded)
    scoring_path: str = THREE_PASS  # SINGLE_PASS or THREE_PASS (see the module docstring)
    run_id: int | None = None


def load_model(
    model: SentimentModel | str | None, *, device: str | None = None, backend: str = "torch"
) -> SentimentModel:
    """A SentimentModel from an instance, a directory / cached hub id, or None for the default."""
    if isinstance(model, SentimentModel):
        return model
    try:
        return SentimentModel.load(model, device=device, backend=backend)
    except ModelLoadError as exc:
        raise ModelUnavailableError(str(exc)) from exc


def score_reviews(
    db: sqlite_utils.Database,
    *,
    model: SentimentModel | str | None = None,
    batch_size: int = 64,
    chunk_size: int = 512,
    progress: bool = True,
    limit: int | None = None,
    device: str | None = None,
    single_pass: bool | None = None,
    detector: Detector | None = None,
) -> ScoreSummary:
    """Score every review that lacks a current row for this model; see the module docstring.

    ``single_pass`` None follows $REPUTATION_SINGLE_PASS, else SINGLE_PASS_DEFAULT. ``detector``
    is one already loaded for this model (a long-lived process loads it once); it wins over the switch.
    """
    if chunk_size < 1 or batch_size < 1:
        raise ReputationError(f"chunk size and batch size must be positive (got {chunk_size}, {batch_size})")
    classifier = load_model(model, device=device)
    if detector is None:
        detector = _load_detector(classifier, single_pass)
    summary = ScoreSummary(
        classifier.model_id,
        classifier.revision,
        customer_service=True,
        scoring_path=SINGLE_PASS if isinstance(detector, SinglePassScorer) else THREE_PASS,
    )
    params = {"model_id": classifier.model_id, "revision": classifier.revision}
    total = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    pending = db.execute("SELECT COUNT(*) " + _PENDING, params).fetchone()[0]
    summary.skipped = total - pending
    todo = pending if limit is None else min(pending, max(limit, 0))
    summary.run_id = _start_run(db, summary)
    bar = tqdm(
        total=todo, disable=not progress, file=sys.stderr, unit="review", desc="scoring", dynamic_ncols=True
    )
    columns = "r.id, r.title, r.body, r.body_hash, r.language, s.review_id IS NOT NULL AS seen"
    try:
        for rows in pending_chunks(db, classifier.model_id, classifier.revision, columns,
                                   chunk=chunk_size, limit=todo):  # fmt: skip
            records = _score_rows(rows, classifier, detector, batch_size)
            _tally(summary, rows, records)
            with transaction(db):
                db.table("review_sentiment").upsert_all(records, pk=_PK)
                _update_run(db, summary, "running")
            bar.update(len(rows))
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        with transaction(db):
            _update_run(db, summary, status)
        raise
    finally:
        bar.close()
    with transaction(db):
        _update_run(db, summary, "ok")
    return summary


def review_text(title: str | None, body: str | None) -> str:
    """The text scored: the title as a first sentence (often the verdict), then the body."""
    body = body or ""
    title = (title or "").strip()
    if not title or body.lstrip().startswith(title.rstrip(".…!? ")):
        return body
    stop = "" if title[-1] in ".!?…" else "."
    return f"{title}{stop}\n{body}"


def _score_rows(
    rows: Sequence[Any], model: SentimentModel, detector: Detector, batch_size: int
) -> list[dict[str, Any]]:
    """Rows for review_sentiment; a failure is retried review by review, and a review that
    still fails gets a flagged row instead of stopping the job."""
    try:
        return _score_batch(rows, model, detector, batch_size)
    except Exception as exc:
        if len(rows) == 1:
            return [_error_record(rows[0], model, exc)]
    records: list[dict[str, Any]] = []
    for row in rows:
        records.extend(_score_rows([row], model, detector, batch_size))
    return records


def _score_batch(
    rows: Sequence[Any], model: SentimentModel, detector: Detector, batch_size: int
) -> list[dict[str, Any]]:
    capped = [cap_text(review_text(row[1], row[2]), MAX_SCORED_CHARS) for row in rows]
    texts = [text for text, _ in capped]
    if isinstance(detector, SinglePassScorer):
        readings = detector.read(texts, batch_size=batch_size)
        overall = [r.overall for r in readings]
        cs_parts = [_single_pass_parts(r) for r in readings]
    else:
        overall = model.predict(texts, batch_size=batch_size)
        cs_parts = _customer_service(texts, model, detector, batch_size)
    now = utcnow()
    records = []
    for row, (_, was_capped), prediction, (relevance, sentences, cs, other) in zip(
        rows, capped, overall, cs_parts, strict=True
    ):
        flags = list(prediction.flags)
        if was_capped and CAPPED_FLAG not in flags:
            flags.append(CAPPED_FLAG)
        language = row[4]
        if language and language != "en":
            flags.append(NON_ENGLISH_FLAG)
        records.append(
            {
                "review_id": row[0],
                "model_id": model.model_id,
                "model_revision": model.revision,
                "body_hash": row[3],
                "label": prediction.label,
                "probabilities": _json(prediction.probabilities),
                "score": prediction.score,
                "cs_relevance": relevance,
                "cs_label": cs.label if cs else None,
                "cs_score": cs.score if cs else None,
                "cs_sentences": _json(sentences),
                "other_score": prediction.score if other is _WHOLE else (other.score if other else None),
                "language": language,
                "flags": json.dumps(flags),
                "scored_at": now,
            }
        )
    return records


# Marks a review with no customer-service sentence: its other part is the whole text,
# already scored, so it is not predicted a second time.
_WHOLE: Any = object()


def _customer_service(
    texts: Sequence[str], model: SentimentModel, detector: CustomerServiceDetector, batch_size: int
) -> list[tuple[float | None, list[str] | None, Prediction | None, Any]]:
    """(cs_relevance, cs_sentences, cs prediction, other-part prediction) per text.

    All None for a text without sentences. Both parts of every mixed review go to the model
    in one call so they share its length-sorted batches.
    """
    aspects = detector.review_aspects(texts, batch_size=batch_size)
    parts: list[str] = []
    has_rest: list[bool] = []
    for a in aspects:
        chosen = set(a.cs_sentences)
        rest = [s for s in a.sentences if s not in chosen]
        has_rest.append(bool(rest))
        if a.cs_sentences:
            parts.append(" ".join(a.cs_sentences))
            if rest:
                parts.append(" ".join(rest))
    predictions = iter(model.predict(parts, batch_size=batch_size) if parts else [])
    results: list[tuple[float | None, list[str] | None, Prediction | None, Any]] = []
    for a, rest_left in zip(aspects, has_rest, strict=True):
        if not a.cs_sentences:
            results.append((a.cs_relevance if a.sentences else None, None, None, _WHOLE if a.sentences else None))
            continue
        cs = next(predictions)
        other = next(predictions) if rest_left else None
        results.append((a.cs_relevance, list(a.cs_sentences), cs, other))
    return results


def _single_pass_parts(reading: Any) -> tuple[float | None, list[str] | None, Prediction | None, Any]:
    """The single-pass reading in _customer_service's shape (the other part is the whole review
    when no sentence is about customer service)."""
    aspect = reading.aspect
    if not aspect.sentences:
        return None, None, None, None
    if reading.cs is None:
        return aspect.cs_relevance, None, None, _WHOLE
    return aspect.cs_relevance, list(aspect.cs_sentences), reading.cs, reading.other


def _error_record(row: Any, model: SentimentModel, exc: Exception) -> dict[str, Any]:
    return {
        "review_id": row[0],
        "model_id": model.model_id,
        "model_revision": model.revision,
        "body_hash": row[3],
        "label": None,
        "probabilities": None,
        "score": None,
        "cs_relevance": None,
        "cs_label": None,
        "cs_score": None,
        "cs_sentences": None,
        "other_score": None,
        "language": row[4],
        "flags": json.dumps([ERROR_FLAG, f"{ERROR_FLAG}:{type(exc).__name__}"]),
        "scored_at": utcnow(),
    }


def single_pass_enabled(requested: bool | None = None) -> bool:
    """The switch: an explicit request, else $REPUTATION_SINGLE_PASS (1/0), else SINGLE_PASS_DEFAULT."""
    if requested is not None:
        return requested
    value = os.environ.get(SINGLE_PASS_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return SINGLE_PASS_DEFAULT


def _load_detector(model: SentimentModel, single_pass: bool | None = None) -> Detector:
    """The single-pass scorer when switched on and the model has sentence heads, else the three-pass
    CS aspect detector on the classifier's device; a missing encoder or head is an error."""
    if single_pass_enabled(single_pass):
        try:
            scorer = SinglePassScorer.for_model(model)
        except SentenceHeadsError as exc:
            raise ModelUnavailableError(str(exc)) from exc
        if scorer is not None:
            return scorer
    try:
        return CustomerServiceDetector.load(device=str(model.device))
    except AspectModelError as exc:
        raise ModelUnavailableError(f"customer-service detector unavailable: {exc}") from exc


def _tally(summary: ScoreSummary, rows: Sequence[Any], records: Sequence[dict[str, Any]]) -> None:
    counts: Counter[str] = Counter(summary.flags)
    for row, record in zip(rows, records, strict=True):
        flags = json.loads(record["flags"])
        summary.scored += 1
        summary.rescored += int(bool(row[5]))
        summary.flagged += int(bool(flags))
        summary.failed += int(ERROR_FLAG in flags)
        counts.update(flag for flag in flags if ":" not in flag)
    summary.flags = dict(sorted(counts.items()))


def _start_run(db: sqlite_utils.Database, summary: ScoreSummary) -> int:
    """Open the run-log row with this process as owner (storage.runlog), so a killed job's row is
    marked interrupted by the next run instead of staying 'running'."""
    return start_run(db, "score", detail=json.loads(_detail(summary)))


def _update_run(db: sqlite_utils.Database, summary: ScoreSummary, status: str) -> None:
    finished = None if status == "running" else utcnow()
    db.execute(
        "UPDATE crawl_runs SET status = ?, finished_at = ?, items_new = ?, items_updated = ?, "
        "items_unchanged = ?, errors = ?, errors_by_reason = ?, detail = ? WHERE id = ?",
        (
            status,
            finished,
            summary.scored - summary.rescored,
            summary.rescored,
            summary.skipped,
            summary.failed,
            json.dumps({ERROR_FLAG: summary.failed} if summary.failed else {}),
            _detail(summary),
            summary.run_id,
        ),
    )


def _detail(summary: ScoreSummary) -> str:
    return json.dumps(
        {
            "model_id": summary.model_id,
            "model_revision": summary.model_revision,
            "flagged": summary.flagged,
            "flags": summary.flags,
            "customer_service": summary.customer_service,
            "scoring_path": summary.scoring_path,
        }
    )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
