"""The README's loading snippets run against a real release: PyTorch and Hugging Face.

Each snippet runs in a fresh interpreter from the repository root (where `datasets/`
holds data and must not shadow the Hugging Face library), with no network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog import Catalog, Config, Workspace
from export import snippets
from export.release import make_release
from export.synthetic import add_page

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = 'release = "datasets/sqlite-docs/releases/v0001"'


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is required in CI (make setup installs the dev extras)")
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


def _readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Loading a release", 1)
    assert len(section) == 2, "README.md has no '## Loading a release' section"
    body = re.split(r"\n## ", section[1], maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(12):
            add_page(ws, cat, f"https://www.site{i % 6}.org/p{i}", seed=i, width=300, height=600)
    cfg = Config()
    cfg.export.tile = 256
    cfg.export.val_ratio = 0.4
    rel = make_release(ws, cfg, log=lambda _: None)
    assert all(rel.per_split.values()), rel.per_split  # both splits have pages
    return rel.path


def _run(code: str, release: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    assert PLACEHOLDER in code
    code = code.replace(PLACEHOLDER, f"release = {str(release)!r}")
    env = {
        **os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": "",
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )


def test_readme_shows_the_snippets_that_are_tested():
    shown = _readme_snippets()
    for snippet in (snippets.PYTORCH, snippets.HUGGINGFACE, snippets.COCO):
        assert snippet in shown


def test_pytorch_dataset_snippet_loads_pages_and_tiles(release, tmp_path):
    _need("torch")
    check = """
import numpy as np
assert image.dtype == torch.uint8 and image.shape[0] == 3
assert mask.shape == image.shape[1:] and mask.dtype == torch.int64
assert images.shape == (4, 3, 256, 256) and masks.shape == (4, 256, 256)
assert set(np.unique(masks.numpy())) <= set(range(11)) | {255}
assert len(WebSegDataset(release, "val")) > 0
print("pages", len(WebSegDataset(release, "train")), "tiles", len(tiles))
"""
    out = _run(snippets.PYTORCH + check, release, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    train = [r for r in pq.read_table(release / "manifest.parquet").to_pylist()
             if r["split"] == "train"]
    assert f"pages {len(train)} tiles {sum(r['tiles'] for r in train)}" in out.stdout


def test_huggingface_imagefolder_snippet_loads_images_and_masks(release, tmp_path):
    _need("datasets")
    check = """
import numpy as np
from PIL import Image
import datasets as hf
assert hasattr(hf, "load_dataset") and "site-packages" in hf.__file__  # not our data folder
row = ds["train"][0]
mask = np.array(row["mask"])
assert row["image"].size == row["mask"].size
on_disk = np.array(Image.open(f"{release}/train/masks/{row['page_id']}.png"))
assert (mask == on_disk).all() and mask.max() > 0
print("rows", ds["train"].num_rows, ds["validation"].num_rows)
"""
    out = _run(snippets.HUGGINGFACE + check, release, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = pq.read_table(release / "manifest.parquet").to_pylist()
    n = {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "val")}
    assert f"rows {n['train']} {n['val']}" in out.stdout


def test_coco_snippet_loads_with_pycocotools(release, tmp_path):
    out = _run(snippets.COCO + "print(len(coco.getImgIds()), len(coco.getAnnIds()))",
               release, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    images, anns = (int(v) for v in out.stdout.strip().splitlines()[-1].split())
    assert images > 0 and anns > images


def test_coco_evaluation_of_the_annotations_against_themselves_is_perfect(release):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(release / "train" / "annotations.json"))
        dets = [{k: v for k, v in a.items() if k != "id"} | {"score": 1.0}
                for a in gt.dataset["annotations"]]
        for kind in ("segm", "bbox"):
            ev = COCOeval(gt, gt.loadRes(dets), kind)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            assert ev.stats[0] == pytest.approx(1.0), kind
