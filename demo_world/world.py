"""The fictional world of the demo: vendors, brands and who served whom when.

Loaded from the package data file data/world.yaml so the story can be changed without code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from storage.errors import ReputationError
from storage.records import Engagement

SITES = ("trust", "shop", "forum", "app")
DATA = resources.files("demo_world") / "data"  # package data, read the same from a checkout or a wheel


class DemoDataError(ReputationError):
    """The demo generator's input data is missing or inconsistent."""


@dataclass(frozen=True)
class Vendor:
    id: str
    name: str
    website: str | None
    quality: float


@dataclass(frozen=True)
class Brand:
    id: str
    name: str
    sector: str
    quality: float
    sites: tuple[str, ...]

    @property
    def website(self) -> str:
        return f"https://{self.id}.example"


@dataclass
class World:
    period_start: date
    period_end: date
    reviews_min: int
    reviews_max: int
    page_size: dict[str, int]
    non_english: int
    syndicated: int
    vendors: list[Vendor]
    brands: list[Brand]
    engagements: list[Engagement]
    _by_vendor: dict[str, Vendor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_vendor = {v.id: v for v in self.vendors}

    def vendor(self, vendor_id: str) -> Vendor:
        return self._by_vendor[vendor_id]

    def serving(self, brand_id: str, day: date) -> list[Engagement]:
        """Engagements covering a brand on a day (two when a contract is split by scope)."""
        return [e for e in self.engagements if e.brand_id == brand_id and e.active(day)]

    def switches(self) -> list[dict[str, str]]:
        """Brands whose whole-scope contract moved from one vendor to another the next day."""
        out = []
        for brand in self.brands:
            whole = sorted((e for e in self.engagements if e.brand_id == brand.id and e.scope == "all"),
                           key=lambda e: e.start)
            for before, after in zip(whole, whole[1:], strict=False):
                if before.end is not None and before.end + timedelta(days=1) == after.start \
                        and before.vendor_id != after.vendor_id:
                    out.append({"brand": brand.id, "from_vendor": before.vendor_id,
                                "to_vendor": after.vendor_id, "date": after.start.isoformat()})
        return out


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise DemoDataError(f"{where}: {value!r} is not a YYYY-MM-DD date") from exc


def load_yaml(name: str, data_dir: Path | None = None) -> dict[str, Any]:
    path: Path | Traversable = (data_dir or DATA) / name
    if not path.is_file():
        raise DemoDataError(f"demo data file not found: {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise DemoDataError(f"{path}: expected a mapping at the top level")
    return data


def load_world(data_dir: Path | None = None) -> World:
    """Read world.yaml and check that every reference and window makes sense."""
    raw = load_yaml("world.yaml", data_dir)
    try:
        vendors = [Vendor(v["id"], v["name"], v.get("website"), float(v["quality"])) for v in raw["vendors"]]
        brands = [Brand(b["id"], b["name"], b["sector"], float(b["quality"]), tuple(b["sites"]))
                  for b in raw["brands"]]
        engagements = [
            Engagement(e["vendor"], e["brand"], _as_date(e["start"], f"engagement {e['brand']}"),
                       _as_date(e["end"], f"engagement {e['brand']}") if e.get("end") else None,
                       e.get("scope", "all"), float(e.get("share", 1.0)), e.get("evidence"))
            for e in raw["engagements"]
        ]
        world = World(
            period_start=_as_date(raw["period"]["start"], "period.start"),
            period_end=_as_date(raw["period"]["end"], "period.end"),
            reviews_min=int(raw["reviews_per_brand"]["min"]),
            reviews_max=int(raw["reviews_per_brand"]["max"]),
            page_size={site: int(raw["page_size"][site]) for site in SITES},
            non_english=int(raw["non_english_reviews"]),
            syndicated=int(raw["syndicated_copies"]),
            vendors=vendors, brands=brands, engagements=engagements,
        )
    except (KeyError, TypeError) as exc:
        raise DemoDataError(f"world.yaml: missing or malformed field {exc}") from exc
    _check(world)
    return world


def _check(world: World) -> None:
    vendor_ids = {v.id for v in world.vendors}
    for brand in world.brands:
        bad = [s for s in brand.sites if s not in SITES]
        if bad or not 1 <= len(brand.sites) <= 2:
            raise DemoDataError(f"world.yaml: brand {brand.id} needs one or two sites out of {SITES}")
    for e in world.engagements:
        if e.vendor_id not in vendor_ids or e.brand_id not in {b.id for b in world.brands}:
            raise DemoDataError(f"world.yaml: engagement {e.vendor_id}/{e.brand_id} names an unknown id")
        if e.end is not None and e.end < e.start:
            raise DemoDataError(f"world.yaml: engagement {e.vendor_id}/{e.brand_id} ends before it starts")
    day = world.period_start
    while day <= world.period_end:  # every review needs a vendor serving its brand
        for brand in world.brands:
            if not world.serving(brand.id, day):
                raise DemoDataError(f"world.yaml: nobody serves {brand.id} on {day}")
        day += timedelta(days=30)
