"""The README's loading snippets run against a real release: PyTorch and Hugging Face.

Each snippet runs in a fresh interpreter from the repository root (where `datasets/`
holds data and must not shadow the Hugging Face library), with no network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog import Catalog, Config, Workspace
from export import snippets
from export.release import make_release, write_sums
from export.synthetic import add_page
from export.verify import verify_release

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = 'release = "datasets/sqlite-docs/releases/v0001"'
TILE = 320
# After the PyTorch snippet: every train tile as the Dataset gives it against the tile
# files --tile-files wrote (named in the row, or as releases before windows named them).
SAME_AS_TILE_FILES = """
def tile_files(row):
    if "window" in row:
        return Path(release) / row["tile_image"], Path(release) / row["tile_mask"]
    return tiles.dir / row["file_name"], tiles.dir / row["mask_file_name"]

same = 0
for i, row in enumerate(tiles.rows):
    got_image, got_mask = tiles[i]
    image_file, mask_file = tile_files(row)
    want_image = np.array(Image.open(image_file).convert("RGB"))
    want_mask = np.array(Image.open(mask_file))
    same += bool((got_image.permute(1, 2, 0).numpy() == want_image).all()
                 and (got_mask.numpy() == want_mask).all())
print("tiles", len(tiles), "same as their files", same)
"""


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
    # 320 px tiles on 300 px wide pages: every tile is padded on its right.
    cfg.export.tile = TILE
    cfg.export.tile_files = True  # the files the loaders' crops are compared with
    cfg.export.val_ratio = 0.4
    rel = make_release(ws, cfg, log=lambda _: None)
    assert all(rel.per_split.values()), rel.per_split  # both splits have pages
    return rel.path


@pytest.fixture(scope="module")
def old_release(release, tmp_path_factory) -> Path:
    """The release as one made before tiles were windows: tile rows with x, y and tile
    files named relative to tiles/, re-signed."""
    dest = tmp_path_factory.mktemp("old") / release.name
    shutil.copytree(release, dest)
    for p in dest.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    for meta in dest.glob("*/tiles/metadata.jsonl"):
        rows = [json.loads(line) for line in meta.read_text().splitlines()]
        old = [{
            "file_name": r["tile_image"].split("/tiles/", 1)[1],
            "mask_file_name": r["tile_mask"].split("/tiles/", 1)[1],
            "page_id": r["page_id"], "x": r["window"][0], "y": r["window"][1],
            "size": r["size"],
        } for r in rows]
        meta.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in old))
    write_sums(dest)
    return dest


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


def test_pytorch_dataset_snippet_crops_windows_equal_to_the_tile_files(release, tmp_path):
    _need("torch")
    check = f"""
import numpy as np
assert image.dtype == torch.uint8 and image.shape[0] == 3
assert mask.shape == image.shape[1:] and mask.dtype == torch.int64
assert images.shape == (4, 3, {TILE}, {TILE}) and masks.shape == (4, {TILE}, {TILE})
assert set(np.unique(masks.numpy())) <= set(range(11)) | {{255}}
assert (masks[:, :, 300:] == 255).all() and (images[:, :, :, 300:] == 0).all()  # padding
assert len(WebSegDataset(release, "val")) > 0
print("pages", len(WebSegDataset(release, "train")))
""" + SAME_AS_TILE_FILES
    out = _run(snippets.PYTORCH + check, release, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    train = [r for r in pq.read_table(release / "manifest.parquet").to_pylist()
             if r["split"] == "train"]
    n_tiles = sum(r["tiles"] for r in train)
    assert n_tiles == 2 * len(train)  # 300x600 pages: windows at y 0 and 280
    assert f"pages {len(train)}" in out.stdout
    assert f"tiles {n_tiles} same as their files {n_tiles}" in out.stdout


def test_a_release_made_before_windows_still_verifies_and_loads(old_release, tmp_path):
    assert verify_release(old_release).ok, verify_release(old_release).problems
    _need("torch")
    out = _run(snippets.PYTORCH + "import numpy as np\n" + SAME_AS_TILE_FILES, old_release,
               tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    n = len((old_release / "train" / "tiles" / "metadata.jsonl").read_text().splitlines())
    assert f"tiles {n} same as their files {n}" in out.stdout


def test_huggingface_snippet_loads_pages_and_crops_windows(release, tmp_path):
    _need("datasets")
    check = """
import json
import numpy as np
import datasets as hf
assert hasattr(hf, "load_dataset") and "site-packages" in hf.__file__  # not our data folder
row = ds["train"][0]
mask = np.array(row["mask"])
assert row["image"].size == row["mask"].size
on_disk = np.array(Image.open(f"{release}/train/masks/{row['page_id']}.png"))
assert (mask == on_disk).all() and mask.max() > 0
print("rows", ds["train"].num_rows, ds["validation"].num_rows)
with open(f"{release}/train/tiles/metadata.jsonl") as f:
    rows = [json.loads(line) for line in f]
same = 0
for row, tile in zip(rows, tiles["train"]):
    want_image = np.array(Image.open(f"{release}/{row['tile_image']}").convert("RGB"))
    want_mask = np.array(Image.open(f"{release}/{row['tile_mask']}"))
    same += bool((np.array(tile["image"]) == want_image).all()
                 and (np.array(tile["mask"]) == want_mask).all()
                 and tile["page_id"] == row["page_id"])
print("tiles", tiles["train"].num_rows, tiles["validation"].num_rows, "same", same)
"""
    out = _run(snippets.HUGGINGFACE + check, release, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = pq.read_table(release / "manifest.parquet").to_pylist()
    n = {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "val")}
    assert f"rows {n['train']} {n['val']}" in out.stdout
    t = {s: sum(r["tiles"] for r in rows if r["split"] == s) for s in ("train", "val")}
    assert f"tiles {t['train']} {t['val']} same {t['train']}" in out.stdout


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
