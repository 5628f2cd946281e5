"""A contact sheet of what annotators changed: proposed regions thin, final regions thick.

One tile per annotated page (screenshot scaled to a fixed width), each region in its label
colour: proposals drawn as thin outlines, the pulled annotation as thick ones, so a kept
region shows one thick outline over a thin one, a moved region two, a deleted one only thin.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from catalog.workspace import CorruptFile, Workspace, read_json

TILE_WIDTH = 320
MAX_TILE_HEIGHT = 900
COLUMNS = 6


def _tile(ws: Workspace, page_id: str, colors: dict[str, str]) -> Image.Image | None:
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
    for doc, width in ((pre, 1), (ann, 3)):
        for r in doc.get("regions", []):
            x, y, w, h = (v * scale for v in r["bbox"])
            if y > height:
                continue
            draw.rectangle([x, y, x + w, y + h], outline=colors.get(r["label"], "#808080"),
                           width=width)
    draw.rectangle([0, 0, TILE_WIDTH, 14], fill="white")
    draw.text((3, 1), page_id, fill="black")
    return tile


def change_sheet(ws: Workspace, out: Path, colors: dict[str, str], limit: int = 36) -> int:
    """Write the sheet for up to `limit` annotated pages; returns how many it shows."""
    tiles = []
    for page_id in ws.page_ids():
        if len(tiles) >= limit:
            break
        if ws.annotation_json(page_id).exists():
            tile = _tile(ws, page_id, colors)
            if tile is not None:
                tiles.append(tile)
    if not tiles:
        return 0
    cols = min(COLUMNS, len(tiles))
    rows = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    row_heights = [max(t.height for t in row) for row in rows]
    sheet = Image.new("RGB", (cols * (TILE_WIDTH + 4), sum(row_heights) + 4 * len(rows)), "#ccc")
    y = 0
    for row, rh in zip(rows, row_heights, strict=True):
        for i, tile in enumerate(row):
            sheet.paste(tile, (i * (TILE_WIDTH + 4), y))
        y += rh + 4
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return len(tiles)
