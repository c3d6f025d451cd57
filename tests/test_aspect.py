"""Sentence splitting and the customer-service aspect detector, on the real packaged encoder."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from sentiment.aspect import (
    CS_THRESHOLD,
    HEAD_PATH,
    AspectModelError,
    AspectResult,
    CustomerServiceDetector,
    aspect_result,
    head_probability,
    load_head,
)
from sentiment.metrics import classification_metrics
from sentiment.package_data import COMPLAINT_SENTENCES, package_path
from sentiment.sentences import MAX_SENTENCE_CHARS, split_sentences
from sentiment.training.aspect_head import (
    DEFAULT_DATA,
    PENALTIES,
    LabelledSentence,
    choose_penalty,
    evaluate,
    fit_logistic,
    keyword_is_cs,
    load_labelled,
)
from sentiment.training.sentence_heads import HEADS_SENTENCES

README = DEFAULT_DATA.with_name("README.md")


# --- splitter ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Patel at the desk was great. He fixed it.", ["Mr. Patel at the desk was great.", "He fixed it."]),
        ("I asked e.g. for a refund. They said no.", ["I asked e.g. for a refund.", "They said no."]),
        ("It cost $4.99 and took 2.5 hours. Fine.", ["It cost $4.99 and took 2.5 hours.", "Fine."]),
        ("Called at 10 a.m. and got Mrs. Jones. She was kind.",
         ["Called at 10 a.m. and got Mrs. Jones.", "She was kind."]),
        ("It was scratched!!! I rang them.", ["It was scratched!!!", "I rang them."]),
        ("What?? No refund?! Seriously", ["What??", "No refund?!", "Seriously"]),
        ("Bad... I left.", ["Bad...", "I left."]),
        ("Love it 😍 Support was awful 😡 never again", ["Love it 😍", "Support was awful 😡 never again"]),
        ("Thanks 👍🏽 The agent rocks", ["Thanks 👍🏽", "The agent rocks"]),
        ("Great product.\n\nSupport never replied\nDelivery was fine",
         ["Great product.", "Support never replied", "Delivery was fine"]),
        ("I called the\nhelpline and waited", ["I called the helpline and waited"]),
        ("- fast\n- cheap\n- rude staff", ["- fast", "- cheap", "- rude staff"]),
        ("no punctuation at all just words", ["no punctuation at all just words"]),
        ("Item: 5/5. Support: useless.", ["Item: 5/5.", "Support: useless."]),
        ("Great. !!!", ["Great. !!!"]),
        ("Windows\r\nline endings\r\n\r\nNew paragraph.", ["Windows line endings", "New paragraph."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_split_sentences_blank(text: str) -> None:
    assert split_sentences(text) == []


def test_split_sentences_caps_run_on_text_and_loses_no_words() -> None:
    words = [f"w{i}" for i in range(3000)]
    text = " ".join(words)
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(0 < len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert " ".join(pieces).split() == words


def test_split_sentences_long_review_keeps_every_sentence() -> None:
    text = "The agent was rude and I waited forever. Dr. Jones said e.g. it is fine!!! " * 500
    pieces = split_sentences(text)
    assert len(pieces) == 1000
    assert pieces[:2] == ["The agent was rude and I waited forever.", "Dr. Jones said e.g. it is fine!!!"]


# --- detector ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector() -> CustomerServiceDetector:
    return CustomerServiceDetector.load(device="cpu")


@pytest.fixture(scope="module")
def labelled() -> list[LabelledSentence]:
    return load_labelled()


@pytest.fixture(scope="module")
def embeddings(detector: CustomerServiceDetector,
               labelled: list[LabelledSentence]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for split in ("train", "eval"):
        rows = [r for r in labelled if r.split == split]
        out[split] = (detector.embed([r.text for r in rows]), np.array([r.is_cs for r in rows], dtype=float))
    return out


CLEAR_CS = [
    "I sat on hold for an hour and then the line went dead.",
    "The woman on the helpline sorted my problem in minutes.",
    "Nobody from their complaints team ever got back to me.",
    "Still waiting for my refund after three calls.",
    "The courier's helpline never answered.",
    "Support: useless.",
]
CLEAR_OTHER = [
    "The parcel was late.",
    "The streaming service keeps buffering.",
    "The screen is bright and the battery lasts two days.",
    "Far too expensive for what it is.",
    "The aisles in the new store are wide and tidy.",
    "The app crashes when I open my statements.",
]


def test_clear_sentences_both_ways(detector: CustomerServiceDetector) -> None:
    scores = detector.relevance(CLEAR_CS + CLEAR_OTHER)
    cs, other = scores[: len(CLEAR_CS)], scores[len(CLEAR_CS) :]
    assert all(cs >= CS_THRESHOLD), dict(zip(CLEAR_CS, cs, strict=True))
    assert all(other < CS_THRESHOLD), dict(zip(CLEAR_OTHER, other, strict=True))


def test_relevance_range_and_empty_inputs(detector: CustomerServiceDetector) -> None:
    assert detector.relevance([]).shape == (0,)
    scores = detector.relevance(["", "   ", "Rude agent.", "x" * 5000, "😡😡😡"], batch_size=2)
    assert scores.shape == (5,)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[0] == 0.0 and scores[1] == 0.0
    assert scores[2] >= CS_THRESHOLD


def test_embed_is_normalised_and_keeps_input_order(detector: CustomerServiceDetector) -> None:
    sentences = ["A much longer sentence about waiting on hold for the helpline to answer.", "Short.",
                 "Medium length sentence here.", "Agent."]
    together = detector.embed(sentences, batch_size=2)
    assert together.shape == (4, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([detector.embed([s]) for s in sentences])
    assert np.allclose(together, alone, atol=1e-4)
    assert detector.embed([]).shape == (0, 384)
    with pytest.raises(ValueError, match="batch_size"):
        detector.embed(["x"], batch_size=0)


def test_review_aspect_on_mixed_review(detector: CustomerServiceDetector) -> None:
    review = (
        "Ordered a sofa in May. It arrived three weeks late and the legs were scratched!!! "
        "I rang customer services five times and nobody called back.\n\nThe sofa itself is comfy though."
    )
    result = detector.review_aspect(review)
    assert isinstance(result, AspectResult)
    assert len(result.sentences) == 4 == len(result.relevance)
    assert result.cs_sentences == ["I rang customer services five times and nobody called back."]
    total = sum(len(s) for s in result.sentences)
    assert result.cs_relevance == pytest.approx(len(result.cs_sentences[0]) / total)
    assert 0.0 < result.cs_relevance < 1.0
    batched = detector.review_aspects([review, "", "Support was brilliant."])
    singles = [result, detector.review_aspect(""), detector.review_aspect("Support was brilliant.")]
    for got, want in zip(batched, singles, strict=True):
        assert got.sentences == want.sentences and got.cs_sentences == want.cs_sentences
        assert got.relevance == pytest.approx(want.relevance, abs=1e-5)
    assert detector.review_aspect("") == AspectResult([], [], [], 0.0)
    assert detector.review_aspect("Support was brilliant.").cs_relevance == 1.0


def test_aspect_result_share_and_threshold() -> None:
    result = aspect_result(["abcd", "ef"], [CS_THRESHOLD, CS_THRESHOLD - 1e-9])
    assert result.cs_sentences == ["abcd"]
    assert result.cs_relevance == pytest.approx(4 / 6)


def test_bad_encoder_dir_and_head_are_named(tmp_path: Path) -> None:
    with pytest.raises(AspectModelError, match="encoder directory not found"):
        CustomerServiceDetector.load(tmp_path / "missing")
    bad = tmp_path / "head.json"
    bad.write_text('{"weights": [1, 2]}', encoding="utf-8")
    with pytest.raises(AspectModelError, match="head.json"):
        load_head(bad)


def test_head_of_wrong_size_is_refused(tmp_path: Path) -> None:
    head = tmp_path / "head.json"
    head.write_text(json.dumps({"weights": [0.1] * 10, "bias": 0.0}), encoding="utf-8")
    with pytest.raises(AspectModelError, match="10 weights"):
        CustomerServiceDetector.load(head_path=head)


# --- labelled set, evaluation and training ----------------------------------------------------

def test_labelled_set_shape(labelled: list[LabelledSentence]) -> None:
    evaluation = [r for r in labelled if r.split == "eval"]
    assert {r.split for r in labelled} == {"train", "eval"}
    assert len(evaluation) >= 300
    share = sum(r.is_cs for r in evaluation) / len(evaluation)
    assert 0.4 <= share <= 0.6
    texts = [r.text.strip().lower() for r in labelled]
    assert len(texts) == len(set(texts))


def test_eval_sentences_are_not_near_copies_of_training(
        embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    nearest = (embeddings["eval"][0] @ embeddings["train"][0].T).max(axis=1)
    assert float(nearest.max()) < 0.9


def test_heads_sentences_are_not_near_copies_of_held_out_sentences(
        detector: CustomerServiceDetector, embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The sentence heads' own training sentences were written apart from every held-out set."""
    extra = [r["text"] for r in _csv_rows(package_path(*HEADS_SENTENCES))]
    held_out = [r["text"] for r in _csv_rows(package_path(*COMPLAINT_SENTENCES)) if r["split"] != "train"]
    vectors = detector.embed(extra)
    assert float((vectors @ embeddings["eval"][0].T).max()) < 0.85
    assert float((vectors @ detector.embed(held_out).T).max()) < 0.85


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _readme_row(name: str) -> dict[str, float]:
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| {name}"):
            values = [float(v) for v in re.findall(r"\d\.\d+", line)]
            return dict(zip(["precision", "recall", "f1", "accuracy"], values, strict=True))
    raise AssertionError(f"no '| {name}' row in {README}")


