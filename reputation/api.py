"""The roll-ups as pandas DataFrames, for notebooks and scripts.

    >>> from reputation.api import vendor_table
    >>> vendor_table("reputation.db")[["rank", "vendor_name", "shrunk_score", "n_cs"]]

The file is opened read-only, so reading never blocks or changes a running job. Scores that
nothing backs are NaN/None, never 0. Column meanings: reputation/rollups/datasette-metadata.yaml.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd

from reputation.rollups.views import PUBLISHED_TABLES, require_rollups
from storage.errors import NotFoundError, ReputationError

ROLLUP_TABLES = PUBLISHED_TABLES


def _connect(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    path = Path(db_path)
    if not path.exists():
        raise ReputationError(f"database {path} does not exist")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        require_rollups(conn, str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def load_rollups(db_path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Every roll-up table by name: rollup_meta, brand_reputation, vendor_reputation, vendor_monthly,
    vendor_switches (rows as stored; see :func:`vendor_table` for the parsed brands column)."""
    with closing(_connect(db_path)) as conn:
        return {table: pd.read_sql_query(f"SELECT * FROM {table}", conn) for table in ROLLUP_TABLES}


def vendor_table(db_path: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per vendor, best shrunk customer-service score first (unranked vendors last, rank NaN).

    ``brands`` is parsed from JSON into a list of {"brand_id", "brand_name", "n", "n_cs", "weight"},
    where weight is the brand's share of the vendor's CS score.
    """
    with closing(_connect(db_path)) as conn:
        frame = pd.read_sql_query(
            "SELECT * FROM vendor_reputation ORDER BY rank IS NULL, rank, n_cs DESC, vendor_id", conn
        )
    frame["brands"] = frame["brands"].map(json.loads)
    return frame


def monthly(db_path: str | os.PathLike[str], vendor_id: str | None = None) -> pd.DataFrame:
    """Vendor-month rows in time order, for trend charts; ``vendor_id`` keeps one vendor.

    ``month_start`` (a Timestamp) is added next to the 'YYYY-MM' text for plotting.
    """
    with closing(_connect(db_path)) as conn:
        if vendor_id is not None:
            known = conn.execute(
                "SELECT 1 FROM vendor_reputation WHERE vendor_id = ?", (vendor_id,)
            ).fetchone()
            if not known:
                raise NotFoundError(f"no vendor {vendor_id!r} in the roll-ups")
            frame = pd.read_sql_query(
                "SELECT * FROM vendor_monthly WHERE vendor_id = ? ORDER BY month", conn, params=(vendor_id,)
            )
        else:
            frame = pd.read_sql_query("SELECT * FROM vendor_monthly ORDER BY vendor_id, month", conn)
    frame["month_start"] = pd.to_datetime(frame["month"] + "-01", format="%Y-%m-%d")
    return frame


def switches(db_path: str | os.PathLike[str]) -> pd.DataFrame:
    """Vendor changes with CS sentiment before/after and the difference-in-differences ``did``
    (CS change minus the brand's non-CS change), newest first."""
    with closing(_connect(db_path)) as conn:
        return pd.read_sql_query(
            "SELECT * FROM vendor_switches ORDER BY switch_date DESC, brand_id, from_vendor_id", conn
        )
