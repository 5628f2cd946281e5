"""boxes.json as records: the visual objects and the block tree of one captured page."""

from __future__ import annotations

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


def parse_boxes(doc: dict[str, Any], where: str = "boxes.json") -> PageBoxes:
    if doc.get("schema") != BOXES_SCHEMA:
        raise CorruptFile(f"{where} has schema {doc.get('schema')!r}, expected {BOXES_SCHEMA}")
    boxes = []
    try:
        for raw in doc["boxes"]:
            x, y, w, h = (float(v) for v in raw["bbox"])
            boxes.append(Box(
                id=int(raw["id"]), kind=str(raw["kind"]), bbox=(x, y, w, h),
                tag=raw.get("tag") or "", role=raw.get("role") or "",
                dom_id=raw.get("dom_id") or "", classes=raw.get("classes") or "",
                text=raw.get("text") or "", font_size=float(raw.get("font_size") or 0),
                font_weight=int(raw.get("font_weight") or 400), color=raw.get("color") or "",
                background=raw.get("background") or "", z=int(raw.get("z") or 0),
                fixed=bool(raw.get("fixed", False)), visible=bool(raw.get("visible", True)),
                parent=raw.get("parent"), depth=int(raw.get("depth") or 0),
                landmark=raw.get("landmark") or "",
                background_image=bool(raw.get("background_image", False)),
            ))
        width, height = int(doc["width"]), int(doc["height"])
    except (KeyError, TypeError, ValueError) as exc:
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
