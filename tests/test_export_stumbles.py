"""What a new user meets on the default dataset: one site, lost release folders, hints.

The one-site workspace copies the shape of the default crawl (the sqlite documentation
served on 127.0.0.1, 200 pages): 163 pages kept, most at the top level, 39 release-log
and 5 API pages below; 143 of them on one template; 37 near-copies dropped by dedupe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from catalog import Catalog, Config, Workspace
from catalog.cli import make_hint
from export import snippets
from export.groups import PageLinks
from export.preview import caption, thumbnail
from export.release import make_release
from export.splitplan import plan_splits
from export.synthetic import add_page
from export.verify import verify_release

ROOT = Path(__file__).resolve().parent.parent
HOST = "http://127.0.0.1:41234"
PLACEHOLDER = 'release = "datasets/sqlite-docs/releases/v0001"'


def _quiet(_line: str) -> None:
    pass


def _config(**export) -> Config:
    cfg = Config()
    cfg.dataset.name = "one-site"
    for k, v in export.items():
        setattr(cfg.export, k, v)
    return cfg


def _one_site(root: Path, human: int = 40, preannotated: bool = True) -> tuple[Workspace, list[str]]:
    """The default crawl's shape; the first `human` kept pages carry a human annotation."""
    ws = Workspace(root)
    ws.ensure()
    paths = ([f"/page{i}.html" for i in range(119)] + [f"/releaselog/3_{i}.html" for i in range(39)]
             + [f"/c3ref/f{i}.html" for i in range(5)])
    kept = []
    with Catalog(ws.catalog_path) as cat:
        for i, path in enumerate(paths):
            template = "main" if i < 143 else f"own{i}"
            kept.append(add_page(ws, cat, HOST + path, seed=i, width=200, height=240,
                                 human=i < human, preannotation=preannotated,
                                 dup_group=f"d{i}", template=template))
        for i in range(37):  # near-copies of kept pages, dropped by dedupe
            add_page(ws, cat, f"{HOST}/copy{i}.html", seed=i, width=200, height=240,
                     human=False, preannotation=preannotated, dup_group=f"d{i}",
                     canonical=False, template="main")
    return ws, kept


def _manifest(release: Path) -> list[dict]:
    return pq.read_table(release / "manifest.parquet").to_pylist()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def one_site(tmp_path_factory) -> tuple[Workspace, list[str], Path]:
    ws, kept = _one_site(tmp_path_factory.mktemp("one-site"))
    rel = make_release(ws, _config(include_preannotations=True), log=_quiet).path
    return ws, kept, rel


# -- a dataset of one site --------------------------------------------------------------


def test_a_one_site_crawl_gets_a_train_and_a_val_split_near_the_asked_ratio(one_site):
    _, kept, rel = one_site
    rows = _manifest(rel)
    assert len(rows) == len(kept) == 163
    counts = Counter(r["split"] for r in rows)
    assert counts["train"] > 0 and counts["val"] > 0
    assert 0.1 <= counts["val"] / len(rows) <= 0.4  # asked: 0.2
    assert {r["site"] for r in rows} == {"127.0.0.1:41234"}
    card = (rel / "README.md").read_text()
    # The card says which key split the pages and why the site key was not used.
    assert "Group key: site" not in card
    key = re.search(r"Group key: (\w+) \(", card).group(1)
    assert key in ("section", "duplicate")
    assert "site, 1 group: val 0.0%" in card or "site, 1 group: val 100.0%" in card
    assert "Warning:** split" not in card
    assert verify_release(rel).ok


def test_five_human_pages_of_one_site_still_give_train_and_val(tmp_path):
    ws, _ = _one_site(tmp_path / "ws", human=5, preannotated=False)
    result = make_release(ws, _config(), log=_quiet)
    assert result.pages == 5
    assert result.per_split["train"] > 0 and result.per_split["val"] > 0


