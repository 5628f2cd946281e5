"""Draw a page's boxes over its screenshot, coloured by kind, for a person to check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from catalog.workspace import read_json

KIND_COLOURS = {
    "text": (255, 200, 0),
    "image": (0, 170, 255),
    "interactive": (0, 200, 80),
    "landmark": (230, 25, 75),
    "block": (150, 150, 150),
}
HIDDEN_COLOUR = (120, 0, 160)


def draw_overlay(screenshot: Image.Image, boxes: list[dict[str, Any]], show_hidden: bool = False) -> Image.Image:
    """The screenshot with a translucent fill and an outline per box; hidden boxes in purple."""
    base = screenshot.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    # Big containers first so that the small boxes stay on top.
    order = sorted(boxes, key=lambda b: -(b["bbox"][2] * b["bbox"][3]))
    for box in order:
        if not box["visible"] and not show_hidden:
            continue
        x, y, w, h = box["bbox"]
        if w < 1 or h < 1:
            continue
        colour = KIND_COLOURS.get(box["kind"], (0, 0, 0)) if box["visible"] else HIDDEN_COLOUR
        fill = (*colour, 50) if box["kind"] in ("text", "image", "interactive") else None
        width = 3 if box["kind"] == "landmark" else 1
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=(*colour, 230), fill=fill, width=width)
    return Image.alpha_composite(base, layer).convert("RGB")


def overlay_page(page_dir: Path, out: Path | None = None, show_hidden: bool = False) -> Path:
    """Write <page_dir>/overlay.png (or `out`) and return its path."""
    shot = page_dir / "screenshot.png"
    if not shot.is_file():
        raise FileNotFoundError(f"{shot} is missing: page {page_dir.name} has no screenshot")
    boxes = read_json(page_dir / "boxes.json")["boxes"]
    with Image.open(shot) as image:
        picture = draw_overlay(image, boxes, show_hidden)
    out = out or page_dir / "overlay.png"
    picture.save(out, optimize=False)
    return out
