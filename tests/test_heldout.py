"""The model card's held-out figures for VADER: its documented thresholds, as `reputation evaluate` uses them."""

from __future__ import annotations

import pytest
import torch
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from reputation.scoring.evaluation import score_system
from sentiment.labels import binary_side
from sentiment.training.data import LABELS, Example
from sentiment.training.heldout import heldout_metrics, vader_metrics
from sentiment.vader_baseline import VaderBaseline

# Review rows whose VADER compounds sit beside the ±0.05 thresholds, and one neutral tweet.
ROWS = [
    Example("They sent an apology.", "positive", "amazon"),  # 0.0516: positive
    Example("I had to leave.", "negative", "amazon"),  # -0.0516: negative
    Example("The box is blue.", "negative", "imdb"),  # 0.0: neutral (was counted positive)
    Example("It matters.", "positive", "movie"),  # 0.0258: neutral (was counted positive)
    Example("The meeting is at noon.", "neutral", "tweets"),  # not a review row
]


def test_the_fixture_compounds_are_what_the_comments_say() -> None:
    analyzer = SentimentIntensityAnalyzer()
    assert [analyzer.polarity_scores(ex.text)["compound"] for ex in ROWS[:4]] == [0.0516, -0.0516, 0.0, 0.0258]


def test_vader_binary_figures_count_its_neutral_band_as_an_error() -> None:
    card = vader_metrics(ROWS)
    assert card["review_binary_rows"] == 4
    assert card["review_binary_no_side"] == 2  # compounds 0.0 and 0.0258 take no side
    assert card["review_binary_accuracy"] == 0.5  # the sign of the compound would have given 0.75
    # three classes: the thresholded label; the neutral tweet is right, the two in-band review rows wrong
    assert card["accuracy"] == pytest.approx(3 / 5, abs=1e-4)


def test_the_card_and_evaluate_give_vader_the_same_binary_accuracy() -> None:
    """One thresholding (sentiment.labels.binary_side) behind both figures."""
    predictions = VaderBaseline().predict([ex.text for ex in ROWS])
    evaluated = score_system("vader", "x", [ex.label for ex in ROWS], predictions, thresholded=True)
    card = vader_metrics(ROWS)
    assert evaluated.binary_accuracy == card["review_binary_accuracy"]
    assert evaluated.binary_no_side == card["review_binary_no_side"]


def test_binary_side() -> None:
    assert binary_side("neutral", {"positive": 0.5, "negative": 0.1}, thresholded=True) is None
    assert binary_side("negative", None, thresholded=True) == "negative"
    assert binary_side(None, None, thresholded=True) is None
    assert binary_side("neutral", {"positive": 0.3, "negative": 0.2, "neutral": 0.5}, thresholded=False) == "positive"
    assert binary_side("positive", {"positive": 0.2, "negative": 0.2}, thresholded=False) is None
    assert binary_side(None, None, thresholded=False) is None


def test_model_card_binary_call_is_the_larger_of_positive_and_negative() -> None:
    order = list(LABELS)  # negative, neutral, positive
    probs = torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]])
    card = heldout_metrics(probs, order, ROWS)
    assert card["review_binary_rows"] == 4 and card["review_binary_no_side"] == 0
    assert card["review_binary_accuracy"] == 1.0  # neutral argmax on three rows, yet each picks a side
    assert card["accuracy"] == pytest.approx(2 / 5, abs=1e-4)
