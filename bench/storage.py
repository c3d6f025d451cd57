"""Storage: ingest rate through the crawl's store pipeline, roll-up time against pandas, peak memory.

* Ingest: ReviewItems go through crawler.pipelines.StorePipeline (the code a crawl uses,
  batched by REPUTATION_BATCH_SIZE) into a fresh file; the baseline is a bare executemany of
  the same rows in the same batches, the most SQLite can do with this schema.
* Roll-ups: reputation.rollups.build.build_rollups on synthetic files of several sizes, against the
  same aggregation in pandas (read_sql + attribution join + groupby) on the same file. The
  pandas side skips the near-duplicate search (it reads the product's review_duplicates) and
  the final merge into published metrics, so it is the cheaper of the two by construction.
* Memory: peak RSS of a roll-up and of a scoring run in a child process, on a small and a
  ten-times larger file; streaming code stays flat.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import Figure, median
from bench.synth import AS_OF, MODEL_ID, MODEL_REVISION, make_database, review_texts
from crawler.settings import REPUTATION_BATCH_SIZE

BATCH = REPUTATION_BATCH_SIZE  # the crawl's default batch
HALF_LIFE_DAYS = 180.0
CS_THRESHOLD = 0.5
INGEST_TARGET = 20_000.0
ROLLUP_TARGET_S = 10.0
MEMORY_GROWTH = 1.5


def _items(n: int, sources: list[tuple[str, str]]) -> list[Any]:
    from crawler.items import ReviewItem

    texts = review_texts(1_000, seed=3)
    items = []
    for i in range(n):
        source_id, brand_id = sources[i % len(sources)]
        body = texts[i % len(texts)]
        items.append(
            ReviewItem(
                body=body, title="Review", author=f"author {i % 5000}", site_review_id=f"T{i}",
                rating_value=4.0, rating_min=1.0, rating_max=5.0, date_raw="2025-03-01",
                url=f"http://127.0.0.1/trust/{brand_id}/", extractor="jsonld", source_id=source_id,
                brand_id=brand_id, crawled_at="2026-06-30T12:00:00+00:00", id=f"site:127.0.0.1:T{i}",
                body_hash=f"{i:064x}", author_hash=f"{i % 5000:032x}", rating=0.75,
                published_at="2025-03-01", date_precision="exact", language="en",
            )
        )  # fmt: skip
    return items


def _empty_db(path: Path) -> list[tuple[str, str]]:
    make_database(path, 0)
    with sqlite3.connect(path) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, brand_id FROM sources ORDER BY id")]


def _ingest_product(path: Path, items: list[Any]) -> float:
    """Seconds for StorePipeline to take every item and flush the last batch."""
    import scrapy
    from scrapy.utils.test import get_crawler

    from crawler.pipelines.store import StorePipeline

    class _Spider(scrapy.Spider):
        name = "bench"
        selection: dict[str, Any] = {}

    crawler = get_crawler(_Spider, {"REPUTATION_DB": str(path), "REPUTATION_BATCH_SIZE": BATCH})
    pipeline = StorePipeline.from_crawler(crawler)
    spider = _Spider()
    pipeline.open_spider(spider)
    start = time.perf_counter()
    for item in items:
        pipeline.process_item(item, spider)
    pipeline.close_spider(spider)
    seconds = time.perf_counter() - start
    assert pipeline.db is not None
    pipeline.db.close()
    return seconds


def _ingest_bare(path: Path, items: list[Any]) -> float:
    """Seconds for a plain executemany INSERT of the same rows, one transaction per batch."""
    from crawler.pipelines.store import REVIEW_COLUMNS
    from storage.database import connect

    db = connect(path)
    columns = ("id", *REVIEW_COLUMNS, "first_seen", "last_seen", "first_crawl_run_id", "last_crawl_run_id")
    sql = f"INSERT INTO reviews ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    now = "2026-06-30T12:00:00+00:00"
    start = time.perf_counter()
    for first in range(0, len(items), BATCH):
        rows = [
            (item.id, *(getattr(item, c) for c in REVIEW_COLUMNS), now, now, 1, 1)
            for item in items[first : first + BATCH]
        ]
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.executemany(sql, rows)
        db.conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    db.close()
    return seconds


def ingest(workdir: Path, n: int, repetitions: int) -> list[Figure]:
    template = workdir / "ingest-template.db"
    sources = _empty_db(template)
    items = _items(n, sources)
    ours: list[float] = []
    bare: list[float] = []
    for rep in range(repetitions):  # interleaved, so a noisy neighbour hits both sides alike
        for fn, samples in ((_ingest_product, ours), (_ingest_bare, bare)):
            target = workdir / f"ingest-{rep}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            shutil.copy(template, target)
            samples.append(n / fn(target, items))
    figure = Figure(
        "storage", f"ingest through StorePipeline ({n:,} new reviews, batches of {BATCH})", median(ours),
        "reviews/s", median(bare), "bare executemany", samples=ours, baseline_samples=bare,
    )  # fmt: skip
    return [figure.check(lambda value, _b, _r: value >= INGEST_TARGET, f">= {INGEST_TARGET:,.0f}/s")]


def pandas_aggregate(path: Path) -> Any:
    """AGGREGATE_SQL's sums per (brand, vendor, month), computed in pandas from the same file."""
    import numpy as np
    import pandas as pd

    from reputation.rollups.attribution import UNDATED, attribution_periods, load_engagements
    from storage.database import connect

    next_day = (AS_OF.toordinal() + 1, (AS_OF.fromordinal(AS_OF.toordinal() + 1)).isoformat())[1]
    db = connect(path)
    periods = pd.DataFrame(
        [(p.brand_id, p.vendor_id, p.start_date, p.end_date, p.weight) for p in attribution_periods(load_engagements(db, AS_OF), AS_OF)],
        columns=["brand_id", "vendor_id", "start_date", "end_date", "weight"],
    )  # fmt: skip
    conn = db.conn
    df = pd.read_sql_query(
        "SELECT r.id, r.brand_id, r.published_at, r.date_precision, r.first_seen, r.language AS r_lang, "
        "s.language AS s_lang, s.label, s.score, s.cs_relevance, s.cs_score FROM reviews r "
        "LEFT JOIN review_sentiment s ON s.review_id = r.id AND s.model_id = ? AND s.model_revision = ?",
        conn, params=(MODEL_ID, MODEL_REVISION),
    )  # fmt: skip
    dups = set(pd.read_sql_query("SELECT review_id FROM review_duplicates", conn)["review_id"])
    db.close()
    df = df[(df.first_seen < next_day) & (df.published_at.isna() | (df.published_at < next_day))]
    df = df.assign(
        day=df.published_at.str[:10].where(df.date_precision != "missing"),
        relative=df.date_precision == "relative",
        dup=df.id.isin(dups),
    )
    lang = df.s_lang.fillna(df.r_lang)
    df["non_en"] = ~df.dup & lang.notna() & (lang.str[:2].str.lower() != "en")
    keep = ~df.dup & ~df.non_en
    df["scored"] = keep & df.score.notna()
    df["cs"] = keep & (df.cs_relevance >= CS_THRESHOLD) & df.cs_score.notna()
    age = (pd.Timestamp(AS_OF) - pd.to_datetime(df.day)).dt.days
    df["rw"] = np.power(0.5, age / HALF_LIFE_DAYS)
    key = df.day.fillna(UNDATED)
    merged = df.assign(key=key).merge(periods, on="brand_id", how="left")
    inside = (merged.key >= merged.start_date) & (merged.key <= merged.end_date)
    attributed = merged[inside]
    unattributed = df[~df.id.isin(attributed.id)].assign(vendor_id=None, weight=1.0)
    rows = pd.concat([attributed.drop(columns=["key", "start_date", "end_date"]), unattributed], ignore_index=True)
    a = rows.weight
    score, cs_score, rw = rows.score.fillna(0.0), rows.cs_score.fillna(0.0), rows.rw.fillna(0.0)
    frame = pd.DataFrame({
        "brand_id": rows.brand_id, "vendor_id": rows.vendor_id, "month": rows.day.str[:7],
        "n_reviews": ~rows.dup, "w_reviews": (~rows.dup) * a, "n_duplicates": rows.dup, "w_duplicates": rows.dup * a,
        "n_non_english": rows.non_en, "n_relative": ~rows.dup & rows.relative, "n_undated": ~rows.dup & rows.day.isna(),
        "s_n": rows.scored, "s_w": rows.scored * a, "s_wx": rows.scored * a * score,
        "s_wxx": rows.scored * a * score**2, "s_ww": rows.scored * a * a,
        "p_wx": rows.scored * a * (rows.label == "positive"), "q_wx": rows.scored * a * (rows.label == "negative"),
        "c_n": rows.cs, "c_w": rows.cs * a, "c_wx": rows.cs * a * cs_score, "c_wxx": rows.cs * a * cs_score**2,
        "c_ww": rows.cs * a * a, "r_w": rows.cs * a * rw, "r_wx": rows.cs * a * rw * cs_score,
        "r_ww": rows.cs * a * a * rw * rw,
    })  # fmt: skip
    return frame.groupby(["brand_id", "vendor_id", "month"], dropna=False, sort=True).sum()


