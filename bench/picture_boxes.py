"""Picture-box settings (model/pictures.py) compared on one model's element logits: image,
text and interactive IoU at the working width on a release split, for the model's own
setting (its picture chooser, model/picture_chooser.py, where its card has one), the join
rule's defaults and variations of each, next to no boxes at all, in one run. The last row,
"ceiling", reads the labels: every block of the page kept exactly where most of its pixels
are image, the most any choice of blocks can reach; the line under the table counts the
image pixels that lie in no block at all, which no choice of blocks can reach.

    .venv/bin/python bench/picture_boxes.py MODEL RELEASE [--split val] [--cache DIR]

The network runs once per page; its logits are kept in --cache (one .npz a page, reused by
the next run with the same model and release), so that each setting costs only the boxes.
Choose settings on sites that are neither the model's training nor its val sites
(bench/picture-sites.toml builds such a set) and then read them on val, not the other way.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.progress import track  # noqa: E402

from model.data import read_scaled  # noqa: E402
from model.infer import PINNED, pin_pictures, scaled_logits  # noqa: E402
from model.metrics import Confusion  # noqa: E402
from model.picture_chooser import PICTURE, low_areas, page_blocks, picture_share  # noqa: E402
from model.pictures import PictureBoxes, reads_network  # noqa: E402
from model.release import IGNORE, open_release  # noqa: E402
from model.store import load_model  # noqa: E402


def settings(own: PictureBoxes | None) -> dict[str, PictureBoxes | None]:
    base = PictureBoxes()
    found: dict[str, PictureBoxes | None] = {"no boxes": None}
    if own is not None and own != base:
        found["the model's"] = own
    found["defaults"] = base
    for name, changed in (("min_height 24", {"min_height": 24}), ("inkshare 0.10", {"inkshare": 0.10}),
                          ("inkshare 0", {"inkshare": 0.0}), ("gap 4", {"gap": 4}),
                          ("gap 8", {"gap": 8}), ("gap 16", {"gap": 16})):
        found[name] = replace(base, **changed)
    return found


def ceiling(el: np.ndarray, rgb: np.ndarray, truth: np.ndarray, image: int, cfg: PictureBoxes
            ) -> tuple[np.ndarray, np.ndarray]:
    """The image mask of the best choice of the page's blocks (each kept where most of its
    labelled pixels are image), with the low areas as drawn; and where any block lies."""
    out = low_areas(el.argmax(axis=0) == image, cfg.min_height)
    anywhere = np.zeros_like(out)
    blocks, _ = page_blocks(rgb, cfg.ink, cfg.close, cfg.least)
    for b, share in zip(blocks, picture_share(blocks, truth, image, IGNORE), strict=True):
        anywhere[b.y0:b.y1, b.x0:b.x1] = True
        if share >= PICTURE:
            out[b.y0:b.y1, b.x0:b.x1] = True
    return out, anywhere


def cached_logits(model, release, split: str, cache: Path) -> list[Path]:
    """One .npz a page: its element logits (float16, offsets added), pixels and labels at
    the working width, and the network's stride-4 features where the model's picture
    chooser reads them."""
    offsets = np.asarray(model.element_offsets or [0.0] * len(model.element_names),
                         np.float32)[:, None, None]
    own = model.picture_boxes
    features = own is not None and reads_network(own)
    key = hashlib.sha256(f"{model.card.get('weights_sha256')} {release.sums_digest()} "
                         f"{offsets.ravel().tolist()} {split}"
                         f"{' features' if features else ''}".encode()).hexdigest()[:16]
    folder = cache / key
    folder.mkdir(parents=True, exist_ok=True)
    pages = release.pages(split)
    files = []
    for i, page in enumerate(track(pages, description="logits", transient=True)):
        path = folder / f"{i:05d}.npz"
        if not path.is_file():
            sp = read_scaled(page, release.classes, model.working_width)
            el, _, *seen = scaled_logits(model.net, model.norm, sp.rgb, model.windowing,
                                         features=features)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, el=(el + offsets).astype(np.float16), rgb=sp.rgb, lab=sp.elements,
                     site=page.site, **({"seen": seen[0].astype(np.float16)} if seen else {}))
            tmp.replace(path)
        files.append(path)
    return files


def iou(conf: Confusion, k: int) -> float:
    return conf.iou()[k] or 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("release", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "picture-boxes")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, release = load_model(args.model), open_release(args.release)
    names = model.element_names
    img, n = names.index("image"), len(names)
    files = cached_logits(model, release, args.split, args.cache)
    offsets = model.element_offsets
    variants = settings(model.picture_boxes)
    blocks_by = model.picture_boxes or PictureBoxes()  # the ceiling's ink, close and least
    conf = {k: {} for k in [*variants, "ceiling"]}
    blockless: dict[str, int] = {}
    for f in files:
        d = np.load(f)
        el, rgb, lab, site = d["el"].astype(np.float32), d["rgb"], d["lab"], str(d["site"])
        seen = d["seen"].astype(np.float32) if "seen" in d else None
        for k, cfg in variants.items():
            e = el
            if cfg is not None:
                e = el.copy()
                pin_pictures(e, rgb, img, cfg, offsets, seen)
            conf[k].setdefault(site, Confusion(n)).add(lab, e.argmax(axis=0))
        best, anywhere = ceiling(el, rgb, lab, img, blocks_by)
        e = el.copy()
        e[img] = np.where(best, PINNED, -PINNED)
        conf["ceiling"].setdefault(site, Confusion(n)).add(lab, e.argmax(axis=0))
        blockless[site] = blockless.get(site, 0) + int(((lab == img) & ~anywhere).sum())
    sites = sorted({s for v in conf.values() for s in v})
    print(f"{model.version} on {release.version} {args.split}: {len(files)} pages, "
          f"{len(sites)} sites; IoU at the working width ({model.working_width} px)")
    print(f"{'setting':<14}" + "".join(f"{x:>12}" for x in names[1:])
          + f"{'image px':>11}{'false':>9}{'missed':>9}  image by site")
    for k in conf:
        tot = Confusion(n)
        tot.m = sum(c.m for c in conf[k].values())
        m = tot.m
        tp = int(m[img, img])
        print(f"{k:<14}" + "".join(f"{iou(tot, j):12.3f}" for j in range(1, n))
              + f"{m[img].sum() / 1e6:10.2f}M{(m[:, img].sum() - tp) / 1e6:8.2f}M"
              + f"{(m[img].sum() - tp) / 1e6:8.2f}M  "
              + " ".join(f"{s.split('.')[0]} {iou(conf[k][s], img):.3f}" for s in sites
                         if conf[k][s].m[img].sum()))
    truth = sum(int(c.m[img].sum()) for c in conf["ceiling"].values())
    print(f"image px in no block: {sum(blockless.values()) / 1e6:.2f}M of {truth / 1e6:.2f}M  "
          + " ".join(f"{s.split('.')[0]} {v / 1e6:.2f}M" for s, v in
                     sorted(blockless.items(), key=lambda kv: -kv[1]) if v >= 10_000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
