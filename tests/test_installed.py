"""The tool works installed, not only from the checkout.

A wheel is built from the files git knows about (what a fresh clone holds, so stale build/ or
*.egg-info output cannot leak in), installed with ``pip install --target`` into a folder of its own,
and run from an empty folder with that folder first on PYTHONPATH; third-party packages come from the
running interpreter's environment. A ``sitecustomize`` on PYTHONPATH records, in every Python process
that exits normally (the CLI and the Scrapy child it starts), where each of the project's modules was
imported from, so a module or data file read from the checkout shows up by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

from storage.version import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("reputation", "crawler", "spiders", "sentiment", "relations", "storage", "demo_world")
# Read at run time through importlib.resources or jinja2's PackageLoader.
PACKAGE_DATA = (
    "crawler/layouts.yaml",
    "demo_world/data/world.yaml",
    "demo_world/data/sentences.yaml",
    "reputation/rollups/datasette-metadata.yaml",
    "reputation/scorecards/scorecard.schema.json",
    "reputation/scorecards/templates/scorecard.html",
)
DEMO_TIMEOUT_S = 1200  # about 2 minutes on an idle machine; generous for a shared one

# Appends one JSON line per process at exit: its argv and the file of every project module it imported.
SITECUSTOMIZE = f"""
import atexit, json, os, sys

OURS = {PACKAGES!r}


def _where(module):
    path = getattr(module, "__file__", None)
    if path:
        return path
    return next(iter(getattr(module, "__path__", None) or ()), None)


def _record():
    modules = {{name: _where(module) for name, module in list(sys.modules.items())
               if name.partition(".")[0] in OURS}}
    with open(os.environ["REPUTATION_TEST_IMPORT_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps({{"pid": os.getpid(), "argv": sys.argv, "modules": modules}}) + "\\n")


atexit.register(_record)
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    site: Path  # the --target folder
    hook: Path  # holds sitecustomize.py
    work: Path  # scratch space for runs


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        partial = "".join(part.decode() if isinstance(part, bytes) else part or "" for part in (exc.stdout, exc.stderr))
        pytest.fail(f"{' '.join(argv[:6])} ... still running after {timeout} s:\n{partial[-6000:]}")
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(argv[:6])} ... exited {done.returncode}:\n{output[-6000:]}"
    return output


def _tracked_tree(dest: Path) -> None:
    """Copy tracked and new-but-not-ignored files: the tree a commit of this working copy would hold."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout; the wheel is built from `git ls-files`")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working copy is not part of it
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    src, wheels, site, hook, work = (root / name for name in ("src", "wheels", "site", "hook", "work"))
    for folder in (src, wheels, hook, work):
        folder.mkdir()
    _tracked_tree(src)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)], cwd=root)
    (wheel,) = wheels.glob("reputation-*.whl")
    _run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], cwd=root)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return Installed(wheel=wheel, site=site, hook=hook, work=work)


def _env(installed: Installed, log: Path) -> dict[str, str]:
    """The installed folder first on PYTHONPATH; no setting that could point back at the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPUTATION_", "SCRAPY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(installed.site), str(installed.hook)])
    env["REPUTATION_TEST_IMPORT_LOG"] = str(log)
    env["REPUTATION_CACHE"] = str(log.parent / "cache")  # the model is assembled from the installed files
    env["HF_HUB_OFFLINE"] = env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def _empty_dir(installed: Installed, name: str) -> Path:
    folder = installed.work / name
    folder.mkdir()
    return folder


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _outside(records: list[dict], site: Path) -> list[str]:
    """Every project module that some process imported from anywhere but the installed folder."""
    return [
        f"pid {record['pid']} {Path(record['argv'][0]).name}: {name} from {path}"
        for record in records
        for name, path in sorted(record["modules"].items())
        if path is None or not Path(path).resolve().is_relative_to(site.resolve())
    ]


def test_wheel_carries_version_licence_and_package_data(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"reputation-{__version__}.dist-info"
        metadata = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert f"{info}/licenses/LICENSE" in names
    assert {name.partition("/")[0] for name in names} == {*PACKAGES, info}
    assert [path for path in PACKAGE_DATA if path not in names] == []


def test_version_and_imports_come_from_the_install(installed: Installed) -> None:
    cwd = _empty_dir(installed, "version")
    env = _env(installed, cwd / "imports.jsonl")
    out = _run([sys.executable, "-m", "reputation", "--version"], cwd=cwd, env=env)
    assert out.strip() == f"reputation, version {__version__}"
    probe = f"import json, {', '.join(PACKAGES)}; print(json.dumps({{m: {{'file': __import__(m).__file__}} for m in {PACKAGES!r}}}))"
    files = json.loads(_run([sys.executable, "-c", probe], cwd=cwd, env=env))
    assert {name: Path(found["file"]).parent for name, found in files.items()} == {
        name: installed.site / name for name in PACKAGES
    }
    assert _outside(_records(cwd / "imports.jsonl"), installed.site) == []


def test_demo_runs_from_the_install(installed: Installed) -> None:
    cwd = _empty_dir(installed, "demo")
    log = cwd.parent / "demo-imports.jsonl"  # beside the run folder, so the run folder holds only its own output
    env = _env(installed, log)
    _run([sys.executable, "-m", "reputation", "--db", "x.db", "demo", "--out", "out"],
         cwd=cwd, env=env, timeout=DEMO_TIMEOUT_S)

    cards = sorted(path.name for path in (cwd / "out" / "scorecards").iterdir())
    assert {Path(name).suffix for name in cards} >= {".html", ".csv", ".json"}, cards
    assert (cwd / "x.db").stat().st_size > 0

    records = _records(log)
    cli = [r for r in records if Path(r["argv"][0]).parent.name == "reputation"]
    # The crawl child is told by its entry point, crawler/child.py (Scrapy's command line).
    crawl = [r for r in records if Path(r["argv"][0]).parts[-2:] == ("crawler", "child.py")]
    assert cli and crawl, f"expected the CLI and its Scrapy child among {[r['argv'][:3] for r in records]}"
    assert all(Path(r["argv"][0]).resolve().is_relative_to(installed.site.resolve()) for r in cli)
    assert all("spiders.reviews" in r["modules"] for r in crawl)
    assert _outside(records, installed.site) == []
