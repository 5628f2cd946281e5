"""Releases from synthetic workspaces: layout, determinism, immutability, verify, bad input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools.coco import COCO

from catalog import Catalog, Config, Workspace
from export.release import make_release
from export.synthetic import add_page
from export.verify import verify_release

ROOT = Path(__file__).resolve().parent.parent
# Twelve registered domains (www/docs subdomains fold into them) with 2 pages each.
SITES = [f"https://{sub}.site{i}.org" for i in range(12) for sub in ("www", "docs")]


def _config(**export) -> Config:
    cfg = Config()
    cfg.dataset.name = "synthetic"
    for k, v in {"val_ratio": 0.3, "tile": 256, **export}.items():
        setattr(cfg.export, k, v)
    return cfg


def _workspace(root: Path, n: int = 24, **kw) -> tuple[Workspace, list[str]]:
    ws = Workspace(root)
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        pids = [
            add_page(ws, cat, f"{SITES[i % len(SITES)]}/page{i}", seed=i, width=300,
                     height=520 + 40 * (i % 3), **kw)
            for i in range(n)
        ]
    return ws, pids


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )


def _manifest(release: Path) -> list[dict]:
    return pq.read_table(release / "manifest.parquet").to_pylist()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    ws, _ = _workspace(tmp_path_factory.mktemp("ws"))
    return make_release(ws, _config(), log=lambda _: None).path


def test_release_has_splits_coco_masks_manifest_card_and_sums(release):
    assert release.name == "v0001"
    rows = _manifest(release)
    assert len(rows) == 24
    assert {r["split"] for r in rows} == {"train", "val"}
    for split in ("train", "val"):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(release / split / "annotations.json"))
        mine = [r for r in rows if r["split"] == split]
        assert len(coco.dataset["images"]) == len(mine)
        assert {c["name"] for c in coco.dataset["categories"]} >= {"header", "text", "image"}
        for img in coco.dataset["images"]:
            mask = Image.open(release / split / "masks" / Path(img["file_name"]).name)
            assert mask.mode == "P" and mask.size == (img["width"], img["height"])
            assert mask.getpalette()[3:6] == [0xE6, 0x19, 0x4B]  # header colour
            assert coco.getAnnIds(imgIds=[img["id"]])
        meta = (release / split / "metadata.jsonl").read_text().splitlines()
        assert len(meta) == len(mine)
        tiles = (release / split / "tiles" / "metadata.jsonl").read_text().splitlines()
        assert len(tiles) == sum(r["tiles"] for r in mine) > 0
        first = json.loads(tiles[0])
        page = next(r for r in mine if r["page_id"] == first["page_id"])
        assert (first["image"], first["mask"]) == (page["image"], page["mask"])
        assert first["window"] == [0, 0, 256, 256] and first["size"] == 256
        assert first["source"] == "human"
        # Tiles are windows: no tile pixel files unless asked for.
        assert not (release / split / "tiles" / "images").exists()
    classes = json.loads((release / "classes.json").read_text())
    assert classes["classes"][0]["name"] == "background"
    card = (release / "README.md").read_text()
    assert "| train | " in card and "achieved" in card and "First release." in card
    assert '"tile": 256' in card and "site0.org" in card
    sums = (release / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ", 1)[1] for line in sums}
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert listed == on_disk - {"SHA256SUMS"}
    assert "preview.png" in listed and Image.open(release / "preview.png").width > 200


def test_manifest_rows_carry_source_site_group_and_checksums(release):
    for row in _manifest(release):
        assert row["source"] == "human" and row["reviewed"] is True
        assert row["site"].startswith("site") and row["group"] == row["site"]
        assert len(row["image_sha256"]) == 64 and len(row["annotation_sha256"]) == 64
        assert (release / row["image"]).is_file() and (release / row["mask"]).is_file()


def test_no_site_spans_two_splits(release):
    split_of_site: dict[str, set] = {}
    for row in _manifest(release):
        split_of_site.setdefault(row["site"], set()).add(row["split"])
    assert all(len(s) == 1 for s in split_of_site.values())
    assert len({next(iter(s)) for s in split_of_site.values()}) == 2


def test_release_files_are_read_only(release):
    files = [p for p in release.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o222 == 0 for p in files)


def test_verify_passes_on_a_fresh_release(release):
    out = _run("verify", str(release))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK v0001")


def test_two_exports_of_the_same_inputs_are_byte_identical(tmp_path):
    a, _ = _workspace(tmp_path / "a", n=10)
    b, _ = _workspace(tmp_path / "b", n=10)
    ra = make_release(a, _config(resize_width=200), log=lambda _: None).path
    rb = make_release(b, _config(resize_width=200), log=lambda _: None).path
    assert (ra / "SHA256SUMS").read_bytes() == (rb / "SHA256SUMS").read_bytes()
    assert len((ra / "SHA256SUMS").read_text().splitlines()) > 20


@pytest.mark.parametrize(
    "victim", ["train/images/*.png", "val/masks/*.png", "train/annotations.json",
               "manifest.parquet", "README.md", "train/tiles/masks/*.png",
               "train/tiles/metadata.jsonl"],
)
def test_verify_catches_a_flipped_byte(tmp_path, victim):
    ws, _ = _workspace(tmp_path / "ws", n=8)
    rel = make_release(ws, _config(val_ratio=0.5, tile_files=True), log=lambda _: None).path
    path = sorted(rel.glob(victim))[0]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = _run("verify", str(rel))
    assert out.returncode == 1
    verdict = out.stdout.strip().splitlines()
    assert len(verdict) == 1 and verdict[0].startswith("FAILED v0001")
    assert path.relative_to(rel).as_posix() in out.stdout + out.stderr


def test_verify_catches_coco_that_disagrees_with_its_mask(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=6)
    rel = make_release(ws, _config(), log=lambda _: None).path
    coco_path = rel / "train" / "annotations.json"
    doc = json.loads(coco_path.read_text())
    region = next(a for a in doc["annotations"] if a["category_id"] == 1)  # a header
    region["category_id"] = 7  # now a "segment": the mask still says header
    coco_path.chmod(0o644)
    coco_path.write_text(json.dumps(doc))
    # Re-sign the file so that only the content check can find the change.
    sums = rel / "SHA256SUMS"
    sums.chmod(0o644)
    digest = hashlib.sha256(coco_path.read_bytes()).hexdigest()
    sums.write_text("".join(
        f"{digest}  train/annotations.json\n" if line.endswith("  train/annotations.json")
        else line + "\n" for line in sums.read_text().splitlines()
    ))
    rep = verify_release(rel)
    assert not rep.ok
    assert any("differs from its COCO annotations" in p for p in rep.problems), rep.problems
    assert not any("checksum" in p for p in rep.problems)


def test_a_new_release_never_touches_the_old_and_lists_what_changed(tmp_path):
    ws, pids = _workspace(tmp_path / "ws", n=10)
    cfg = _config()
    v1 = make_release(ws, cfg, log=lambda _: None).path
    sums_before = (v1 / "SHA256SUMS").read_bytes()
    old_split = {r["page_id"]: r["split"] for r in _manifest(v1)}
    with Catalog(ws.catalog_path) as cat:
        new = [add_page(ws, cat, f"https://www.newsite{i}.com/x", seed=100 + i, width=300,
                        height=500) for i in range(6)]
        cat.execute("DELETE FROM annotations WHERE page_id=?", (pids[0],))
    # Relabel one page: its human annotation changes.
    ann = ws.annotation_json(pids[1])
    doc = json.loads(ann.read_text())
    doc["regions"][0]["label"] = "segment"
    ann.write_text(json.dumps(doc))
    v2 = make_release(ws, cfg, log=lambda _: None).path
    assert v2.name == "v0002"
    assert (v1 / "SHA256SUMS").read_bytes() == sums_before
    assert verify_release(v1).ok and verify_release(v2).ok
    rows = {r["page_id"]: r for r in _manifest(v2)}
    for pid, split in old_split.items():
        if pid in rows:
            assert rows[pid]["split"] == split
    card = (v2 / "README.md").read_text()
    assert "Since v0001:" in card
    assert f"- pages added: 6 ({', '.join(sorted(new))})" in card
    assert f"- pages removed: 1 ({pids[0]})" in card
    assert f"- pages relabelled: 1 ({pids[1]})" in card
    assert "  - its human annotation is no longer in the catalog: 1" in card
    assert "changed split (released in another split before splits were recorded): none" in card
    with Catalog(ws.catalog_path) as cat:
        got = [r["version"] for r in cat.execute("SELECT version FROM releases ORDER BY version")]
    assert got == ["v0001", "v0002"]


def test_a_new_cross_site_template_moves_no_released_page_and_the_card_says_so(tmp_path):
    # A page released once never changes split: when a template found later joins a val
    # group to a train group, both keep their splits, and the card names the group.
    ws, pids = _workspace(tmp_path / "ws", n=24)
    cfg = _config()
    v1 = make_release(ws, cfg, log=lambda _: None).path
    rows = _manifest(v1)
    val = next(r for r in rows if r["split"] == "val")
    train = next(r for r in rows if r["split"] == "train")
    with Catalog(ws.catalog_path) as cat:
        for r in (val, train):
            cat.execute("INSERT INTO template_groups(page_id, template_id) VALUES(?, 't')",
                        (r["page_id"],))
    v2 = make_release(ws, cfg, log=lambda _: None).path
    after = {r["page_id"]: r for r in _manifest(v2)}
    assert {pid: r["split"] for pid, r in after.items()} == {r["page_id"]: r["split"] for r in rows}
    joined = after[val["page_id"]]["group"]
    assert joined == after[train["page_id"]]["group"]
    card = (v2 / "README.md").read_text()
    assert "changed split (released in another split before splits were recorded): none" in card
    assert "**Warning:** 1 group of this key holds pages released in different splits" in card
    assert f"`{joined}`" in card
    assert "24 pages kept the split of an earlier release." in card


def test_bad_pages_are_reported_and_left_out(tmp_path):
    ws, pids = _workspace(tmp_path / "ws", n=8)
    # 1: annotation made for another screenshot size; 2: screenshot gone; 3: mask gone;
    # 4: corrupt JSON.
    doc = json.loads(ws.annotation_json(pids[1]).read_text())
    doc["height"] += 100
    ws.annotation_json(pids[1]).write_text(json.dumps(doc))
    ws.screenshot(pids[2]).unlink()
    (ws.page_dir(pids[3]) / "annotation.text.png").unlink()
    ws.annotation_json(pids[4]).write_text("{not json")
    lines: list[str] = []
    result = make_release(ws, _config(), log=lines.append)
    assert result.pages == 4
    exported = {r["page_id"] for r in _manifest(result.path)}
    assert exported.isdisjoint(pids[1:5])
    joined = "\n".join(lines)
    assert "screenshot.png is" in joined and "annotate it again" in joined
    assert all(pid in joined for pid in pids[1:5])
    card = (result.path / "README.md").read_text()
    assert "pages with bad input: 4" in card and pids[3] in card
    assert verify_release(result.path).ok


def test_an_empty_selection_ends_with_a_message_and_no_release(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=3, human=False, preannotation=True)
    out = _run("--workspace", str(ws.root))
    assert out.returncode == 2
    assert out.stderr.startswith("error: nothing to export")
    assert "--include-preannotations" in out.stderr
    assert not (ws.releases_dir).exists() or not any(ws.releases_dir.iterdir())


def test_preannotated_pages_only_when_asked_and_marked(tmp_path):
    ws, pids = _workspace(tmp_path / "ws", n=4)
    with Catalog(ws.catalog_path) as cat:
        pre = add_page(ws, cat, "https://www.unreviewed.net/a", seed=9, width=300, height=500,
                       human=False, preannotation=True)
    out = _run("--workspace", str(ws.root), "--tile", "0")
    assert out.returncode == 0, out.stderr
    assert pre not in {r["page_id"] for r in _manifest(ws.releases_dir / "v0001")}
    out = _run("--workspace", str(ws.root), "--include-preannotations")
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and "v0002" in out.stdout
    rows = {r["page_id"]: r for r in _manifest(ws.releases_dir / "v0002")}
    assert rows[pre]["source"] == "preannotation" and rows[pre]["reviewed"] is False
    assert {rows[p]["source"] for p in pids} == {"human"}
    assert "1 pre-annotated" in (ws.releases_dir / "v0002" / "README.md").read_text()


def test_duplicates_dropped_by_dedupe_never_go_in(tmp_path):
    # Twelve sites: enough groups for the site key (fewer fall back to finer keys).
    ws, pids = _workspace(tmp_path / "ws", n=24)
    with Catalog(ws.catalog_path) as cat:
        dup = add_page(ws, cat, "https://www.mirror.net/copy", seed=1, width=300, height=500,
                       dup_group="g", canonical=False)
        cat.execute("INSERT OR REPLACE INTO dup_groups(page_id, group_id, canonical)"
                    " VALUES(?, 'g', 1)", (pids[1],))
    result = make_release(ws, _config(), log=lambda _: None)
    rows = {r["page_id"]: r for r in _manifest(result.path)}
    assert dup not in rows and pids[1] in rows
    # The dropped mirror still joins its site's group to the canonical page's.
    assert rows[pids[1]]["group"] == min("mirror.net", rows[pids[1]]["site"])
    assert "duplicates dropped by dedupe: 1" in (result.path / "README.md").read_text()


def test_resize_and_tiles_are_applied_and_recorded(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=4)
    rel = make_release(ws, _config(resize_width=150, tile=200, tile_files=True),
                       log=lambda _: None).path
    for row in _manifest(rel):
        assert row["width"] == 150 and row["original_width"] == 300
        assert row["height"] == round(row["original_height"] / 2)
        assert Image.open(rel / row["image"]).size == (150, row["height"])
    # Pages narrower than a tile are padded: mask 255 (ignore) beyond the page.
    first = json.loads((rel / "train" / "tiles" / "metadata.jsonl").read_text().splitlines()[0])
    assert first["window"] == [0, 0, 150, 200] and first["size"] == 200
    assert dict(first["class_pixels"])[255] == 50 * 200
    tile_mask = np.asarray(Image.open(rel / first["tile_mask"]))
    assert tile_mask.shape == (200, 200) and (tile_mask[:, 150:] == 255).all()
    assert (tile_mask[:, :150] != 255).all()
    card = (rel / "README.md").read_text()
    assert "resized to width 150 px" in card and "200x200 px" in card
    assert "tile files written too" in card
    assert verify_release(rel).ok


def test_a_test_split_when_the_config_asks(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=24)
    rel = make_release(ws, _config(val_ratio=0.25, test_ratio=0.25), log=lambda _: None).path
    assert {r["split"] for r in _manifest(rel)} == {"train", "val", "test"}
    assert (rel / "test" / "annotations.json").is_file()
    assert verify_release(rel).ok


def test_named_val_sites_make_the_val_split_and_the_card_says_so(tmp_path):
    ws, _ = _workspace(tmp_path / "ws", n=24)
    rel = make_release(ws, _config(val_sites=["site3.org", "site7"], tile=0),
                       log=lambda _: None).path
    by_split: dict[str, set[str]] = {}
    for row in _manifest(rel):
        by_split.setdefault(row["split"], set()).add(row["site"])
    assert by_split == {"val": {"site3.org", "site7.org"},
                        "train": {f"site{i}.org" for i in range(12)} - {"site3.org", "site7.org"}}
    card = (rel / "README.md").read_text()
    assert "[export] val_sites: site3.org, site7" in card and "named sites" in card
    assert verify_release(rel).ok


def test_make_verify_default_is_the_latest_release(tmp_path):
    ws, pids = _workspace(tmp_path / "ws", n=4)
    make_release(ws, _config(tile=0), log=lambda _: None)
    v2 = make_release(ws, _config(tile=0), log=lambda _: None).path
    out = _run("verify", "--workspace", str(ws.root))
    assert out.returncode == 0 and out.stdout.startswith("OK v0002"), out.stdout + out.stderr
    # A page's pull time changing is no relabelling; its regions changing is.
    card = (v2 / "README.md").read_text()
    assert "- pages relabelled: none" in card and "- pages added: none" in card


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_verify_catches_any_flipped_byte_in_any_file(release_copy, data):
    files = sorted(p for p in release_copy.rglob("*") if p.is_file())
    path = data.draw(st.sampled_from(files))
    original = path.read_bytes()
    at = data.draw(st.integers(0, len(original) - 1))
    bit = data.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]))
    flipped = bytearray(original)
    flipped[at] ^= bit
    path.write_bytes(bytes(flipped))
    try:
        rep = verify_release(release_copy)
        assert not rep.ok
        assert rep.verdict().startswith("FAILED ")
    finally:
        path.write_bytes(original)


@pytest.fixture(scope="module")
def release_copy(release, tmp_path_factory) -> Path:
    """A writable copy of the module's release, for tests that damage it."""
    dest = tmp_path_factory.mktemp("copy") / release.name
    shutil.copytree(release, dest)
    for p in dest.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
    return dest


