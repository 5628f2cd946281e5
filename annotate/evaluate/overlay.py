"""Pictures of an evaluation: truth and proposal side by side, and a sheet of the worst."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from segmentation.metrics import Segment

from ..propose import LabelSet

PANEL_WIDTH = 560
MAX_PANEL_HEIGHT = 2400  # taller pages are cut: the layout is decided at the top


def _panel(shot: Image.Image, segments: Sequence[Segment], labels: LabelSet,
           heading: str) -> Image.Image:
    scale = PANEL_WIDTH / shot.width
    h = min(MAX_PANEL_HEIGHT, max(1, round(shot.height * scale)))
    crop = shot.crop((0, 0, shot.width, min(shot.height, round(h / scale))))
    base = crop.convert("RGB").resize((PANEL_WIDTH, h), Image.Resampling.BILINEAR)
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    # Big ones first so that the small ones' fills and names stay readable on top.
    for s in sorted(segments, key=lambda s: -s.bbox[2] * s.bbox[3]):
        x, y, w, hh = (v * scale for v in s.bbox)
        rgb = labels.color(s.label)
        draw.rectangle([x, y, x + w, y + hh], fill=(*rgb, 40), outline=(*rgb, 255), width=3)
        draw.rectangle([x + 2, y + 2, x + 8 + 6 * len(s.label), y + 14], fill=(*rgb, 220))
        draw.text((x + 4, y + 2), s.label, fill=(0, 0, 0, 255))
    out = Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")
    framed = Image.new("RGB", (PANEL_WIDTH, h + 20), "white")
    framed.paste(out, (0, 20))
    ImageDraw.Draw(framed).text((4, 4), heading, fill="black")
    return framed


def side_by_side(shot: Image.Image, truth: Sequence[Segment], proposal: Sequence[Segment],
                 labels: LabelSet, title: str) -> Image.Image:
    left = _panel(shot, truth, labels, f"truth: {len(truth)} segments")
    right = _panel(shot, proposal, labels, f"proposal: {len(proposal)} segments")
    out = Image.new("RGB", (2 * PANEL_WIDTH + 30, max(left.height, right.height) + 24), "white")
    ImageDraw.Draw(out).text((6, 6), title, fill="black")
    out.paste(left, (6, 24))
    out.paste(right, (PANEL_WIDTH + 24, 24))
    return out


def contact_sheet(pictures: Sequence[tuple[Image.Image, str]], columns: int = 3,
                  width: int = 600, height: int = 700) -> Image.Image:
    """Thumbnails (top of each picture) in a grid, each with its caption."""
    if not pictures:
        raise ValueError("a contact sheet needs at least one picture")
    rows = (len(pictures) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * width, rows * (height + 20)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (pic, caption) in enumerate(pictures):
        thumb = pic.copy()
        thumb.thumbnail((width - 8, 10**6))
        thumb = thumb.crop((0, 0, thumb.width, min(thumb.height, height)))
        x, y = (i % columns) * width, (i // columns) * (height + 20)
        draw.text((x + 4, y + 4), caption, fill="black")
        sheet.paste(thumb, (x + 4, y + 20))
    return sheet