def _run_snippet(code: str, cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _need(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is required in CI (make setup installs the dev extras)")
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")


@pytest.mark.parametrize("name", ["PYTORCH", "HUGGINGFACE"])
def test_readme_loading_snippets_run_on_a_one_site_release(one_site, tmp_path, name):
    _need("torch" if name == "PYTORCH" else "datasets")
    _, _, rel = one_site
    code = getattr(snippets, name)
    assert PLACEHOLDER in code
    out = _run_snippet(code.replace(PLACEHOLDER, f"release = {str(rel)!r}"), ROOT, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_cards_own_loading_code_runs_in_a_one_site_release(one_site, tmp_path):
    _need("torch")
    _need("datasets")
    _, _, rel = one_site
    card = (rel / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert len(blocks) >= 3
    for code in blocks:
        out = _run_snippet(code, rel, tmp_path)
        assert out.returncode == 0, code + out.stderr[-3000:]


# -- a page released once never changes split -------------------------------------------


def _add_sites(ws: Workspace, n: int) -> list[str]:
    with Catalog(ws.catalog_path) as cat:
        return [add_page(ws, cat, f"https://www.more{i}.org/p{j}", seed=500 + i, width=200,
                         height=240) for i in range(n) for j in range(2)]


def test_released_pages_keep_their_split_when_more_sites_change_the_key(tmp_path):
    ws, _ = _one_site(tmp_path / "ws", human=40, preannotated=False)
    v1 = make_release(ws, _config(), log=_quiet).path
    first = {r["page_id"]: r["split"] for r in _manifest(v1)}
    assert set(first.values()) == {"train", "val"}
    new = _add_sites(ws, 30)
    v2 = make_release(ws, _config(), log=_quiet).path
    rows = {r["page_id"]: r for r in _manifest(v2)}
    assert {pid: rows[pid]["split"] for pid in first} == first
    # Sixty pages of thirty sites: the site key decides the new pages again.
    assert "Group key: site (" in (v2 / "README.md").read_text()
    for pid in new:
        assert rows[pid]["group"] == rows[pid]["site"]
    with Catalog(ws.catalog_path) as cat:
        recorded = {r[0]: (r[1], r[2]) for r in cat.execute(
            "SELECT page_id, split, first_version FROM release_splits")}
    assert {pid: recorded[pid] for pid in first} == {p: (s, "v0001") for p, s in first.items()}
    assert {recorded[pid] for pid in new} <= {("train", "v0002"), ("val", "v0002")}


def test_a_catalog_from_before_recorded_splits_reads_them_from_the_releases(tmp_path):
    ws, _ = _one_site(tmp_path / "ws", human=40, preannotated=False)
    v1 = make_release(ws, _config(), log=_quiet).path
    first = {r["page_id"]: r["split"] for r in _manifest(v1)}
    assert set(first.values()) == {"train", "val"}
    with Catalog(ws.catalog_path) as cat:  # as an older version left it
        cat.execute("DROP TABLE release_splits")
        cat.set_meta("schema", "1")
    _add_sites(ws, 30)
    v2 = make_release(ws, _config(), log=_quiet).path
    rows = {r["page_id"]: r["split"] for r in _manifest(v2)}
    assert {pid: rows[pid] for pid in first} == first
    with Catalog(ws.catalog_path) as cat:
        assert cat.meta("schema") == "2"
        n = cat.execute("SELECT COUNT(*) FROM release_splits WHERE first_version='v0001'")
        assert n.fetchone()[0] == len(first)


def test_only_pages_the_release_holds_get_a_recorded_split(tmp_path, monkeypatch):
    import export.split_files as pages_mod  # where each page's files are written

    ws = _twelve_sites(tmp_path / "ws")
    real = pages_mod.export_page
    failed: list[str] = []

    def failing_once(page, *args, **kwargs):  # noqa: ANN001, ANN202
        if not failed:
            failed.append(page.page_id)
            raise OSError("disk trouble")
        return real(page, *args, **kwargs)

    monkeypatch.setattr(pages_mod, "export_page", failing_once)
    rel = make_release(ws, _config(), log=_quiet).path
    with Catalog(ws.catalog_path) as cat:
        recorded = {r[0]: r[1] for r in cat.execute("SELECT page_id, split FROM release_splits")}
    assert recorded == {r["page_id"]: r["split"] for r in _manifest(rel)}
    assert len(recorded) == 23 and failed[0] not in recorded


_sites = st.sampled_from(["a.com", "b.org", "c.net", ""])
_paths = st.sampled_from(["/", "/x/1", "/x/2", "/y", "/z/q"])


@st.composite
def _history(draw):
    n = draw(st.integers(2, 40))
    pages = [PageLinks(f"p{i}", site, draw(st.sampled_from(["", "d1", "d2"])),
                       draw(st.sampled_from(["", "t1", "t2"])), f"https://{site or 'h'}{path}")
             for i, (site, path) in enumerate(draw(st.tuples(_sites, _paths)) for _ in range(n))]
    recorded = {p.page_id: draw(st.sampled_from(["train", "val"]))
                for p in pages if draw(st.booleans())}
    return pages, recorded


@given(_history(), st.floats(0.05, 0.6))
@settings(max_examples=150, deadline=None)
def test_recorded_pages_keep_their_split_and_new_near_copies_stay_together(hist, val):
    pages, recorded = hist
    plan = plan_splits(pages, [p.page_id for p in pages], recorded, "salt", val)
    for pid, split in recorded.items():
        assert plan.assignment[pid].split == split
    # New pages of one duplicate group share a split whatever key was chosen.
    by_dup: dict[str, set] = {}
    for p in pages:
        if p.dup_group and p.page_id not in recorded:
            by_dup.setdefault(p.dup_group, set()).add(plan.assignment[p.page_id].split)
    spanning = set(plan.chosen.spanning)
    for p in pages:
        if p.dup_group and p.dup_group in by_dup and plan.assignment[p.page_id].group not in spanning:
            assert len(by_dup[p.dup_group]) == 1


@given(_history(), st.floats(0.05, 0.6))
@settings(max_examples=150, deadline=None)
def test_a_first_release_of_two_groups_or_more_has_train_and_val(hist, val):
    pages, _ = hist
    plan = plan_splits(pages, [p.page_id for p in pages], {}, "salt", val)
    groups = {a.group for a in plan.assignment.values()}
    splits = {a.split for a in plan.assignment.values()}
    if len(groups) >= 2:
        assert splits == {"train", "val"}
    # No group spans two splits in a first release.
    split_of = {}
    for a in plan.assignment.values():
        assert split_of.setdefault(a.group, a.split) == a.split


# -- release folders and catalog rows that disagree -------------------------------------


def _twelve_sites(root: Path, n: int = 24) -> Workspace:
    ws = Workspace(root)
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(n):
            add_page(ws, cat, f"https://www.site{i % 12}.org/p{i}", seed=i, width=200, height=240)
    return ws


def _catalog_versions(ws: Workspace) -> list[str]:
    with Catalog(ws.catalog_path) as cat:
        return [r[0] for r in cat.execute("SELECT version FROM releases ORDER BY version")]


def test_export_after_the_release_folders_were_lost_writes_the_next_version(tmp_path):
    ws = _twelve_sites(tmp_path / "ws")
    make_release(ws, _config(), log=_quiet)
    make_release(ws, _config(), log=_quiet)
    shutil.rmtree(ws.releases_dir)  # a copy of the workspace without releases/
    out = _cli("--workspace", str(ws.root))
    assert out.returncode == 0, out.stderr
    said = out.stdout + out.stderr
    for v in ("v0001", "v0002"):
        assert len([ln for ln in said.splitlines() if f"release {v} is recorded" in ln]) == 1
    assert "v0003" in out.stdout
    assert sorted(p.name for p in ws.releases_dir.iterdir() if p.name.startswith("v")) == ["v0003"]
    assert _catalog_versions(ws) == ["v0001", "v0002", "v0003"]
    card = (ws.releases_dir / "v0003" / "README.md").read_text()
    assert "The previous release, v0002, is not in releases/" in card
    again = _cli("--workspace", str(ws.root))
    assert again.returncode == 0, again.stderr
    assert _catalog_versions(ws) == ["v0001", "v0002", "v0003", "v0004"]
    assert verify_release(ws.releases_dir / "v0004").ok


def test_an_unrecorded_release_folder_is_named_recorded_and_skipped(tmp_path):
    ws = _twelve_sites(tmp_path / "ws")
    v1 = make_release(ws, _config(), log=_quiet).path
    with Catalog(ws.catalog_path) as cat:  # as after a kill between rename and commit
        cat.execute("DELETE FROM releases")
        cat.execute("DELETE FROM release_splits")
    (ws.releases_dir / "v0007").mkdir()  # a folder that is no release at all
    lines: list[str] = []
    v8 = make_release(ws, _config(), log=lines.append).path
    assert v8.name == "v0008"
    assert [ln for ln in lines if str(v1) in ln] == [
        f"release folder {v1} was not recorded in the catalog: recorded now (24 pages)"]
    assert len([ln for ln in lines if "v0007" in ln and "cannot be read" in ln]) == 1
    assert _catalog_versions(ws) == ["v0001", "v0008"]
    assert "Since v0001:" in (v8 / "README.md").read_text()


# -- hints -------------------------------------------------------------------------------


def test_make_hint_names_the_workspace_only_when_it_is_not_the_default(tmp_path):
    cfg = _config()
    assert make_hint("pull", Workspace(cfg.workspace_dir()), cfg) == "`make pull`"
    other = Workspace(tmp_path / "my data")
    assert make_hint("pull", other, cfg) == f"`make pull WORKSPACE='{tmp_path}/my data'`"


def test_export_of_a_workspace_never_preannotated_says_to_preannotate_first(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(3):
            add_page(ws, cat, f"https://www.a.org/{i}", seed=i, human=False)
    for flags in ([], ["--include-preannotations"]):
        out = _cli("--workspace", str(ws.root), *flags)
        assert out.returncode == 2
        assert out.stderr.startswith("error: nothing to export")
        assert f"`make pull WORKSPACE={ws.root}`" in out.stderr
        assert f"`make preannotate WORKSPACE={ws.root}` before --include-preannotations" in out.stderr


def test_export_of_pre_annotated_pages_offers_them_with_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(3):
            add_page(ws, cat, f"https://www.a.org/{i}", seed=i, human=False, preannotation=True)
    out = _cli("--workspace", str(ws.root))
    assert out.returncode == 2
    assert f"`make pull WORKSPACE={ws.root}` first, or pass --include-preannotations to " \
           "export the 3 pre-annotated pages" in out.stderr
    verify = _cli("verify", "--workspace", str(ws.root))
    assert verify.returncode == 2 and f"`make export WORKSPACE={ws.root}`" in verify.stderr


# -- why pages left the release ---------------------------------------------------------


def test_the_card_says_why_pages_were_removed_with_counts(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        pids = [add_page(ws, cat, f"https://www.site{i % 12}.org/p{i}", seed=i, width=200,
                         height=240, human=i < 10, preannotation=True) for i in range(24)]
    make_release(ws, _config(include_preannotations=True), log=_quiet)
    with Catalog(ws.catalog_path) as cat:
        cat.execute("INSERT OR REPLACE INTO dup_groups(page_id, group_id, canonical)"
                    " VALUES(?, 'g', 0)", (pids[0],))
        cat.execute("DELETE FROM annotations WHERE page_id=?", (pids[1],))
    ws.annotation_json(pids[2]).write_text("{not json")
    v2 = make_release(ws, _config(), log=_quiet).path
    card = (v2 / "README.md").read_text()
    assert "- pages removed: 17 (" in card
    assert "  - pre-annotated, not selected this time (export without " \
           "--include-preannotations): 14" in card
    assert "  - dropped as a duplicate by dedupe since: 1" in card
    assert "  - its human annotation is no longer in the catalog: 1" in card
    assert "  - left out for bad input (see Left out): 1" in card


# -- the preview -------------------------------------------------------------------------


def _inks(strip: np.ndarray) -> tuple[bool, bool]:
    """Whether a caption strip shows green (human) and orange (pre-annotated) ink."""
    r, g, b = (strip[..., i].astype(int) for i in range(3))
    return bool(((g > r + 40) & (g > b + 20)).any()), bool(((r > g + 60) & (g > b)).any())


def test_preview_captions_keep_split_page_and_source_apart():
    pid = "01b15c3d9e8f7a6b"
    assert caption("val", pid, "site.org", "human") == "val · 01b15c3d · human · site.org"
    assert caption("train", pid, "site.org", "preannotation") == \
        "train · 01b15c3d · pre-annotated · site.org"
    image = np.full((400, 240, 3), 250, np.uint8)
    mask = np.zeros((400, 240), np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    human, pre = (np.asarray(thumbnail(image, mask, palette, caption("val", pid, "s", src)))[:14]
                  for src in ("human", "preannotation"))
    assert _inks(human) == (True, False) and _inks(pre) == (False, True)
    # Between the split and the page id: a gap of blank columns wider than the font's
    # space (3 px), with at most a faint dot in it.
    ink = (human.min(axis=2) < 160).any(axis=0)
    runs, x = [], 0
    while x < len(ink):
        if not ink[x]:
            start = x
            while x < len(ink) and not ink[x]:
                x += 1
            runs.append((start, x - start))
        x += 1
    assert max(n for start, n in runs if 2 < start < 40) >= 8, runs


def test_the_release_preview_marks_human_and_pre_annotated_pages(one_site):
    _, _, rel = one_site
    assert {r["source"] for r in _manifest(rel)} == {"human", "preannotation"}
    sheet = np.asarray(Image.open(rel / "preview.png").convert("RGB"))
    assert _inks(sheet[18:]) == (True, True)  # below the legend
