"""Evaluation: metric functions against hand-computed values, label files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_models import build_classifier
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from reputation.cli import cli
from reputation.scoring.evaluation import EvaluationInputError, read_labelled, score_system
from sentiment.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    f1_per_label,
    macro_f1,
    per_class_report,
)
from sentiment.model import Prediction
from sentiment.vader_baseline import VaderBaseline, vader_label, vader_probabilities


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real BERT classifier on disk (random weights: mechanics, not accuracy)."""
    return build_classifier(tmp_path_factory.mktemp("models") / "tiny-eval")


# --- metrics, by hand --------------------------------------------------------------


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = ["pos", "pos", "neg", "neg", "neu"]
    pred = ["pos", "neg", "neg", "neg", "pos"]
    assert accuracy(gold, pred) == pytest.approx(3 / 5)
    # pos: tp1 fp1 fn1 -> 2/4; neg: tp2 fp1 fn0 -> 4/5; neu: tp0 fp0 fn1 -> 0
    assert f1_per_label(gold, pred, ["pos", "neg", "neu"]) == pytest.approx(
        {"pos": 0.5, "neg": 0.8, "neu": 0.0}
    )
    assert macro_f1(gold, pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    with pytest.raises(ValueError, match="length mismatch"):
        accuracy(gold, pred[:2])


def test_expected_calibration_error_by_hand() -> None:
    # 15 bins: 0.9 -> bin 13, 0.6 -> bin 8, 0.3 -> bin 4
    # ECE = 2/4*|0.5-0.9| + 1/4*|1-0.6| + 1/4*|0-0.3| = 0.2 + 0.1 + 0.075
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.3], [True, False, True, False]) == pytest.approx(
        0.375
    )
    assert expected_calibration_error([1.0, 1.0], [True, True]) == pytest.approx(0.0)
    # 1/15 sits on the upper edge of the first bin, 0 joins it: one bin, |0.5 - 1/30|
    assert expected_calibration_error([1 / 15, 0.0], [True, False]) == pytest.approx(0.5 - 1 / 30)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [True])


def test_score_system_on_fixed_probabilities() -> None:
    def p(neg: float, neu: float, pos: float) -> Prediction:
        probs = {"negative": neg, "neutral": neu, "positive": pos}
        return Prediction(max(probs, key=probs.__getitem__), probs, pos - neg, 1)

    gold = ["positive", "negative", "neutral", "positive"]
    predictions = [
        p(0.1, 0.1, 0.8),
        p(0.3, 0.6, 0.1),
        p(0.2, 0.5, 0.3),
        Prediction(None, None, None, 0, ["empty"]),
    ]
    result = score_system("m", "r", gold, predictions)
    # predicted: positive, neutral, neutral, neutral (unscorable -> neutral, uniform)
    assert result.accuracy == pytest.approx(2 / 4)
    # positive: tp1 fn1 -> 2/3; negative: fn1 -> 0; neutral: tp1 fp2 -> 2/4
    assert result.macro_f1 == pytest.approx((2 / 3 + 0 + 0.5) / 3)
    # bins: 0.8 -> 11 (correct), 0.6 -> 8 (wrong), 0.5 -> 7 (correct), 1/3 -> 4 (wrong)
    assert result.ece == pytest.approx((0.2 + 0.6 + 0.5 + 1 / 3) / 4)
    # pos/neg rows: 0.8 > 0.1 -> positive (right), 0.1 < 0.3 -> negative (right), the unscorable
    # text's tie takes no side (an error, not a free "positive")
    assert (result.binary_accuracy, result.n_binary, result.binary_no_side) == (pytest.approx(2 / 3), 3, 1)
    assert result.binary_accuracy_decided == 1.0
    # the gold set has all three classes: macro-F1 over all three, as above
    assert result.macro_f1_classes == ["negative", "neutral", "positive"]
    assert result.confusion == {
        "labels": ["negative", "neutral", "positive"],
        "matrix": [[0, 1, 0], [0, 1, 0], [0, 1, 1]],
    }


def test_per_class_report_and_confusion_matrix_by_hand() -> None:
    gold = ["pos", "pos", "neg", "neg", "neu"]
    pred = ["pos", "neg", "neg", "neg", "pos"]
    report = per_class_report(gold, pred, ["neg", "neu", "pos"])
    # neg: 2 of 3 predictions right, both gold found; neu: never predicted; pos: 1 of 2, 1 of 2
    assert report == {
        "neg": pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}),
        "neu": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "pos": pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}),
    }
    assert confusion_matrix(gold, pred, ["neg", "neu", "pos"]) == [[2, 0, 0], [0, 0, 1], [1, 0, 1]]
    with pytest.raises(ValueError, match="'neu' is not one of"):
        confusion_matrix(gold, pred, ["neg", "pos"])


