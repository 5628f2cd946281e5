"""The network's speed by memory layout and precision, in one run: a training step (forward,
both losses, backward, AdamW) of a batch of crops as `make train` draws them, and the
prediction of one window, each against the default-layout float32 baseline.

    .venv/bin/python bench/train_step.py [--threads 2] [--steps 8] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from model.losses import weighted_ce  # noqa: E402
from model.network import SegNet  # noqa: E402
from model.train import TrainConfig, bf16_supported  # noqa: E402

VARIANTS = [("float32, default layout", torch.contiguous_format, False),
            ("float32, channels-last", torch.channels_last, False),
            ("bf16 autocast, channels-last", torch.channels_last, True)]


def step_seconds(fmt: torch.memory_format, bf16: bool, batch: int, crop: int, width: int,
                 steps: int) -> float:
    torch.manual_seed(0)
    cfg = TrainConfig()
    net = SegNet(cfg.network, memory_format=fmt).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    x = torch.randn(batch, 3, crop, width)
    el = torch.randint(0, cfg.network.elements, (batch, crop, width))
    rg = torch.randint(0, cfg.network.regions, (batch, crop, width))
    w_el, w_rg = torch.ones(cfg.network.elements), torch.ones(cfg.network.regions)
    times = []
    for _ in range(steps + 2):  # the first two warm oneDNN's kernel caches
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            e, r = net(x)
        loss = (weighted_ce(e.float(), el, w_el)
                + cfg.region_weight * weighted_ce(r.float(), rg, w_rg))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def window_seconds(fmt: torch.memory_format, rows: int, width: int, repeat: int) -> float:
    net = SegNet(TrainConfig().network, memory_format=fmt).eval()
    x = torch.randn(1, 3, rows, width)
    times = []
    with torch.inference_mode():
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=TrainConfig().batch)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig()
    crop, width = cfg.crop, cfg.working_width
    print(f"training step: {args.batch} crops of {crop}x{width}, median of {args.steps} "
          f"steps, {args.threads} threads, torch {torch.__version__}")
    base = None
    for name, fmt, bf16 in VARIANTS:
        if bf16 and not bf16_supported(torch.device("cpu")):
            print(f"  {name:32s} skipped: this CPU has no bfloat16 support in oneDNN")
            continue
        s = step_seconds(fmt, bf16, args.batch, crop, width, args.steps)
        base = base or s
        print(f"  {name:32s} {s:.3f} s a step, {args.batch / s:5.1f} crops/s, "
              f"{base / s:.2f}x the baseline")
    rows = cfg.windowing.window
    print(f"prediction of one {rows}x{width} window (float32), median of 5:")
    plain = window_seconds(torch.contiguous_format, rows, width, 5)
    fast = window_seconds(torch.channels_last, rows, width, 5)
    print(f"  {'default layout':32s} {plain:.3f} s\n  {'channels-last':32s} {fast:.3f} s, "
          f"{plain / fast:.2f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
