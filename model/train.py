"""The training loop, after torchvision's reference script: crops in, two cross-entropy
losses out, a confusion-matrix validation each epoch, and a checkpoint each epoch holding
model, optimiser, schedule, epoch and RNG state, so `--resume` ends where an uninterrupted
run would (same crops, same order, same weights)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from .augment import draw_frames, recolour_panels
from .budget import Pacer
from .calibrate import calibrate, calibration_pages, with_chooser
from .curves import draw_curves
from .data import (
    ScaledPage,
    class_weights,
    crop_plan,
    make_batch,
    pixel_counts,
    scaled_size,
)
from .infer import Windowing, argmax_labels, scaled_logits
from .losses import soft_jaccard, weighted_ce
from .metrics import Confusion, report
from .network import NetConfig, Normalise, SegNet
from .pagecache import CachedPages, PageCache, cache_dir, read_pages
from .pictures import PictureBoxes
from .release import Release, ReleaseError
from .rundir import note_published, published_by, remove_run_dir
from .store import publish

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    working_width: int = 384  # measured: see README "The model"
    crop: int = 320  # rows of a training crop at the working width
    batch: int = 8
    epochs: int = 30
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05  # share of steps with a rising learning rate
    region_weight: float = 0.5  # the region loss's weight next to the element loss
    jaccard: float = 0.0  # the weight of a soft Jaccard loss on the element head (losses.py)
    panels: float = 0.5  # the chance that a crop gets a recoloured panel (model/augment.py)
    frames: float = 0.0  # the chance that a crop gets a drawn frame (model/augment.py)
    # Training pages on which the element head's decision offsets and the picture chooser
    # are fitted once training ends (model/calibrate.py); 0: none. On web-corpus v0002 a
    # chooser that reads the network's features, fitted on 300 pages, was no better than
    # one without them on the picture-sites set (0.555-0.565 against 0.569); from 500
    # pages on it gained 0.02 to 0.03 there and on val (README "The model")
    calibrate_pages: int = 500
    # Large image areas cut back to the boxes of the pictures in them when the model
    # predicts (model/pictures.py); written to the card's decision, training is unchanged
    picture_boxes: bool = True
    # Those boxes chosen among all the page's blocks by a classifier fitted on the
    # calibration pages (model/picture_chooser.py); False: joined by model/pictures.py's rule
    picture_chooser: bool = True
    val_pages: int = 120  # pages validated after each epoch, taken from every val site in
    # turn (0: all); `python -m model evaluate` measures the whole split
    seed: int = 0
    threads: int = 2
    # "bf16": the forward pass under bfloat16 autocast (weights, optimiser and loss stay
    # float32). A training step of 8 crops took 0.722 s in float32 and 0.437 s in bf16 here
    # (2 threads, channels-last; bench/train_step.py). "auto" picks bf16 where the device has it.
    precision: str = "auto"
    network: NetConfig = field(default_factory=NetConfig)
    windowing: Windowing = field(default_factory=Windowing)

    def to_json(self) -> dict:
        d = asdict(self)
        d["network"] = self.network.to_json()
        return d

    def key(self, release_digest: str) -> str:
        """Names a run: the same release and config resume the same checkpoint."""
        text = json.dumps([release_digest, self.to_json()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class Schedule:
    """Linear warm-up, then cosine decay to zero over `total` steps."""

    def __init__(self, total: int, warmup: float):
        self.total, self.warmup, self.step = max(1, total), warmup, 0

    def lr_factor(self) -> float:
        w = max(1, int(self.total * self.warmup))
        if self.step < w:
            return (self.step + 1) / w
        t = min(1.0, (self.step - w) / max(1, self.total - w))
        return 0.5 * (1 + math.cos(math.pi * t))

    def state_dict(self) -> dict:
        return {"total": self.total, "warmup": self.warmup, "step": self.step}

    def load_state_dict(self, s: dict) -> None:
        self.total, self.warmup, self.step = s["total"], s["warmup"], s["step"]


def epoch_val_subset(refs: Sequence, n: int) -> list[int]:
    """Indices of the val pages validated each epoch: the sites' pages in turn (each site
    in page-id order), so that a large site does not crowd out the others."""
    if not n or n >= len(refs):
        return list(range(len(refs)))
    by_site: dict[str, list[int]] = {}
    for i in sorted(range(len(refs)), key=lambda i: refs[i].page_id):
        by_site.setdefault(refs[i].site, []).append(i)
    queues = [by_site[k] for k in sorted(by_site)]
    out: list[int] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return sorted(out)


PRECISIONS = ("auto", "bf16", "fp32")


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_precision(asked: str, device: torch.device) -> str:
    """"auto" becomes "bf16" or "fp32" for this device; an explicit "bf16" that the device
    lacks is an error rather than a silently slow emulation."""
    if asked not in PRECISIONS:
        raise ValueError(f"unknown precision {asked!r}: use one of {', '.join(PRECISIONS)}")
    if asked == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if asked == "bf16" and not bf16_supported(device):
        raise ValueError(f"this {device.type} has no bfloat16 support: train with "
                         "--precision fp32")
    return asked


def set_determinism(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def validate(net: SegNet, norm: Normalise, pages: Sequence[ScaledPage], win: Windowing
             ) -> tuple[Confusion, Confusion]:
    el = Confusion(net.cfg.elements)
    rg = Confusion(net.cfg.regions)
    for p in pages:
        e, r = scaled_logits(net, norm, p.rgb, win)
        el.add(p.elements, argmax_labels(e))
        rg.add(p.regions, argmax_labels(r))
    return el, rg


@dataclass
class Run:
    """What the loop needs besides the config; `on_epoch` is told each finished epoch."""

    release: Release
    models_dir: Path
    device: torch.device = torch.device("cpu")
    time_budget_s: float | None = None
    resume: bool = False
    log: Callable[[str], None] = print
    progress: Callable[[int, int, float, float], None] | None = None  # step, steps, loss, rate
    stop_after: int | None = None  # for tests: end the process's work after this epoch
    reading: Callable[[int, int], None] | None = None  # pages read, of how many
    init_weights: Path | None = None  # a fine-tune starts from these weights (safetensors)
    card_update: Callable[[dict], dict] | None = None  # what a fine-tune's card says instead
    jobs: int = 1  # worker processes decoding pages
    cache: bool = True  # keep scaled pages in models/.cache (reruns skip decoding)


def train(cfg: TrainConfig, run: Run) -> Path | None:
    """Train and publish the next model version; None when `stop_after` ended it early."""
    rel = run.release
    names = rel.classes
    train_refs, val_refs = rel.pages("train"), rel.pages("val")
    if not val_refs:
        raise ReleaseError(
            f"release {rel.path} has no val pages: export one whose pages come from more "
            "sites (or a larger --val-ratio), so the model is measured on sites it never saw")
    if not train_refs:
        raise ReleaseError(f"release {rel.path} has no train pages: export more pages first")
    net_cfg = replace(cfg.network, elements=len(names.elements) + 1,
                      regions=len(names.regions) + 1)
    cfg.network = net_cfg
    cfg.precision = resolve_precision(cfg.precision, run.device)
    digest = rel.sums_digest()
    run_dir = run.models_dir / f".run-{cfg.key(digest)}"
    ckpt_path = run_dir / CHECKPOINT
    done = published_by(run_dir, run.models_dir)
    if done is not None:
        run.log(f"{done.name} was published by an earlier run of this release and config "
                f"that stopped before it removed {run_dir}: removed it now")
        remove_run_dir(run_dir)
        return done
    if ckpt_path.is_file() and not run.resume:
        raise ValueError(f"an earlier run of this release and config stopped at {ckpt_path}: "
                         "add --resume to continue it, or delete that directory to start over")
    if run.resume and not ckpt_path.is_file():
        raise ValueError(f"nothing to resume: no checkpoint at {ckpt_path} for this release and "
                         "config (run without --resume)")

    began = time.perf_counter()  # the budget counts reading the pages too
    set_determinism(cfg.threads)
    run.log(f"reading {len(train_refs)} train and {len(val_refs)} val pages of {rel.path} "
            f"at {cfg.working_width} px wide ({run.jobs} worker"
            f"{'s' if run.jobs != 1 else ''}, cache "
            f"{cache_dir(run.models_dir) if run.cache else 'off'})")
    total, done = len(train_refs) + len(val_refs), 0

    def read_one() -> None:
        nonlocal done
        done += 1
        if run.reading:
            run.reading(done, total)

    cache = (PageCache.of(cache_dir(run.models_dir), rel, cfg.working_width)
             if run.cache else None)
    train_pages = read_pages(train_refs, names, cfg.working_width, cache=cache,
                             jobs=run.jobs, progress=read_one)
    # With a cache the val pages are read from it at each validation, not held in memory.
    val_all = read_pages(val_refs, names, cfg.working_width, cache=cache, jobs=run.jobs,
                         in_memory=False, progress=read_one)
    subset = epoch_val_subset(val_refs, cfg.val_pages)
    if isinstance(val_all, CachedPages):
        val_px_el, val_px_rg = val_all.pixel_counts(net_cfg.elements, net_cfg.regions)
        val_pages: Sequence[ScaledPage] = val_all.take(subset)
    else:
        val_px_el = pixel_counts([p.elements for p in val_all], net_cfg.elements)
        val_px_rg = pixel_counts([p.regions for p in val_all], net_cfg.regions)
        val_pages = [val_all[i] for i in subset]
    val_rows = sum(scaled_size(val_refs[i].width, val_refs[i].height, cfg.working_width)[1]
                   for i in subset)
    calib = (calibration_pages(len(train_refs), cfg.calibrate_pages, cfg.seed)
             if cfg.calibrate_pages else [])
    calib_rows = sum(scaled_size(train_refs[i].width, train_refs[i].height,
                                 cfg.working_width)[1] for i in calib)
    read_s = time.perf_counter() - began
    run.log(f"read {total} pages in {read_s:.0f} s ({read_s / max(1, total):.3f} s a page)")
    torch.manual_seed(cfg.seed)
    net = SegNet(net_cfg).to(run.device)
    if run.init_weights and not run.resume:
        net.load_state_dict(load_file(str(run.init_weights)))
    norm = Normalise()
    image_id = names.elements.index("image") + 1 if "image" in names.elements else None
    px_el = pixel_counts([p.elements for p in train_pages], net_cfg.elements)
    px_rg = pixel_counts([p.regions for p in train_pages], net_cfg.regions)
    w_el, w_rg = class_weights(px_el), class_weights(px_rg)
    weight_el = torch.tensor(w_el, device=run.device)
    weight_rg = torch.tensor(w_rg, device=run.device)

    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(crop_plan(train_pages, cfg.crop, cfg.seed, 0)) / cfg.batch)
    sched = Schedule(cfg.epochs * steps_per_epoch, cfg.warmup)
    planned = cfg.epochs
    history: list[dict] = []
    start_epoch, spent, setup_s = 0, 0.0, 0.0
    if run.resume:
        ck = torch.load(ckpt_path, map_location=run.device, weights_only=True)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["schedule"])
        torch.set_rng_state(ck["rng"])
        start_epoch, planned, spent = ck["epoch"], ck["planned"], ck["seconds"]
        history = json.loads(ck["history"])
        run.log(f"resuming after epoch {start_epoch} of {planned} from {ckpt_path}")

    pacer = None
    if run.time_budget_s and not run.resume:
        def forward_steps(rows: int) -> float:
            """A forward pass over `rows` scaled rows, in training steps: a third of a
            step's work per pixel."""
            return rows / (cfg.batch * cfg.crop) / 3

        step_val_s = forward_steps(val_rows)
        pacer = Pacer(began + 0.95 * run.time_budget_s, steps_per_epoch, cfg.epochs,
                      val_s=0.0, every=max(10, steps_per_epoch // 50),
                      reserve_steps=forward_steps(calib_rows))  # the offsets and chooser fit
    epoch = start_epoch
    while epoch < planned:
        t0 = time.perf_counter()
        net.train()
        plan = crop_plan(train_pages, cfg.crop, cfg.seed, epoch + 1)
        total_loss, seen = 0.0, 0
        for b in range(0, len(plan), cfg.batch):
            if sched.step >= sched.total:  # a planned partial last epoch
                break
            t_step = time.perf_counter()
            items = plan[b:b + cfg.batch]
            rgb, el_t, rg_t = make_batch(train_pages, items, cfg.crop)
            recolour_panels(rgb, el_t, np.random.default_rng([cfg.seed, epoch + 1, b]),
                            cfg.panels, image_id)
            if cfg.frames:
                draw_frames(rgb, el_t, np.random.default_rng([cfg.seed, epoch + 1, b, 1]),
                            cfg.frames, image_id)
            rgb, el_t, rg_t = torch.from_numpy(rgb), torch.from_numpy(el_t), torch.from_numpy(rg_t)
            x = norm(rgb).to(run.device)
            el_t, rg_t = el_t.long().to(run.device), rg_t.long().to(run.device)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * sched.lr_factor()
            with torch.autocast(run.device.type, dtype=torch.bfloat16,
                                enabled=cfg.precision == "bf16"):
                el, rg = net(x)
            el, rg = el.float(), rg.float()
            loss = (weighted_ce(el, el_t, weight_el)
                    + cfg.region_weight * weighted_ce(rg, rg_t, weight_rg))
            if cfg.jaccard:
                loss = loss + cfg.jaccard * soft_jaccard(el, el_t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step += 1
            total_loss += loss.item() * len(items)
            seen += len(items)
            if run.progress:
                run.progress(b // cfg.batch + 1, steps_per_epoch, total_loss / seen,
                             seen / (time.perf_counter() - t0))
            if pacer:
                pacer.step_done(time.perf_counter() - t_step)
                if pacer.due():
                    if not history:  # no validation timed yet
                        pacer.val_s = step_val_s * pacer.step_s()
                    was = sched.total
                    planned, sched.total = pacer.plan(time.perf_counter(), epoch,
                                                      b // cfg.batch + 1, sched.step)
                    if abs(sched.total - was) > 0.02 * was:
                        run.log(f"the time budget holds {sched.total} steps of "
                                f"{pacer.step_s():.2f} s ({sched.total / steps_per_epoch:.2f}"
                                f" epochs) and {planned} validations of about "
                                f"{pacer.val_s:.0f} s")
        train_s = time.perf_counter() - t0
        el_conf, rg_conf = validate(net, norm, val_pages, cfg.windowing)
        seconds = time.perf_counter() - t0
        spent += seconds
        if pacer:
            pacer.val_s = seconds - train_s
        history.append({
            "epoch": epoch + 1, "loss": round(total_loss / max(1, seen), 5),
            "lr": round(cfg.lr * sched.lr_factor(), 7), "seconds": round(seconds, 2),
            "images_per_s": round(seen / max(train_s, 1e-9), 2),
            "val": {"elements": report(el_conf, ["background", *names.elements]),
                    "regions": report(rg_conf, ["background", *names.regions])},
        })
        setup_s = t0 - began if epoch == start_epoch else setup_s
        v = history[-1]["val"]
        run.log(f"epoch {epoch + 1}/{planned}: loss {history[-1]['loss']:.4f}, "
                f"{history[-1]['images_per_s']:.1f} crops/s, val element IoU "
                + ", ".join(f"{k} {x if x is None else round(x, 3)}"
                            for k, x in v["elements"]["iou"].items() if k != "background")
                + f", region mIoU {v['regions']['mean_iou']:.3f}")
        budget_left = (run.time_budget_s - spent - setup_s) if run.time_budget_s else None
        next_s = (min(steps_per_epoch, sched.total - sched.step) * train_s
                  / max(1, math.ceil(seen / cfg.batch)) + (seconds - train_s))
        last = epoch + 1 >= planned or sched.step >= sched.total or (
            pacer is None and budget_left is not None and budget_left < next_s)
        epoch += 1
        if not last:
            _save_checkpoint(ckpt_path, net, opt, sched, epoch, planned, spent, history)
        if run.stop_after is not None and epoch >= run.stop_after and not last:
            return None
        if last:
            break

    decision: dict = {}
    fit = None
    heads = ["background", *names.elements]
    if calib:
        t_fit = time.perf_counter()
        choose = cfg.picture_boxes and cfg.picture_chooser and "image" in names.elements
        fit = calibrate(net, norm, [train_pages[i] for i in calib], cfg.windowing, cfg.seed,
                        chooser=(heads.index("image"), PictureBoxes()) if choose else None,
                        names=heads)
        decision = fit.to_json()
        spent += time.perf_counter() - t_fit
        run.log(fit.describe(names.elements, time.perf_counter() - t_fit))
    if cfg.picture_boxes and "image" in names.elements:
        decision["picture_boxes"] = with_chooser(PictureBoxes(), fit).to_json()
    card = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": names.to_json(),
        "heads": {"elements": heads, "regions": ["background", *names.regions]},
        "input": {"working_width": cfg.working_width,
                  "normalise": asdict(norm), "windowing": asdict(cfg.windowing),
                  "scale": "each page is resized to working_width, keeping its aspect ratio"},
        "release": {"name": rel.name, "version": rel.version, "path": str(rel.path),
                    "sha256sums_sha256": digest},
        "data": {split: {"pages": len(pages), "sites": sorted({p.site for p in pages})}
                 for split, pages in (("train", train_refs), ("val", val_refs))},
        "class_weights": {"elements": w_el, "regions": w_rg},
        "train_pixels": {"elements": px_el, "regions": px_rg},  # at the working width
        "val_pixels": {"elements": val_px_el, "regions": val_px_rg},  # the whole split
        "val_validated_each_epoch": {"pages": len(subset), "of": len(val_refs)},
        "config": cfg.to_json(),
        "network": net_cfg.to_json(),
        "parameters": sum(p.numel() for p in net.parameters()),
        "training": {"epochs": len(history), "planned": cfg.epochs, "seconds": round(spent, 1),
                     "device": str(run.device), "torch": torch.__version__,
                     "machine": platform.machine(), "threads": cfg.threads,
                     "read_seconds": round(read_s, 1), "read_jobs": run.jobs},
        "epochs": history,
        **({"decision": decision} if decision else {}),
        "val": history[-1]["val"],
        "val_measured": "at the working width against scaled masks; `python -m model "
                        "evaluate` measures at the pages' own size",
    }
    if run.card_update:
        card = run.card_update(card)
    out = publish(run.models_dir, net.cpu(), card, {"curves.png": draw_curves(history)},
                  before_rename=lambda version, sha: note_published(run_dir, version, sha))
    remove_run_dir(run_dir)
    return out


def _save_checkpoint(path: Path, net: SegNet, opt: torch.optim.Optimizer, sched: Schedule,
                     epoch: int, planned: int, seconds: float, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(), "rng": torch.get_rng_state(),
                "epoch": epoch, "planned": planned, "seconds": seconds,
                "history": json.dumps(history)}, tmp)
    os.replace(tmp, path)
