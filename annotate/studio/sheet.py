"""A contact sheet of what annotators changed, one tile per annotated page.

Each region is drawn in the colour of what became of it (report.pair_regions): kept as
proposed, moved (the proposal dashed, the final box solid), deleted (the proposal), or
added by the annotator (the final box), with its label written inside. A legend across the
top of the sheet names the colours.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from catalog.workspace import CorruptFile, Workspace, read_json

from .report import pair_regions

TILE_WIDTH = 320
MAX_TILE_HEIGHT = 900
COLUMNS = 6
LEGEND_HEIGHT = 22
STATE_COLORS = {
    "kept": (40, 160, 60),
    "moved": (230, 140, 0),
    "deleted": (210, 40, 40),
    "added": (40, 90, 220),
}
STATE_WORDS = {
    "kept": "kept as proposed",
    "moved": "moved (proposal dashed)",
    "deleted": "deleted proposal",
    "added": "added by annotator",
}


def _dashed(draw: ImageDraw.ImageDraw, box: list[float], color: tuple[int, int, int],
            dash: int = 6) -> None:
    x0, y0, x1, y1 = box
    for a in range(int(x0), int(x1), 2 * dash):
        b = min(a + dash, x1)
        draw.line([a, y0, b, y0], fill=color, width=2)
        draw.line([a, y1, b, y1], fill=color, width=2)
    for a in range(int(y0), int(y1), 2 * dash):
        b = min(a + dash, y1)
        draw.line([x0, a, x0, b], fill=color, width=2)
        draw.line([x1, a, x1, b], fill=color, width=2)


def _tile(ws: Workspace, page_id: str) -> Image.Image | None:
    try:
        ann = read_json(ws.annotation_json(page_id))
        pre = read_json(ws.preannotation_json(page_id))
        with Image.open(ws.screenshot(page_id)) as im:
            shot = im.convert("RGB")
    except (FileNotFoundError, CorruptFile, OSError):
        return None
    scale = TILE_WIDTH / shot.width
    height = min(MAX_TILE_HEIGHT, max(1, round(shot.height * scale)))
    tile = shot.resize((TILE_WIDTH, round(shot.height * scale))).crop((0, 0, TILE_WIDTH, height))
    draw = ImageDraw.Draw(tile)

    def box(r: dict) -> list[float]:
        x, y, w, h = (v * scale for v in r["bbox"])
        return [x, y, x + w, y + h]

    for state, p, f in pair_regions(pre.get("regions", []), ann.get("regions", [])):
        color = STATE_COLORS[state]
        if state == "moved":
            _dashed(draw, box(p), color)
        shown = f if f is not None else p
        b = box(shown)
        if b[1] > height:
            continue
        draw.rectangle(b, outline=color, width=3 if f is not None else 2)
        draw.text((b[0] + 4, b[1] + 3), shown["label"], fill=color)
    draw.rectangle([0, 0, TILE_WIDTH, 14], fill="white")
    draw.text((3, 1), page_id, fill="black")
    return tile


def legend(width: int) -> Image.Image:
    """The strip that names the state colours."""
    strip = Image.new("RGB", (width, LEGEND_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    x = 6
    for state, color in STATE_COLORS.items():
        draw.rectangle([x, 5, x + 14, 17], outline=color, width=3)
        draw.text((x + 20, 6), STATE_WORDS[state], fill="black")
        x += 30 + int(draw.textlength(STATE_WORDS[state]))
    return strip


def change_sheet(ws: Workspace, out: Path, limit: int = 36) -> int:
    """Write the sheet for up to `limit` annotated pages; returns how many it shows."""
    tiles = []
    for page_id in ws.page_ids():
        if len(tiles) >= limit:
            break
        if ws.annotation_json(page_id).exists():
            tile = _tile(ws, page_id)
            if tile is not None:
                tiles.append(tile)
    if not tiles:
        return 0
    cols = min(COLUMNS, len(tiles))
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    row_heights = [max(t.height for t in row) for row in rows]
    width = max(cols * (TILE_WIDTH + 4), 4 * 200)
    sheet = Image.new("RGB", (width, LEGEND_HEIGHT + sum(row_heights) + 4 * len(rows)), "#ccc")
    sheet.paste(legend(width), (0, 0))
    y = LEGEND_HEIGHT
    for row, rh in zip(rows, row_heights, strict=True):
        for i, tile in enumerate(row):
            sheet.paste(tile, (i * (TILE_WIDTH + 4), y))
        y += rh + 4
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return len(tiles)
