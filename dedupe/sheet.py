"""Contact sheet: each group's first viewports side by side, for a person to check.

One row per group of two or more pages; the canonical page comes first with a green frame,
dropped duplicates follow in red with the reason they were dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from catalog.workspace import Workspace, write_bytes_atomic

THUMB_W = 260
CAPTION_H = 62
PAD = 10
GREEN = (22, 160, 70)
RED = (205, 40, 40)
GREY = (120, 120, 120)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size font
        return ImageFont.load_default()


def _thumb(path: Path, viewport_h: int, thumb_h: int) -> Image.Image:
    try:
        with Image.open(path) as im:
            top = im.crop((0, 0, im.width, min(im.height, viewport_h))).convert("RGB")
    except (OSError, ValueError):
        tile = Image.new("RGB", (THUMB_W, thumb_h), (240, 240, 240))
        ImageDraw.Draw(tile).text((8, 8), "unreadable screenshot", fill=RED, font=_font(13))
        return tile
    scale = THUMB_W / top.width
    return top.resize((THUMB_W, max(1, round(top.height * scale))), Image.Resampling.LANCZOS)


def contact_sheet(
    ws: Workspace,
    groups: Sequence[Sequence[str]],
    reasons: dict[str, str],
    viewport_h: dict[str, int],
    out: Path,
    urls: dict[str, str] | None = None,
    max_groups: int = 60,
    max_members: int = 6,
) -> Path:
    """Write the sheet (PNG) of the first `max_groups` groups; returns its path."""
    shown = [g for g in groups if len(g) > 1][:max_groups]
    thumb_h = round(THUMB_W * 800 / 1280)
    cell_w, cell_h = THUMB_W + PAD, thumb_h + CAPTION_H + PAD
    head_h = 34
    cols = max((min(len(g), max_members) for g in shown), default=1)
    width = PAD + cols * cell_w
    height = head_h + max(1, len(shown)) * (cell_h + 20) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    title = f"{len(shown)} duplicate group(s) of {sum(len(g) for g in groups)} page(s)"
    if not shown:
        title = f"no duplicates among {sum(len(g) for g in groups)} page(s)"
    draw.text((PAD, 8), title, fill="black", font=_font(18))
    small = _font(12)
    y = head_h
    for n, group in enumerate(shown, 1):
        more = f" (+{len(group) - max_members} more)" if len(group) > max_members else ""
        draw.text((PAD, y), f"group {n}: {len(group)} pages{more}", fill="black", font=_font(14))
        y += 20
        for k, pid in enumerate(group[:max_members]):
            x = PAD + k * cell_w
            thumb = _thumb(ws.screenshot(pid), viewport_h.get(pid, 800), thumb_h)
            sheet.paste(thumb.crop((0, 0, THUMB_W, min(thumb.height, thumb_h))), (x, y))
            color = GREEN if k == 0 else RED
            draw.rectangle((x - 2, y - 2, x + THUMB_W + 1, y + thumb_h + 1), outline=color, width=3)
            label = "canonical" if k == 0 else (reasons.get(pid) or "duplicate")
            draw.text((x, y + thumb_h + 4), pid, fill=color, font=small)
            draw.text((x, y + thumb_h + 20), label[:44], fill=GREY, font=small)
            url = (urls or {}).get(pid, "")
            if url:
                short = url.split("://", 1)[-1]
                short = short if len(short) <= 44 else "..." + short[-41:]
                draw.text((x, y + thumb_h + 36), short, fill=GREY, font=small)
        y += cell_h
    out.parent.mkdir(parents=True, exist_ok=True)
    from io import BytesIO

    buf = BytesIO()
    sheet.save(buf, format="PNG", optimize=False)
    write_bytes_atomic(out, buf.getvalue())
    return out