def _rollup_seconds(path: Path) -> float:
    from reputation.rollups.build import build_rollups
    from storage.database import connect

    db = connect(path)
    try:
        start = time.perf_counter()
        build_rollups(db, as_of=AS_OF)
        return time.perf_counter() - start
    finally:
        db.close()


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rollups(paths: dict[int, Path], repetitions: int, target_size: int) -> list[Figure]:
    figures = []
    for size, path in paths.items():
        first = _rollup_seconds(path)  # builds the FTS index and the author index once
        reps = repetitions if size < 1_000_000 else max(2, repetitions - 1)
        ours, theirs = [], []
        for _ in range(reps):
            ours.append(_rollup_seconds(path))
            theirs.append(_timed(lambda p=path: pandas_aggregate(p)))  # type: ignore[misc]
        label = f"{size:,}" if size < 1_000_000 else f"{size // 1_000_000}M"
        figures.append(Figure("storage", f"first build_rollups, {label} reviews (creates FTS index)", first, "s",
                              lower_is_better=True))
        figure = Figure(
            "storage", f"build_rollups, {label} reviews (rebuild)", median(ours), "s", median(theirs),
            "pandas read_sql+groupby", lower_is_better=True, samples=ours, baseline_samples=theirs,
        )  # fmt: skip
        if size == target_size:
            figure.check(lambda value, _b, ratio: value <= ROLLUP_TARGET_S and ratio > 1,
                         f"<= {ROLLUP_TARGET_S:.0f} s and faster than pandas")
        figures.append(figure)
    return figures


