"""The default sentiment model: built offline from the packaged encoder, and as good as its card says."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from reputation.cli import cli
from sentiment import default_model
from sentiment.default_model import (
    DEFAULT_MODEL_ID,
    DefaultModelUnavailable,
    artefact_dir,
    default_model_dir,
    default_model_revision,
)
from sentiment.training import data
from sentiment.training.calibration import fit_temperature, fold_temperature
from sentiment.training.export import save_artefact
from sentiment.training.heldout import predict_probs
from sentiment.training.recipe import HELDOUT_FILE, METRICS_FILE, evaluate_dir
from sentiment.training.train import TrainConfig, train

TOLERANCE = 0.005


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default model materialised into a fresh cache, exactly as first use does it."""
    mp = pytest.MonkeyPatch()
    mp.setenv(default_model.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        yield default_model_dir()
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> tuple[object, object]:
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    model.eval()
    return tokenizer, model


def test_directory_is_a_complete_offline_model(model_dir: Path) -> None:
    assert model_dir.name == default_model_revision()
    assert (model_dir / "config.json").is_file()
    assert (model_dir / "tokenizer.json").is_file() or (model_dir / "vocab.txt").is_file()
    config = json.loads((model_dir / "config.json").read_text())
    assert {int(k): v for k, v in config["id2label"].items()} == {0: "negative", 1: "neutral", 2: "positive"}
    meta = json.loads((model_dir / "reputation-model.json").read_text())
    assert meta["model_id"] == DEFAULT_MODEL_ID
    assert default_model_dir() == model_dir  # built once, then reused


def test_committed_artefact_is_small() -> None:
    size = sum(p.stat().st_size for p in artefact_dir().iterdir() if p.is_file())
    assert size <= 25 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The support agent was rude and useless", "negative"),
        ("Customer service fixed my issue in minutes, fantastic", "positive"),
        ("No problems at all, support was quick", "positive"),
        ("Not bad at all, would buy again.", "positive"),
        pytest.param(
            "not bad, would buy again",
            "positive",
            marks=pytest.mark.xfail(strict=True, reason="known limit (model card): terse lower-case negation"),
        ),
    ],
)
def test_customer_service_sentences(classifier: tuple[object, object], text: str, label: str) -> None:
    tokenizer, model = classifier
    with torch.inference_mode():
        logits = model(**tokenizer([text], return_tensors="pt")).logits  # type: ignore[operator]
    assert model.config.id2label[int(logits.argmax(-1))] == label  # type: ignore[attr-defined]


def test_heldout_metrics_match_the_model_card(model_dir: Path) -> None:
    stated = json.loads((artefact_dir() / METRICS_FILE).read_text())["model"]
    heldout = data.read_csv(artefact_dir() / HELDOUT_FILE)
    assert len(heldout) == stated["rows"]
    measured = evaluate_dir(model_dir, heldout)
    for key in ("accuracy", "macro_f1", "review_binary_accuracy"):
        assert measured[key] >= stated[key] - TOLERANCE, (key, measured[key], stated[key])
    assert measured["ece"] <= stated["ece"] + TOLERANCE


def test_missing_artefact_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(default_model.ARTEFACT_ENV, str(tmp_path))
    with pytest.raises(DefaultModelUnavailable, match="trained.safetensors"):
        default_model_revision()