def test_eval_metrics_meet_what_the_readme_states(detector: CustomerServiceDetector,
                                                  labelled: list[LabelledSentence],
                                                  embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    x, y = embeddings["eval"]  # the same vectors detector.relevance computes, embedded once
    relevance = head_probability(x, detector.weights, detector.bias)
    model = classification_metrics(y.astype(bool), relevance >= CS_THRESHOLD)
    stated = _readme_row("model")
    assert model["accuracy"] >= stated["accuracy"] - 0.01
    assert model["f1"] >= stated["f1"] - 0.01
    evaluation = [r for r in labelled if r.split == "eval"]
    keywords = classification_metrics(y.astype(bool), [keyword_is_cs(r.text) for r in evaluation])
    assert keywords["accuracy"] == pytest.approx(_readme_row("keyword list")["accuracy"], abs=0.001)
    assert model["accuracy"] > keywords["accuracy"]


def test_evaluate_runs_the_detector_end_to_end(detector: CustomerServiceDetector,
                                               labelled: list[LabelledSentence]) -> None:
    sample = [r for r in labelled if r.split == "eval"][::12]
    result = evaluate(detector, sample, "eval")
    relevance = detector.relevance([r.text for r in sample])
    expected = classification_metrics([r.is_cs for r in sample], relevance >= CS_THRESHOLD)
    assert result["model"] == expected
    with pytest.raises(ValueError, match="no rows"):
        evaluate(detector, sample, "nonexistent")


def test_committed_head_is_reproducible(embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    weights, bias, info = load_head(HEAD_PATH)
    x, y = embeddings["train"]
    assert info["trained_on"]["n"] == len(y)
    # The penalty search (5-fold CV) runs in `python -m sentiment.training.aspect_head`; here the committed
    # penalty is refitted on the same data, which must give back the committed weights.
    assert info["penalty"] in PENALTIES
    w, b = fit_logistic(x, y, info["penalty"])
    assert np.allclose(w, weights, atol=2e-3)
    assert b == pytest.approx(bias, abs=2e-3)


def test_penalty_search_prefers_less_penalty_on_clean_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(float)
    assert choose_penalty(x, y, (0.01, 1000.0)) == 0.01


def test_keyword_baseline_and_metrics() -> None:
    assert keyword_is_cs("Customer service was slow.")
    assert not keyword_is_cs("Nobody picks up the phone.")
    m = classification_metrics([True, True, False, False], [True, False, True, False])
    assert m == {"n": 4, "precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5}
