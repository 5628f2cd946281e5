"""The model stage's predictions for the proposal, through its files only.

`python -m model predict MODEL IMAGE... --out DIR` runs once for all the pages that lack a
prediction of this model version (one process: the network is loaded once), and its
`<page_id>.json` files are read back as annotation records. The stage is never imported:
it has its own dependencies (torch) and its own pace of change, and its command line and
files are the contract. Predictions are kept under a cache folder per model version, so a
rerun predicts only what changed (a page whose screenshot is newer than its prediction).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from catalog.records import Annotation
from catalog.workspace import read_json

ROOT = Path(__file__).resolve().parents[2]  # where `python -m model` is found


class ModelError(ValueError):
    """The model or its predictions cannot be used; the message says what to do."""


def model_version(model_dir: Path) -> str:
    """The version (mNNNN) in the model's card; ModelError naming the fix."""
    card = Path(model_dir) / "model.json"
    if not Path(model_dir).is_dir():
        raise ModelError(f"model directory {model_dir} not found: give a models/mNNNN folder "
                         "that `python -m model train` wrote")
    try:
        version = json.loads(card.read_text(encoding="utf-8"))["version"]
    except FileNotFoundError:
        raise ModelError(f"{model_dir} has no model.json: it is not a trained model; train "
                         "one with `python -m model train`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{card} is not a model card ({exc}); train the model again") from None
    if not isinstance(version, str) or not version:
        raise ModelError(f"{card} names no version; train the model again")
    return version


def _stale(prediction: Path, screenshot: Path) -> bool:
    return (not prediction.exists()
            or prediction.stat().st_mtime < screenshot.stat().st_mtime)


def _run_predict(model_dir: Path, screenshots: Mapping[str, Path], out: Path,
                 advance: Callable[[int], None]) -> None:
    """One `python -m model predict` over the screenshots, each linked as <page_id>.png (the
    command names its outputs by the image's stem, and every page's is `screenshot`)."""
    with tempfile.TemporaryDirectory(prefix="predict-") as tmp:
        links = []
        for pid, shot in sorted(screenshots.items()):
            link = Path(tmp) / f"{pid}.png"
            try:
                link.symlink_to(Path(shot).resolve())
            except OSError:
                shutil.copyfile(shot, link)
            links.append(str(link))
        before = {p: p.stat().st_mtime if p.exists() else None
                  for p in (out / f"{pid}.json" for pid in screenshots)}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        cmd = [sys.executable, "-m", "model", "predict", str(model_dir), *links, "--out", str(out)]
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=ROOT, env=env)
            done = 0
            while proc.poll() is None:
                time.sleep(0.5)
                now = sum(1 for p, t in before.items()
                          if p.exists() and p.stat().st_mtime != t)
                advance(now - done)
                done = now
            advance(len(screenshots) - done)
            if proc.returncode != 0:
                log.seek(0)
                lines = [x for x in log.read().decode(errors="replace").splitlines() if x.strip()]
                last = lines[-1].strip() if lines else "no message"
                raise ModelError(f"`python -m model predict {model_dir}` failed (exit "
                                 f"{proc.returncode}): {last}")


def predict_pages(model_dir: Path, screenshots: Mapping[str, Path], cache: Path,
                  advance: Callable[[int], None] = lambda n: None) -> dict[str, Annotation]:
    """The model's prediction for each page (page id -> screenshot), predicting those the
    cache (`cache/<version>/<page_id>.json`) lacks; `advance(n)`: n more pages done."""
    version = model_version(model_dir)
    out = Path(cache) / version
    todo = {pid: shot for pid, shot in screenshots.items() if _stale(out / f"{pid}.json", shot)}
    advance(len(screenshots) - len(todo))
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        _run_predict(Path(model_dir), todo, out, advance)
    found = {}
    for pid in screenshots:
        path = out / f"{pid}.json"
        try:
            found[pid] = Annotation.from_dict(read_json(path))
        except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"`python -m model predict` left no readable {path} ({exc}); "
                             f"delete {out} and run again") from None
        if found[pid].meta.get("version") != version:
            raise ModelError(f"{path} is not a prediction of model {version}; delete {out} "
                             "and run again")
    return found
