"""Element masks: visible text runs, images and interactive elements, one mask per class.

A CSS background picture counts as an image only where nothing is drawn over it (an icon,
a logo set as a background); behind text or controls it is the backdrop of a block.

Masks are painted in stacking order, so that what lies under an opaque element that is
stacked above it (a fixed bar, a dialog, a picture over text) is not labelled: a container
with its own background, or an image, clears the masks of everything below it in z-order
where it lies. Boxes the capture found hidden (covered, clipped, invisible) are skipped.

Given the screenshot, a picture is labelled over its visible box only (visible.py): the
margins of its element's box that show nothing but the page's colour are left out.
"""

from __future__ import annotations

import re

import numpy as np

from .boxes import Box, PageBoxes
from .visible import visible_slices

_TRANSPARENT = re.compile(r"rgba\([^)]*,\s*0(?:\.0+)?\)|transparent", re.I)


def _slices(box: Box, width: int, height: int) -> tuple[slice, slice] | None:
    x, y, w, h = box.bbox
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def _opaque(box: Box, parent_bg: str) -> bool:
    if box.kind == "image":
        return True
    if box.kind in ("block", "landmark"):
        # The capture reports the effective background (inherited when transparent): a
        # box paints its own only where it differs from its parent's.
        return bool(box.background) and not _TRANSPARENT.search(box.background) and (
            box.background != parent_bg
        )
    return False


def _backdrops(page: PageBoxes) -> set[int]:
    """Ids of CSS background pictures that something smaller is drawn over."""
    bgs = [b for b in page.boxes if b.kind == "image" and b.background_image and b.visible]
    objs = [b for b in page.boxes
            if b.kind in ("text", "interactive", "image") and b.visible]
    if not bgs or not objs:
        return set()
    r = np.array([b.bbox for b in objs], dtype=np.float64)
    cx, cy, size = r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2, r[:, 2] * r[:, 3]
    out = set()
    for b in bgs:
        x, y, w, h = b.bbox
        over = (cx >= x) & (cx <= x + w) & (cy >= y) & (cy <= y + h) & (size < b.area)
        if over.any():
            out.add(b.id)
    return out


def element_masks(page: PageBoxes, classes: tuple[str, ...] = ("text", "image", "interactive"),
                  scale: float = 1.0, gray: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
    """{class: uint8 array (height, width), 255 where the class is visible}.

    `scale` maps box coordinates to mask pixels (1 when boxes are in screenshot pixels).
    `gray`: the screenshot in grey at the masks' size; where given, a picture's mask is cut
    to its visible box (visible.py). A picture still hides what lies under its whole box.
    """
    width, height = int(round(page.width * scale)), int(round(page.height * scale))
    if gray is not None and gray.shape != (height, width):
        raise ValueError(f"the screenshot is {gray.shape[1]}x{gray.shape[0]}, the masks "
                         f"{width}x{height}")
    masks = {c: np.zeros((height, width), dtype=np.uint8) for c in classes}
    # Painting order: z-order first, then document order (a later box paints over an
    # earlier one of the same z).
    index = page.by_id()
    skip = _backdrops(page)
    ordered = sorted((b for b in page.boxes if b.visible and b.id not in skip),
                     key=lambda b: (b.z, b.id))
    if scale != 1.0:
        ordered = [Box(**{**b.__dict__, "bbox": tuple(v * scale for v in b.bbox)}) for b in ordered]

    def occludes(b: Box) -> bool:
        parent = index.get(b.parent) if b.parent is not None else None
        return b.z > 0 and _opaque(b, parent.background if parent else "")

    # Most pages stack nothing opaque above the flow: paint without the z-buffer then.
    zmap = None
    if any(occludes(b) for b in ordered):
        zmap = np.full((height, width), np.iinfo(np.int32).min, dtype=np.int32)
    for b in ordered:
        sl = _slices(b, width, height)
        if sl is None:
            continue
        shown = sl
        if gray is not None and b.kind == "image":
            shown = visible_slices(gray, *sl)
        if zmap is None:
            if b.kind in masks and shown is not None:
                masks[b.kind][shown] = 255
            continue
        if occludes(b):
            below = zmap[sl] < b.z
            for m in masks.values():
                m[sl][below] = 0
            zmap[sl] = np.maximum(zmap[sl], b.z)
        if b.kind in masks and shown is not None:
            masks[b.kind][shown][zmap[shown] <= b.z] = 255
    return masks
