"""sentiment/ as a library: label heads, windowing, order, odd input, provenance, devices.

Models here are small real BERT classifiers (random weights, the packaged MiniLM
tokenizer) saved to disk and loaded like any Hugging Face model: the mechanics are under
test, not accuracy.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import THREE, build_classifier

from sentiment.backends import BackendError, check_backend, recorded_revision
from sentiment.default_model import base_model_dir
from sentiment.labels import LabelMappingError, label_map_from_config
from sentiment.model import ModelLoadError, SentimentModel, choose_device, prepare_text
from sentiment.windows import Windows, aggregate, length_sorted_batches, pad_batch, tokenize_windows

STARS = {i: f"{i + 1} star" + ("s" if i else "") for i in range(5)}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("models") / "tiny-3c", THREE)


@pytest.fixture(scope="module")
def model(model_dir: Path) -> SentimentModel:
    return SentimentModel.load(model_dir)


def direct_probabilities(model: SentimentModel, text: str) -> np.ndarray:
    """One text through the Hugging Face model on its own: the reference for batching."""
    encoded = model.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        logits = model.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    return torch.softmax(logits, dim=-1)[0].numpy()


# --- label heads ---------------------------------------------------------------


def test_named_labels_any_case_and_binary_heads() -> None:
    binary = label_map_from_config({0: "NEGATIVE", 1: "POSITIVE"})
    assert binary.canonical == ("negative", "positive")
    assert binary.labels_present == ("negative", "positive")
    assert binary.score(np.array([[0.2, 0.8]]))[0] == pytest.approx(0.6)
    pysentimiento = label_map_from_config({"0": "NEG", "1": "NEU", "2": "POS"})
    assert pysentimiento.canonical == ("negative", "neutral", "positive")
    five = label_map_from_config(
        {0: "Very Negative", 1: "Negative", 2: "Neutral", 3: "Positive", 4: "Very Positive"}
    )
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert five.to_canonical(probs)[0] == pytest.approx([0.3, 0.3, 0.4])
    assert five.score(probs)[0] == pytest.approx(0.4 - 0.3)


def test_generic_label_k_heads_follow_negative_to_positive_order() -> None:
    three = label_map_from_config({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert three.canonical == ("negative", "neutral", "positive")
    two = label_map_from_config({0: "LABEL_0", 1: "LABEL_1"})
    assert two.canonical == ("negative", "positive")
    with pytest.raises(LabelMappingError, match="LABEL_3"):
        label_map_from_config({i: f"LABEL_{i}" for i in range(4)})


def test_star_heads_score_by_expected_stars() -> None:
    stars = label_map_from_config(STARS)
    assert stars.kind == "stars"
    assert stars.canonical == ("negative", "negative", "neutral", "positive", "positive")
    one_hot_five = np.eye(5)[[4]]
    assert stars.score(one_hot_five)[0] == pytest.approx(1.0)
    assert stars.score(np.eye(5)[[0]])[0] == pytest.approx(-1.0)
    assert stars.score(np.full((1, 5), 0.2))[0] == pytest.approx(0.0)
    # expected stars 4.5 -> (4.5 - 3) / 2
    assert stars.score(np.array([[0, 0, 0, 0.5, 0.5]]))[0] == pytest.approx(0.75)


def test_unreadable_labels_are_rejected_with_their_names() -> None:
    with pytest.raises(LabelMappingError, match="'joy'"):
        label_map_from_config({0: "anger", 1: "joy"})
    with pytest.raises(LabelMappingError, match="both a negative and a positive"):
        label_map_from_config({0: "negative", 1: "neutral"})


def test_star_head_model_predicts_expected_value(tmp_path: Path) -> None:
    stars = SentimentModel.load(build_classifier(tmp_path / "stars", STARS, seed=3))
    [prediction] = stars.predict(["The refund took six weeks."])
    reference = direct_probabilities(stars, "The refund took six weeks.")
    expected = float(reference @ np.array([-1, -0.5, 0, 0.5, 1]))
    assert prediction.score == pytest.approx(expected, abs=1e-5)
    assert prediction.probabilities is not None
    assert prediction.probabilities["negative"] == pytest.approx(reference[0] + reference[1], abs=1e-5)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_binary_model_reports_only_its_own_labels(tmp_path: Path) -> None:
    binary = SentimentModel.load(build_classifier(tmp_path / "sst2", {0: "NEGATIVE", 1: "POSITIVE"}))
    [prediction] = binary.predict(["fine"])
    assert prediction.probabilities is not None
    assert set(prediction.probabilities) == {"negative", "positive"}
    assert prediction.label in {"negative", "positive"}


# --- windows and batching ------------------------------------------------------------


def test_windows_cover_every_token_with_overlap(model: SentimentModel) -> None:
    text = " ".join(f"word{i}" for i in range(700))
    full = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = tokenize_windows(model.tokenizer, [text], max_length=64, stride=16)
    assert len(windows.input_ids) > 1
    assert all(len(ids) <= 64 for ids in windows.input_ids)
    rebuilt: list[int] = []
    for ids in windows.input_ids:
        content = ids[1:-1]  # [CLS] ... [SEP]
        rebuilt.extend(content if not rebuilt else content[16:])
    assert rebuilt == full


def test_batches_sorted_by_length_and_padded_per_batch() -> None:
    batches = list(length_sorted_batches([3, 10, 1, 7, 5], batch_size=2))
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    capped = list(length_sorted_batches([10, 3, 3, 3, 3, 12], batch_size=4, max_tokens=9))
    assert [b.tolist() for b in capped] == [[5], [0], [1, 2, 3], [4]]
    with pytest.raises(ValueError, match="max_tokens"):
        list(length_sorted_batches([3], batch_size=4, max_tokens=0))
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_aggregate_is_length_weighted_mean() -> None:
    windows = Windows(
        input_ids=[[0], [0], [0]],
        owner=np.array([0, 0, 1]),
        content_tokens=np.array([30.0, 10.0, 5.0]),
        n_texts=2,
    )
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = aggregate(probs, windows)
    assert out[0] == pytest.approx([0.75, 0.0, 0.25])
    assert out[1] == pytest.approx([0.0, 1.0, 0.0])
    assert windows.counts().tolist() == [2, 1]


def test_long_review_is_windowed_not_truncated(model: SentimentModel) -> None:
    text = ("The agent kept me on hold and then hung up. " * 2300)[:100_000]
    assert len(text) == 100_000
    [prediction] = model.predict([text])
    assert prediction.n_windows > 1
    assert "windowed" in prediction.flags
    assert prediction.score is not None and -1.0 <= prediction.score <= 1.0
    assert prediction.probabilities is not None
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_order_restored_after_length_sort(model: SentimentModel) -> None:
    texts = [
        "ok",
        "The chat bot could not answer a single question and the human agent never came. " * 3,
        "Great",
        "Refund arrived in two days, lovely staff.",
        "meh " * 40,
    ]
    predictions = model.predict(texts, batch_size=2)
    assert [p.n_windows for p in predictions] == [1] * len(texts)
    for text, prediction in zip(texts, predictions, strict=True):
        reference = direct_probabilities(model, text)
        assert prediction.probabilities is not None
        got = [prediction.probabilities[label] for label in ("negative", "neutral", "positive")]
        assert got == pytest.approx(reference.tolist(), abs=1e-5)
        assert prediction.score == pytest.approx(float(reference[2] - reference[0]), abs=1e-5)


# --- odd input -------------------------------------------------------------------------


def test_empty_emoji_and_invalid_utf8_are_flagged_not_fatal(model: SentimentModel) -> None:
    texts: list[str | bytes | None] = [
        "",
        "   \n\t",
        None,
        "😡😡😡",
        b"caf\xe9 service was slow",
        "bad \ud800 text",
    ]
    empty, blank, none, emoji, latin1, surrogate = model.predict(texts)
    for prediction in (empty, blank, none):
        assert prediction.flags == ["empty"]
        assert prediction.label is None and prediction.score is None and prediction.n_windows == 0
    assert "no_text" in emoji.flags and "unscorable" in emoji.flags and emoji.label is None
    assert latin1.flags == ["invalid_utf8"] and latin1.label in {"negative", "neutral", "positive"}
    assert surrogate.flags == ["invalid_utf8"] and surrogate.score is not None
    assert prepare_text(b"caf\xe9") == ("caf\ufffd", ["invalid_utf8"])


def test_punctuation_only_text_is_scored_when_tokenizer_sees_it(model: SentimentModel) -> None:
    [prediction] = model.predict(["!!! ???"])
    assert prediction.flags == ["no_text"]
    assert prediction.label is not None


# --- provenance, loading, devices --------------------------------------------------


def test_local_directory_provenance_is_a_content_hash(
    model: SentimentModel, model_dir: Path, tmp_path: Path
) -> None:
    assert model.model_id == "tiny-3c"
    assert model.revision.startswith("sha256:") and len(model.revision) == len("sha256:") + 16
    copy = shutil.copytree(model_dir, tmp_path / "tiny-3c")
    assert SentimentModel.load(copy).revision == model.revision
    retrained = build_classifier(tmp_path / "tiny-3c-b", THREE, seed=1)
    assert SentimentModel.load(retrained).revision != model.revision
    (copy / "reputation-model.json").write_text(json.dumps({"model_id": "acme/sent", "revision": "r42"}))
    named = SentimentModel.load(copy)
    assert (named.model_id, named.revision) == ("acme/sent", "r42")


def test_hub_id_loads_from_local_cache_with_commit_revision(model_dir: Path, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-sentiment"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    loaded = SentimentModel.load("acme/tiny-sentiment", cache_dir=tmp_path / "hub")
    assert (loaded.model_id, loaded.revision) == ("acme/tiny-sentiment", commit)
    with pytest.raises(ModelLoadError, match="acme/other.*Hugging Face cache"):
        SentimentModel.load("acme/other", cache_dir=tmp_path / "hub")


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelLoadError, match=str(missing)):
        SentimentModel.load(missing)
    with pytest.raises(ModelLoadError, match="not a sequence-classification model"):
        SentimentModel.load(base_model_dir())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="empty"):
        SentimentModel.load(tmp_path / "empty")
    assert issubclass(ModelLoadError, ValueError)


def test_device_chosen_once(model: SentimentModel) -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device().type == expected
    assert model.device.type == expected
    assert next(model.model.parameters()).device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            choose_device("cuda")


def test_int8_backend_stays_close_to_float(model_dir: Path, model: SentimentModel) -> None:
    if torch.cuda.is_available():
        pytest.skip("int8 backend is CPU only")
    quantised = SentimentModel.load(model_dir, backend="int8")
    texts = ["The agent was helpful.", "Nobody answered my emails for a month."]
    for fast, exact in zip(quantised.predict(texts), model.predict(texts), strict=True):
        assert fast.score == pytest.approx(exact.score, abs=0.05)
    assert quantised.revision == model.revision + "+int8"
    with pytest.raises(ModelLoadError, match="unknown backend"):
        SentimentModel.load(model_dir, backend="tensorrt")


def test_backends_checked_against_the_device() -> None:
    check_backend("int8-ffn", "cpu")
    with pytest.raises(BackendError, match="int8-ffn backend runs on CPU only"):
        check_backend("int8-ffn", "cuda")
    check_backend("torch", "cuda")
    assert recorded_revision("abc", "onnx") == "abc"
    assert recorded_revision("abc", "int8") == "abc+int8"


def test_int8_ffn_backend_quantises_feed_forward_layers_only(model_dir: Path, model: SentimentModel) -> None:
    assert model.backend == "torch"  # the default: fp32
    ffn = SentimentModel.load(model_dir, backend="int8-ffn", device="cpu")
    assert ffn.revision == model.revision + "+int8-ffn"
    modules = dict(ffn.model.named_modules())
    quantised = torch.ao.nn.quantized.dynamic.Linear
    for name in ("bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.1.output.dense"):
        assert isinstance(modules[name], quantised)
    for name in (
        "bert.encoder.layer.0.attention.self.query",
        "bert.encoder.layer.0.attention.output.dense",
        "classifier",
    ):
        assert isinstance(modules[name], torch.nn.Linear)
    texts = ["The agent was helpful.", "Nobody answered my emails for a month.", "ok " * 300]
    for fast, exact in zip(ffn.predict(texts), model.predict(texts), strict=True):
        assert fast.score == pytest.approx(exact.score, abs=0.05)


def test_onnx_backend_matches_torch_and_reuses_its_export(
    model_dir: Path, model: SentimentModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("REPUTATION_CACHE", str(tmp_path))
    fast = SentimentModel.load(model_dir, backend="onnx", device="cpu")
    assert fast.backend == "onnx" and fast.revision == model.revision
    [exported] = (tmp_path / "onnx").glob("*.onnx")
    texts = ["Great", "The refund took six weeks and nobody called back.", "meh " * 40, "ok " * 700, "x"]
    for got, want in zip(fast.predict(texts, batch_size=2), model.predict(texts, batch_size=2), strict=True):
        assert got.n_windows == want.n_windows
        assert got.probabilities is not None and want.probabilities is not None
        for label, value in want.probabilities.items():
            assert got.probabilities[label] == pytest.approx(value, abs=1e-4)
    stamp = exported.stat().st_mtime_ns
    again = SentimentModel.load(model_dir, backend="onnx", device="cpu")
    assert exported.stat().st_mtime_ns == stamp
    assert again.predict(["Great"])[0].score == pytest.approx(fast.predict(["Great"])[0].score)


def test_onnx_backend_falls_back_to_torch_without_onnxruntime(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.warns(RuntimeWarning, match="pip install onnxruntime"):
        fallback = SentimentModel.load(model_dir, backend="onnx", device="cpu")
    assert fallback.backend == "torch"
    assert fallback.predict(["fine"])[0].label is not None