def test_cli_model_path_prints_directory_and_revision(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(default_model.CACHE_ENV, str(model_dir.parent.parent))
    result = CliRunner().invoke(cli, ["model", "path"], obj={})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{model_dir}\t{default_model_revision()}"


# --- the recipe's data handling (no downloads) -------------------------------------------------


def test_split_is_a_function_of_normalised_text() -> None:
    assert data.split_of("Great service!") == data.split_of("great   SERVICE")
    splits = {data.split_of(f"review number {i}") for i in range(300)}
    assert splits == {"train", "validation", "test"}


@pytest.mark.parametrize(
    ("rating", "label"),
    [
        (-2.0, "negative"),
        (-0.75, "negative"),
        (-0.6, None),
        (0.0, "neutral"),
        (0.49, "neutral"),
        (0.75, "positive"),
    ],
)
def test_hutto_rating_thresholds(rating: float, label: str | None) -> None:
    assert data.hutto_label(rating) == label


def test_deduplicate_drops_repeats_and_conflicts() -> None:
    rows = [
        data.Example("Good value.", "positive", "a"),
        data.Example("good value", "positive", "b"),
        data.Example("It broke.", "negative", "a"),
        data.Example("it broke", "positive", "b"),
    ]
    assert data.deduplicate(rows) == [rows[0]]


def test_heldout_file_never_overlaps_training_texts() -> None:
    heldout = data.read_csv(artefact_dir() / HELDOUT_FILE)
    assert heldout and all(data.split_of(ex.text) == "test" for ex in heldout)
    assert {ex.label for ex in heldout} == set(data.LABELS)


def test_project_sentences_are_well_formed() -> None:
    rows = list(data.read_labelled_csv(artefact_dir() / "cs_reviews.csv", "cs_reviews"))
    assert len(rows) >= 200
    assert {ex.label for ex in rows} == set(data.LABELS)


def test_training_extras_never_change_validation_or_test() -> None:
    corpus = [
        data.Example(f"review {i} was {w}", w, "movie") for i in range(1500) for w in ("positive", "negative")
    ]
    plain = data.training_splits(corpus, {})
    more = data.training_splits(corpus, {"movie": {"negative": 50, "positive": 50}})
    assert len(plain["train"]) == sum(
        1 for ex in data.sample_mix(corpus, data.MIX) if data.split_of(ex.text) == "train"
    )
    assert more["validation"] == plain["validation"] and more["test"] == plain["test"]
    extra = more["train"][len(plain["train"]) :]
    assert 0 < len(extra) <= 100 and all(data.split_of(ex.text) == "train" for ex in extra)
    assert not {ex.text for ex in extra} & {ex.text for ex in plain["train"]}


def test_training_round_trip_through_the_artefact(tmp_path: Path) -> None:
    """A one-epoch run of the recipe's trainer: the exported artefact, merged as the default
    model is, gives the trained model's own predictions."""
    rows = data.read_csv(artefact_dir() / HELDOUT_FILE)[::20]
    cfg = TrainConfig(trainable_layers=1, epochs=1, batch_size=16, device="cpu")
    result = train(default_model.base_model_dir(), rows[:48], rows[48:], cfg)
    assert [h["epoch"] for h in result.history] == [1]
    assert 0.0 <= result.history[0]["validation_selection"] <= 1.0
    save_artefact(result.model, cfg.trainable_layers, tmp_path / "art", {"config": result.config})
    merged = default_model.materialise(tmp_path / "art", default_model.base_model_dir(), tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(merged, local_files_only=True)
    reloaded = AutoModelForSequenceClassification.from_pretrained(merged, local_files_only=True)
    texts = [ex.text for ex in rows[48:64]]
    before = predict_probs(result.model, tokenizer, texts)
    after = predict_probs(reloaded, tokenizer, texts)
    assert torch.allclose(before, after, atol=0.02)  # fp16 storage of the trained tensors


def test_fit_temperature_undoes_overconfidence() -> None:
    """Probabilities sharpened by 2 (logits * 2), labels drawn from the true ones: T comes out near 2."""
    rng = np.random.default_rng(7)
    true = rng.dirichlet([1.0, 1.0, 1.0], size=4000)
    gold = [int(rng.choice(3, p=row)) for row in true]
    sharp = true**2 / (true**2).sum(axis=1, keepdims=True)
    assert fit_temperature(sharp, gold) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(true, gold) == pytest.approx(1.0, rel=0.1)


def test_folded_temperature_scales_the_logits_and_keeps_every_call(tmp_path: Path) -> None:
    """Dividing the stored classifier by T gives softmax(logits / T): same argmax, softer probabilities."""
    folded = tmp_path / "folded"
    shutil.copytree(artefact_dir(), folded)
    fold_temperature(folded, 2.0)
    texts = [ex.text for ex in data.read_csv(artefact_dir() / HELDOUT_FILE)[::60]]
    probs = []
    for art in (artefact_dir(), folded):
        merged = default_model.materialise(art, default_model.base_model_dir(), tmp_path / art.name / "model")
        tokenizer = AutoTokenizer.from_pretrained(merged, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(merged, local_files_only=True)
        probs.append(predict_probs(model, tokenizer, texts))
    expected = torch.softmax(probs[0].log() / 2.0, dim=1)
    assert torch.allclose(probs[1], expected, atol=0.01)  # fp16 storage of the scaled tensors
    assert torch.equal(probs[1].argmax(1), probs[0].argmax(1))
    assert (probs[1].max(1).values <= probs[0].max(1).values + 1e-3).all()


def test_weight_average_is_a_candidate_when_several_epochs_are_averaged() -> None:
    rows = data.read_csv(artefact_dir() / HELDOUT_FILE)[::20]
    cfg = TrainConfig(trainable_layers=1, epochs=2, batch_size=16, device="cpu", average_from=1)
    result = train(default_model.base_model_dir(), rows[:48], rows[48:], cfg)
    assert [h["epoch"] for h in result.history] == [1, 2, "mean of 1..2"]
    assert result.history[-1]["averaged_epochs"] == 2
    assert 0.0 <= result.history[-1]["validation_selection"] <= 1.0
