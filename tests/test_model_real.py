"""The model on real captured pages: Chromium captures a few pages of Debian's sqlite3
documentation, the pipeline pre-annotates and exports them, and `model predict` and
`model evaluate` run on those screenshots and that release."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from catalog import Catalog, Workspace

from .test_crawl_site import ROOT, run_crawl
from .test_model_predict import run_model, tiny_model  # noqa: F401  (module fixture)
from .test_model_train import small_release  # noqa: F401  (module fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def captured(chromium, sqlite_doc_dir, tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("real") / "ws"
    proc = run_crawl(root, "--serve", str(sqlite_doc_dir), "--max-pages", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for args in (["annotate", "preannotate"], ["export", "--include-preannotations"]):
        proc = subprocess.run([sys.executable, "-m", *args, "--workspace", str(root),
                               "--config", str(root.parent / "ws.toml")], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return Workspace(root)


def test_predict_on_real_screenshots(captured, tiny_model, tmp_path):  # noqa: F811
    with Catalog(captured.catalog_path) as cat:
        ids = [r["page_id"] for r in cat.pages() if r["status"] == "ok"]
    shots = [captured.screenshot(i) for i in ids]
    assert shots
    # Screenshots are all called screenshot.png: one folder of outputs per page.
    for pid, shot in zip(ids, shots, strict=True):
        proc = run_model("predict", str(tiny_model), str(shot), "--out", str(tmp_path / pid))
        assert proc.returncode == 0, proc.stderr
        doc = json.loads((tmp_path / pid / "screenshot.json").read_text())
        with Image.open(shot) as im:
            size = im.size
        assert (doc["width"], doc["height"]) == size
        with Image.open(tmp_path / pid / doc["masks"]["text"]) as m:
            assert m.size == size and set(np.unique(np.asarray(m))) <= {0, 255}


def test_evaluate_on_a_release_of_real_pages(captured, tiny_model):  # noqa: F811
    release = sorted(captured.releases_dir.glob("v*"))[-1]
    splits = [s for s in ("train", "val", "test")
              if (release / s / "metadata.jsonl").is_file()
              and (release / s / "metadata.jsonl").read_text().strip()]
    assert splits
    # One site makes one group, so its pages sit in one split: measure that one.
    proc = run_model("evaluate", str(tiny_model), str(release), "--split", splits[0])
    assert proc.returncode == 0, proc.stderr
    written = tiny_model / f"evaluation-ws-{release.name}-{splits[0]}.json"
    doc = json.loads(written.read_text())
    assert doc["pages"] >= 1
    # Real documentation pages are mostly text: the DOM's masks say so, and both
    # baselines and the model are scored against them.
    assert doc["elements"]["model"]["pixels"]["text"] > 0
    for method in ("model", "pixels", "majority"):
        assert 0 <= doc["elements"][method]["pixel_accuracy"] <= 1
