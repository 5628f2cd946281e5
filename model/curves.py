"""curves.png: training loss and validation IoU by epoch, drawn with Pillow alone."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

W, H, PAD = 900, 360, 48
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


def _panel(draw: ImageDraw.ImageDraw, x0: int, title: str,
           series: dict[str, Sequence[float | None]], lo: float, hi: float) -> None:
    w = W // 2 - PAD - 12
    top, bottom = 30, H - PAD
    draw.text((x0, 8), title, fill=(0, 0, 0))
    draw.rectangle([x0, top, x0 + w, bottom], outline=(120, 120, 120))
    span = hi - lo or 1.0
    for k in range(5):
        v = lo + span * k / 4
        y = bottom - (bottom - top) * k / 4
        draw.line([x0, y, x0 + w, y], fill=(230, 230, 230))
        draw.text((x0 - 40, y - 6), f"{v:.2f}", fill=(80, 80, 80))
    n = max((len(s) for s in series.values()), default=0)
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [
            (x0 + (w * k / max(1, n - 1) if n > 1 else w / 2),
             bottom - (bottom - top) * (v - lo) / span)
            for k, v in enumerate(values) if v is not None
        ]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for x, y in pts:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        draw.text((x0 + 8 + 110 * i, H - 22), name, fill=colour)
    draw.text((x0 + w - 60, bottom + 4), f"epoch 1-{n}", fill=(80, 80, 80))


def draw_curves(epochs: Sequence[dict]) -> bytes:
    """PNG bytes: left, the mean training loss; right, val IoU per element class and the
    mean region IoU."""
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    loss = [e["loss"] for e in epochs]
    _panel(draw, PAD, "training loss", {"loss": loss}, 0.0, max(loss, default=1.0) * 1.05)
    ious: dict[str, list[float | None]] = {}
    for e in epochs:
        for name, v in e["val"]["elements"]["iou"].items():
            if name != "background":
                ious.setdefault(name, []).append(v)
        ious.setdefault("regions (mean)", []).append(e["val"]["regions"]["mean_iou"])
    _panel(draw, W // 2 + PAD, "val IoU", ious, 0.0, 1.0)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