def test_a_failed_export_leaves_no_release_and_the_next_one_starts_clean(tmp_path, monkeypatch):
    import export.release as release_mod

    ws, _ = _workspace(tmp_path / "ws", n=4)

    def broken_card(_data):
        raise RuntimeError("disk full")

    monkeypatch.setattr(release_mod, "render_card", broken_card)
    with pytest.raises(RuntimeError):
        make_release(ws, _config(), log=lambda _: None)
    assert [p.name for p in ws.releases_dir.iterdir() if p.name != ".lock"] == []
    # A temporary directory left by a killed export is cleared by the next one.
    (ws.releases_dir / ".tmp-v0001-99999").mkdir()
    monkeypatch.undo()
    rel = make_release(ws, _config(), log=lambda _: None).path
    assert rel.name == "v0001" and verify_release(rel).ok
    assert [p.name for p in ws.releases_dir.iterdir() if p.name != ".lock"] == ["v0001"]


def test_a_damaged_screenshot_is_left_out_not_copied(tmp_path):
    ws, pids = _workspace(tmp_path / "ws", n=4)
    shot = ws.screenshot(pids[0])
    shot.write_bytes(shot.read_bytes()[: shot.stat().st_size // 2])  # header still readable
    lines: list[str] = []
    result = make_release(ws, _config(tile=0), log=lines.append)
    assert pids[0] not in {r["page_id"] for r in _manifest(result.path)}
    assert any(pids[0] in line and "not a readable image" in line for line in lines)
    assert result.pages == 3


@pytest.mark.parametrize("damage", ["not utf-8", "vertical tab for a newline"])
def test_verify_catches_a_damaged_sha256sums(release_copy, damage):
    sums = release_copy / "SHA256SUMS"
    original = sums.read_bytes()
    damaged = bytearray(original)
    if damage == "not utf-8":
        damaged[0] ^= 128
    else:  # a line break that only str.splitlines() would still see
        damaged[original.index(b"\n")] = 0x0B
    sums.write_bytes(bytes(damaged))
    try:
        rep = verify_release(release_copy)
        assert not rep.ok and rep.verdict().startswith("FAILED ")
    finally:
        sums.write_bytes(original)


def test_preview_made_during_export_equals_one_made_from_the_files(release):
    from catalog.config import LabelsConfig
    from export.masks import ClassSet
    from export.preview import contact_sheet, pick

    classes = ClassSet.from_labels(LabelsConfig())
    rows = _manifest(release)
    chosen = pick(rows, ["train", "val"], Config().export.preview_pages)
    assert len(chosen) == Config().export.preview_pages
    colours = [classes.color(n) for n in classes.names]
    from_files = contact_sheet(release, chosen, classes.names, colours)
    written = Image.open(release / "preview.png").convert("RGB")
    assert np.array_equal(np.asarray(written), np.asarray(from_files))