def test_vader_thresholds_and_macro_f1_over_gold_classes_at_the_boundaries() -> None:
    """Compounds exactly on and beside VADER's documented +-0.05 thresholds, on a binary gold set."""
    compounds = [0.0, 0.04, 0.05, -0.05, -0.04, 0.5]
    gold = ["negative", "positive", "positive", "negative", "positive", "positive"]
    predictions = [Prediction(vader_label(c), vader_probabilities(c), c, 1) for c in compounds]
    assert [p.label for p in predictions] == [
        "neutral", "neutral", "positive", "negative", "neutral", "positive"
    ]  # fmt: skip
    result = score_system("vader", "r", gold, predictions, thresholded=True)
    assert result.accuracy == pytest.approx(3 / 6)
    # positive: tp 2, fn 2 -> 2*2/(2*2+0+2) = 2/3; negative: tp 1, fn 1 -> 2/3; neutral has no gold row
    assert result.macro_f1_classes == ["negative", "positive"]
    assert result.macro_f1 == pytest.approx(2 / 3)
    assert result.per_class["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # compound 0 is no answer to "positive or negative?", never a positive
    assert (result.binary_accuracy, result.binary_no_side, result.binary_accuracy_decided) == (0.5, 3, 1.0)
    assert result.confusion["matrix"] == [[1, 1, 0], [0, 0, 0], [0, 2, 2]]


def test_vader_probabilities_agree_with_its_thresholds() -> None:
    for compound in (-0.9, -0.05, -0.02, 0.0, 0.04, 0.05, 0.6, 1.0):
        probs = vader_probabilities(compound)
        assert sum(probs.values()) == pytest.approx(1.0)
        assert max(probs, key=probs.__getitem__) == vader_label(compound)
    assert vader_probabilities(0.6) == pytest.approx({"positive": 0.8, "neutral": 0.2, "negative": 0.0})
    clear = VaderBaseline().predict(
        ["I love this, great!", "Awful, terrible, I hate it.", "The box is blue.", ""]
    )
    assert [c.label for c in clear] == ["positive", "negative", "neutral", None]


# --- labelled files ----------------------------------------------------------------


def test_reads_csv_tsv_and_sniffed_files(tmp_path: Path) -> None:
    csv_file = tmp_path / "set.csv"
    csv_file.write_text('text,label\n"Good, really",POS\nBad,neg\nA box,Neutral\n')
    assert read_labelled(csv_file).labels == ["positive", "negative", "neutral"]
    tsv_file = tmp_path / "set.tsv"
    tsv_file.write_text("review\tstars\nGood\t2\nBad\t0\nMeh\t1\n")
    data = read_labelled(tsv_file, text_column="review", label_column="stars")
    assert (data.texts, data.labels) == (["Good", "Bad", "Meh"], ["positive", "negative", "neutral"])
    sniffed = tmp_path / "set.txt"
    sniffed.write_text("text;label\nGood;1\nBad;-1\nMeh;0\n")
    assert read_labelled(sniffed).labels == ["positive", "negative", "neutral"]
    binary = tmp_path / "sst2.csv"
    binary.write_text("text,label\nGood,1\nBad,0\n")
    assert read_labelled(binary).labels == ["positive", "negative"]


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nGood,great\nBad,negative\nMeh,\n")
    with pytest.raises(EvaluationInputError, match=r"line 2: 'great', line 4: ''"):
        read_labelled(bad)
    with pytest.raises(EvaluationInputError, match=r"no column 'label'; columns are \['text', 'y'\]"):
        bad.write_text("text,y\nGood,1\n")
        read_labelled(bad)
    with pytest.raises(EvaluationInputError, match="fit none"):
        bad.write_text("text,label\nGood,5\nBad,0\n")
        read_labelled(bad)
    with pytest.raises(EvaluationInputError, match="no such file"):
        read_labelled(tmp_path / "missing.csv")


# --- the command -------------------------------------------------------------------


def test_evaluate_command_table_and_json(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text(
        'text,label\n"I love this, great!",positive\n"Awful, terrible, I hate it.",negative\nThe box is blue.,neutral\n'
    )
    table = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(model_dir)])
    assert table.exit_code == 0, table.output
    assert "tiny-eval" in table.output and "vaderSentiment" in table.output and "macro-F1" in table.output
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 3 and report["label_counts"] == {"negative": 1, "neutral": 1, "positive": 1}
    model_result, vader = report["results"]
    assert model_result["name"] == "tiny-eval" and 0 <= model_result["accuracy"] <= 1
    assert (vader["accuracy"], vader["macro_f1"], vader["binary_accuracy"], vader["n_binary"]) == (
        1.0,
        1.0,
        1.0,
        2,
    )