def memory(small: Path, large: Path, sizes: tuple[int, int], model_dir: Path | None, score_n: int) -> list[Figure]:
    from bench.memory import measure

    label = f"{sizes[1]:,} vs {sizes[0]:,} reviews"
    rule_text = f"<= {MEMORY_GROWTH}x the smaller file"
    figures = []
    lo, hi = measure(["rollup", str(small)]), measure(["rollup", str(large)])
    figures.append(Figure(
        "storage", f"peak RSS of build_rollups, {label}", hi["maxrss_mb"], "MB", lo["maxrss_mb"], "smaller file",
        lower_is_better=True, note=f"after imports: {hi['baseline_mb']:.0f} MB",
    ).check(lambda value, baseline, _r: value <= MEMORY_GROWTH * baseline, rule_text))  # fmt: skip
    if model_dir is not None:
        lo = measure(["score", str(small), str(model_dir), str(score_n)])
        hi = measure(["score", str(large), str(model_dir), str(score_n)])
        figures.append(Figure(
            "storage", f"peak RSS of score_reviews ({score_n} reviews scored), {label}", hi["maxrss_mb"], "MB",
            lo["maxrss_mb"], "smaller file", lower_is_better=True,
            note=f"after model load: {hi['baseline_mb']:.0f} MB",
        ).check(lambda value, baseline, _r: value <= MEMORY_GROWTH * baseline, rule_text))  # fmt: skip
    return figures


def run(workdir: Path, *, quick: bool, repetitions: int, model_dir: Path | None, say: Callable[[str], None]) -> list[Figure]:
    """Every storage figure; synthetic files are written under ``workdir``."""
    sizes = [5_000, 20_000] if quick else [10_000, 100_000, 1_000_000]
    pair = (sizes[0], sizes[1]) if quick else (100_000, 1_000_000)
    figures = ingest(workdir, 5_000 if quick else 50_000, repetitions)
    say(f"  ingest: {figures[-1].value:,.0f} reviews/s")
    paths = {}
    for size in sizes:
        start = time.perf_counter()
        paths[size] = make_database(workdir / f"synth-{size}.db", size)
        say(f"  synthetic file of {size:,} reviews written in {time.perf_counter() - start:.1f} s")
    figures += rollups(paths, repetitions, sizes[-1])
    say("  roll-ups timed")
    figures += memory(paths[pair[0]], paths[pair[1]], pair, model_dir, 32 if quick else 64)
    say("  peak memory measured")
    return figures
