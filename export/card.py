"""The dataset card (README.md of a release): what is in it, how it was made, what changed.

Everything in it comes from the inputs and the config (no dates, no host names), so the
same inputs give the same card.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from . import snippets
from .manifest import Changes
from .splitplan import SplitPlan

SHOWN = 40  # rows of long lists shown in the card; the manifest has them all


@dataclass
class CardData:
    dataset: str
    version: str
    splits: list[str]
    manifest: list[dict]
    class_names: list[str]
    instances: dict[str, Counter]  # split -> class id -> instances
    pixels: dict[str, Counter]  # split -> class id -> pixels
    tiles: dict[str, int]  # split -> tiles
    config: dict  # the [export] and [labels] sections that made the release
    changes: Changes
    problems: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    regions_dropped: int = 0
    versions: dict[str, str] = field(default_factory=dict)  # libraries that wrote the files
    split_plan: SplitPlan | None = None  # how the splits were decided


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _pct(n: float, total: float) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _listing(title: str, items: list[str]) -> list[str]:
    if not items:
        return [f"- {title}: none"]
    shown = ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
    return [f"- {title}: {len(items)} ({shown})"]


def _tiles_line(ex: dict) -> str:
    tile = ex["tile"]
    if not tile:
        return "none"
    what = (
        "windows over the page images, each with its page's image and mask files, "
        "`window: [x, y, w, h]` and its class histogram in `<split>/tiles/metadata.jsonl`; "
    )
    files = ("tile files written too: `<split>/tiles/images`, `<split>/tiles/masks` "
             "(`tile_image`, `tile_mask` in the metadata)" if ex.get("tile_files")
             else "no tile pixel files: a loader crops the windows")
    return (f"{tile}x{tile} px {what}stepping by their size, the last row and column "
            "pulled back to the page edge; where a page is smaller than a tile, padded below "
            f"and right of its window (image black, mask 255); {files}")


def _tile_files(ex: dict) -> str:
    if not ex["tile"]:
        return ""
    return ("`<split>/tiles/metadata.jsonl`, `<split>/tiles/images`, `<split>/tiles/masks`, "
            if ex.get("tile_files") else "`<split>/tiles/metadata.jsonl`, ")


def _split_plan(plan: SplitPlan | None) -> list[str]:
    if plan is None:
        return []
    out = [plan.why(), ""]
    c = plan.chosen
    if c.kept:
        out += [f"{c.kept} pages kept the split of an earlier release.", ""]
    for group, split in c.forced:
        out += [f"The hash left {split} empty: group `{group}`, the nearest to it by hash, "
                f"was put in {split}.", ""]
    if c.spanning:
        shown = ", ".join(f"`{g}`" for g in c.spanning[:SHOWN])
        n = len(c.spanning)
        out += [f"**Warning:** {'1 group' if n == 1 else f'{n} groups'} of this key "
                f"{'holds' if n == 1 else 'hold'} pages released in "
                "different splits: an earlier release split them by a finer key, or duplicate "
                "or template links found since joined them; a released page never changes "
                f"split ({shown}).", ""]
    return out


def render_card(d: CardData) -> str:
    rows = d.manifest
    per_split = Counter(r["split"] for r in rows)
    total = len(rows)
    ex = d.config["export"]
    want = {"val": ex["val_ratio"], "test": ex["test_ratio"]}
    want["train"] = 1 - want["val"] - want["test"]
    out = [
        f"# {d.dataset} {d.version}",
        "",
        "Web page segmentation: full-page screenshots with semantic masks (one class id a "
        "pixel) and COCO instance annotations of page regions and elements.",
        "",
        "## Splits",
        "",
        "A page keeps the split of the first release that held it (the catalog records "
        "it). A page new to this release takes the split of its group: the split the "
        "group's released pages share, else a salted hash of the group's key, so no group "
        "spans two splits.",
        "",
    ]
    out += _split_plan(d.split_plan)
    out += _table(
        ["split", "pages", "tiles", "groups", "achieved", "asked"],
        [
            [
                s, per_split[s], d.tiles.get(s, 0),
                len({r["group"] for r in rows if r["split"] == s}),
                _pct(per_split[s], total),
                "named sites" if ex.get("val_sites") else f"{100 * want[s]:.1f}%",
            ]
            for s in d.splits
        ],
    )
    sources = Counter((r["split"], r["source"]) for r in rows)
    out += ["", "Sources: " + ", ".join(
        f"{s}: {sources[(s, 'human')]} human, {sources[(s, 'preannotation')]} pre-annotated"
        for s in d.splits
    ) + ". Pre-annotated pages are the pipeline's proposal that nobody reviewed yet "
        "(manifest column `source`).", ""]
    empty = [s for s in d.splits if not per_split[s]]
    if empty:
        out += [f"**Warning:** split {', '.join(empty)} is empty: " + (
            "no page comes from a named val site ([export] val_sites)" if ex.get("val_sites")
            else "the pages come from too few groups for the asked ratios") + ".", ""]

    out += ["## Classes", ""]
    out += _table(
        ["id", "class", *[f"{s} instances" for s in d.splits], *[f"{s} pixels" for s in d.splits]],
        [
            [i, name]
            + [d.instances[s][i] for s in d.splits]
            + [_pct(d.pixels[s][i], sum(d.pixels[s].values())) for s in d.splits]
            for i, name in enumerate(d.class_names)
        ],
    )
    out += ["", "Precedence of classes in the semantic masks: see `classes.json`.", ""]

    sites = Counter((r["site"], r["split"]) for r in rows)
    by_site = sorted({r["site"] for r in rows}, key=lambda s: (-sum(
        sites[(s, sp)] for sp in d.splits), s))
    out += ["## Sites", "", f"{len(by_site)} sites.", ""]
    out += _table(
        ["site", "split", "pages"],
        [[s, next(sp for sp in d.splits if sites[(s, sp)]), sum(sites[(s, sp)] for sp in d.splits)]
         for s in by_site[:SHOWN]],
    )
    if len(by_site) > SHOWN:
        out += ["", f"... and {len(by_site) - SHOWN} more sites (see manifest.parquet)."]

    ch = d.changes
    out += ["", "## Changes", ""]
    if not ch.previous:
        out += ["First release."]
    elif ch.missing:
        out += [f"The previous release, {ch.previous}, is not in releases/: what changed "
                "since cannot be listed."]
    else:
        out += [f"Since {ch.previous}:"]
        out += _listing("pages added", ch.added)
        out += _listing("pages removed", ch.removed)
        for why, pids in sorted(ch.removed_why.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            out += [f"  - {why}: {len(pids)}"]
        out += _listing("pages relabelled", ch.relabelled)
        out += _listing(
            "pages that changed split (released in another split before splits were recorded)",
            [f"{p} {a}->{b}" for p, a, b in ch.moved],
        )

    out += ["", "## Left out", ""]
    out += [f"- duplicates dropped by dedupe: {d.duplicates}"]
    out += [f"- regions outside their page, ignored: {d.regions_dropped}"]
    out += [f"- pages with bad input: {len(d.problems)}"]
    out += [f"  - `{pid}`: {why}" for pid, why in d.problems[:SHOWN]]
    if len(d.problems) > SHOWN:
        out += [f"  - ... and {len(d.problems) - SHOWN} more"]

    resize = ex["resize_width"]
    out += [
        "", "## How it was made", "",
        f"- images: {'resized to width ' + str(resize) + ' px (bilinear; masks nearest)' if resize else 'the screenshots as captured'}",
        f"- tiles: {_tiles_line(ex)}",
        "- files: `<split>/images`, `<split>/masks`, `<split>/annotations.json` (COCO), "
        f"`<split>/metadata.jsonl`, {_tile_files(ex)}`manifest.parquet`, `classes.json`, "
        "`preview.png`, `SHA256SUMS`",
        "- check it: `python -m export verify <this directory>`",
        "- written by: " + ", ".join(f"{k} {v}" for k, v in sorted(d.versions.items())),
        "",
        "Config:",
        "",
        "```json",
        json.dumps(d.config, indent=1, sort_keys=True),
        "```",
        "",
        "## Loading",
        "",
        "PyTorch:",
        "",
        "```python",
        snippets.PYTORCH.replace("datasets/sqlite-docs/releases/v0001", "."),
        "```",
        "",
        "Hugging Face `datasets`:",
        "",
        "```python",
        snippets.HUGGINGFACE.replace("datasets/sqlite-docs/releases/v0001", "."),
        "```",
        "",
        "COCO:",
        "",
        "```python",
        snippets.COCO.replace("datasets/sqlite-docs/releases/v0001", "."),
        "```",
        "",
    ]
    return "\n".join(out)
