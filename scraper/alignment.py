"""How well boxes line up with the screenshot: ink under every visible text box.

A text box that lands on perfectly uniform pixels either sits on a part of the image that
was never painted or is misplaced; the share of text boxes with ink is the alignment score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from catalog.workspace import read_json


@dataclass
class Alignment:
    text_boxes: int = 0
    inked: int = 0
    outside: int = 0  # boxes not wholly inside the image

    @property
    def score(self) -> float:
        return self.inked / self.text_boxes if self.text_boxes else 1.0

    def __add__(self, other: Alignment) -> Alignment:
        return Alignment(
            self.text_boxes + other.text_boxes, self.inked + other.inked, self.outside + other.outside
        )


def alignment_of(pixels: np.ndarray, boxes: list[dict[str, Any]]) -> Alignment:
    """Count visible text boxes with non-uniform pixels, and boxes outside the image."""
    height, width = pixels.shape[:2]
    result = Alignment()
    for box in boxes:
        x, y, w, h = box["bbox"]
        if x < 0 or y < 0 or w < 0 or h < 0 or x + w > width or y + h > height:
            result.outside += 1
        if box["kind"] != "text" or not box["visible"] or w < 1 or h < 1:
            continue
        result.text_boxes += 1
        patch = pixels[y : y + h, x : x + w]
        if patch.size and patch.max() != patch.min():
            result.inked += 1
    return result


def page_alignment(page_dir: Path) -> Alignment:
    boxes = read_json(page_dir / "boxes.json")["boxes"]
    with Image.open(page_dir / "screenshot.png") as image:
        pixels = np.asarray(image.convert("L"))
    return alignment_of(pixels, boxes)