def test_evaluate_command_on_a_file_with_known_vader_outputs(tmp_path: Path, model_dir: Path) -> None:
    """A binary gold set (no neutral row) whose VADER compounds sit beside the thresholds."""
    rows = [
        ("They sent an apology.", "positive"),  # 0.0516 -> positive
        ("I had to leave.", "negative"),  # -0.0516 -> negative
        ("The box is blue.", "negative"),  # 0.0 -> neutral (counted positive before)
        ("It matters.", "positive"),  # 0.0258 -> neutral
        ("I love this, great!", "positive"),
        ("Awful, terrible, I hate it.", "negative"),
    ]
    analyzer = SentimentIntensityAnalyzer()
    compounds = [analyzer.polarity_scores(text)["compound"] for text, _ in rows]
    assert compounds[:4] == [0.0516, -0.0516, 0.0, 0.0258]  # the fixture is what the test says it is
    expected = ["positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral" for c in compounds]
    assert expected == ["positive", "negative", "neutral", "neutral", "positive", "negative"]
    data = tmp_path / "known.csv"
    data.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows))

    result = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["label_counts"] == {"negative": 3, "neutral": 0, "positive": 3}
    vader = report["results"][1]
    assert vader["name"] == "vaderSentiment"
    assert vader["accuracy"] == pytest.approx(4 / 6)
    # each polar class: tp 2, fn 1, fp 0 -> F1 0.8; neutral (no gold row) is not averaged in
    assert vader["macro_f1_classes"] == ["negative", "positive"]
    assert vader["macro_f1"] == pytest.approx(0.8)
    assert vader["per_class"]["positive"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert vader["per_class"]["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert vader["confusion"] == {
        "labels": ["negative", "neutral", "positive"],
        "matrix": [[2, 1, 0], [0, 0, 0], [0, 1, 2]],
    }
    assert (vader["binary_accuracy"], vader["n_binary"], vader["binary_no_side"]) == (
        pytest.approx(4 / 6),
        6,
        2,
    )
    assert vader["binary_accuracy_decided"] == 1.0
    model_result = report["results"][0]
    assert sum(map(sum, model_result["confusion"]["matrix"])) == 6
    assert model_result["macro_f1_classes"] == ["negative", "positive"]

    table = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(model_dir)])
    assert table.exit_code == 0, table.output
    assert "vaderSentiment: per class" in table.output and "tiny-eval: per class" in table.output
    assert "0.800 (neg/pos)" in table.output  # VADER's macro-F1 and the classes it averages
    assert "0.667 (n=6)" in table.output


def test_evaluate_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "reputation evaluate labelled.csv" in result.output
    assert "compound >= 0.05 positive" in result.output


def test_evaluate_command_reports_bad_labels(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nGood,great\n")
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(model_dir)])
    assert result.exit_code == 1
    assert "unknown labels (line 2: 'great')" in result.output


def test_evaluate_q_prints_only_the_json_asked_for(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text('text,label\n"I love this, great!",positive\n"Awful, terrible, I hate it.",negative\n')
    args = ["evaluate", str(data), "--model", str(model_dir)]
    loud = CliRunner().invoke(cli, args)
    assert loud.exit_code == 0, loud.output
    assert "macro-F1" in loud.stdout and "vaderSentiment: per class" in loud.stdout
    quiet = CliRunner().invoke(cli, ["-q", *args])
    assert quiet.exit_code == 0 and (quiet.stdout, quiet.stderr) == ("", "")
    as_json = CliRunner().invoke(cli, [*args, "--json", "-q"])
    assert as_json.exit_code == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["n"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nGood,great\n")
    failed = CliRunner().invoke(cli, ["-q", "evaluate", str(bad), "--model", str(model_dir)])
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr.splitlines() == [f"Error: {bad}: unknown labels (line 2: 'great'); use negative/neutral/"
                                          "positive, neg/neu/pos, -1/0/1 or 0/1/2"]
