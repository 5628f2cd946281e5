"""Kreuzer-format truth as segments: the block types mapped to region labels, and the
rendered blocks of one page cut to its screenshot.

Rendering the truth (annotate/evaluate/kreuzer.py) writes `truth.json`: per page
{width, height, blocks: [{type, bbox, sub: [{type, bbox}]}], orphan_sub_blocks: [...]};
whoever scores against it (the proposal's evaluation, the model's) reads it here.
"""

from __future__ import annotations

from typing import Any

from .geometry import clip
from .metrics import Segment

# The design's mapping of Kreuzer block types to our region labels.
KREUZER_TYPES = {
    "header": "header", "logo": "header", "title": "header",
    "menu": "navigation", "linklist": "navigation",
    "article": "main", "content": "main",
    "sidebar": "sidebar",
    "footer": "footer",
    "ad": "advertisement",
    "image": "segment", "video": "segment", "searchbar": "segment",
}
TRUTH_LEVELS = ("coarse", "fine")  # data-block="1"; data-block="2" where a block has them


def map_type(block_type: str) -> str:
    return KREUZER_TYPES.get(block_type.strip().lower(), "segment")


def truth_segments(truth: dict[str, Any], width: int, height: int,
                   level: str = "coarse") -> list[Segment]:
    """The true segments of a rendered Kreuzer page: its top-level blocks (`coarse`), or
    (`fine`) each block's sub-blocks where it has any and the block itself where it has none,
    with the sub-blocks that lie outside every block."""
    if level == "coarse":
        blocks = truth["blocks"]
    else:
        blocks = [s for b in truth["blocks"] for s in (b.get("sub") or [b])]
        blocks += truth.get("orphan_sub_blocks", [])
    segs = [Segment(map_type(b["type"]), clip(b["bbox"], width, height)) for b in blocks]
    return [s for s in segs if s.bbox[2] >= 1 and s.bbox[3] >= 1]
