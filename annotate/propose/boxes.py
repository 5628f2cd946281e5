"""boxes.json as records: the visual objects and the block tree of one captured page."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.records import BOXES_SCHEMA
from catalog.workspace import CorruptFile, read_json, remedy

LEAF_KINDS = ("text", "image", "interactive")
CONTAINER_KINDS = ("block", "landmark")


@dataclass
class Box:
    id: int
    kind: str
    bbox: tuple[float, float, float, float]
    tag: str = ""
    role: str = ""
    dom_id: str = ""
    classes: str = ""
    text: str = ""
    font_size: float = 0.0
    font_weight: int = 400
    color: str = ""
    background: str = ""
    z: int = 0
    fixed: bool = False
    visible: bool = True
    parent: int | None = None
    depth: int = 0
    landmark: str = ""
    background_image: bool = False  # an image box that is a CSS background
    children: list[int] = field(default_factory=list)

    @property
    def area(self) -> float:
        return max(0.0, self.bbox[2]) * max(0.0, self.bbox[3])


@dataclass
class PageBoxes:
    width: int
    height: int
    boxes: list[Box]

    def by_id(self) -> dict[int, Box]:
        return {b.id: b for b in self.boxes}


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"box {raw.get('id')!r}: {key} {value!r} is not text")
    return value


def _box(raw: dict[str, Any]) -> Box:
    x, y, w, h = (float(v) for v in raw["bbox"])
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"box {raw.get('id')!r} has bbox {raw['bbox']!r}")
    parent = raw.get("parent")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise TypeError(f"box {raw.get('id')!r}: parent {parent!r} is not a box id")
    kind = raw["kind"]
    if not isinstance(kind, str):
        raise TypeError(f"box {raw.get('id')!r}: kind {kind!r} is not text")
    return Box(
        id=int(raw["id"]), kind=kind, bbox=(x, y, w, h),
        tag=_text(raw, "tag"), role=_text(raw, "role"), dom_id=_text(raw, "dom_id"),
        classes=_text(raw, "classes"), text=_text(raw, "text"),
        font_size=float(raw.get("font_size") or 0),
        font_weight=int(raw.get("font_weight") or 400), color=_text(raw, "color"),
        background=_text(raw, "background"), z=int(raw.get("z") or 0),
        fixed=bool(raw.get("fixed", False)), visible=bool(raw.get("visible", True)),
        parent=parent, depth=int(raw.get("depth") or 0), landmark=_text(raw, "landmark"),
        background_image=bool(raw.get("background_image", False)),
    )


def parse_boxes(doc: dict[str, Any], where: str = "boxes.json") -> PageBoxes:
    """The page's boxes; CorruptFile (naming the file and its fix) for anything else."""
    if not isinstance(doc, dict):
        raise CorruptFile(f"{where} is not a JSON object; {remedy(Path(where))}")
    if doc.get("schema") != BOXES_SCHEMA:
        raise CorruptFile(f"{where} has schema {doc.get('schema')!r}, expected {BOXES_SCHEMA}")
    boxes = []
    try:
        for raw in doc["boxes"]:
            boxes.append(_box(raw))
        width, height = int(doc["width"]), int(doc["height"])
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise CorruptFile(f"{where} is malformed ({exc!r}); {remedy(Path(where))}") from None
    index = {b.id: b for b in boxes}
    for b in boxes:
        if b.parent is not None and b.parent in index:
            index[b.parent].children.append(b.id)
        elif b.parent is not None:
            b.parent = None
    return PageBoxes(width, height, boxes)


def load_boxes(path: Path) -> PageBoxes:
    return parse_boxes(read_json(path), str(path))
