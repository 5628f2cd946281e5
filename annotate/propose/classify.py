"""A label for each proposed segment from its landmark, its names, its place and content."""

from __future__ import annotations

import re
from dataclasses import dataclass

from segmentation.geometry import Rect, area

from .boxes import Box

LANDMARK_LABELS = {
    "header": "header", "nav": "navigation", "main": "main", "aside": "sidebar",
    "footer": "footer", "search": "segment", "form": "segment", "region": "segment",
}

# Words in ids and classes that page authors use for these parts (matched as whole tokens
# of the id/class split at -, _, digits and case changes).
NAME_HINTS = [
    ("advertisement", re.compile(r"^(ad|ads|advert|advertisement|adsense|sponsor|sponsored|dfp|banner_?ad|leaderboard|adv)$")),
    ("footer", re.compile(r"^(footer|foot|copyright|colophon|bottom|ftr|legal)$")),
    ("header", re.compile(r"^(header|masthead|banner|branding|logo|top|hdr|head|topbar)$")),
    ("navigation", re.compile(r"^(nav|navbar|navigation|menu|menubar|tabs|breadcrumbs?|toolbar)$")),
    ("sidebar", re.compile(r"^(sidebar|aside|rail|side|secondary|sidebox|right|left|col2|col3)$")),
    ("main", re.compile(r"^(main|content|article|story|primary|body|center|centre|page|container|wrapper|wrap)$")),
]

AD_SIZES = [(728, 90), (468, 60), (300, 250), (160, 600), (120, 600), (300, 600), (970, 90),
            (336, 280), (234, 60), (320, 50)]


@dataclass
class Context:
    width: float  # page
    height: float
    content: Rect  # union of every visual object on the page


def name_tokens(box: Box) -> list[str]:
    text = f"{box.dom_id} {box.classes}"
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [t for t in re.split(r"[\s\-_0-9:.]+", text.lower()) if t]


def hinted_label(boxes: list[Box]) -> str:
    """The first landmark, ARIA role or name hint found on these boxes (outermost first)."""
    for b in boxes:
        if b.landmark and b.landmark in LANDMARK_LABELS:
            return LANDMARK_LABELS[b.landmark]
        if b.tag in LANDMARK_LABELS and b.tag != "form":
            return LANDMARK_LABELS[b.tag]
    for b in boxes:
        toks = name_tokens(b)
        for label, pattern in NAME_HINTS:
            if any(pattern.match(t) for t in toks):
                return label
    return ""


def link_share(leaves: list[Box]) -> float:
    """Share of the content that is links: by characters, or by area where the content
    is pictures (menus drawn as images)."""
    text = sum(len(b.text) for b in leaves if b.kind == "text")
    if text >= 20:
        linked = sum(len(b.text) for b in leaves if b.kind == "interactive")
        return min(1.0, linked / text)
    shown = sum(b.area for b in leaves if b.kind in ("text", "image"))
    linked_area = sum(b.area for b in leaves if b.kind == "interactive")
    return min(1.0, linked_area / shown) if shown else 0.0


def is_ad_shaped(rect: Rect) -> bool:
    return any(abs(rect[2] - w) <= 4 and abs(rect[3] - h) <= 4 for w, h in AD_SIZES)


def classify(rect: Rect, leaves: list[Box], hints: list[Box], ctx: Context,
             biggest: bool, lowest: bool = False, text_below: bool = False) -> tuple[str, float]:
    """(label, confidence) for one segment. `biggest`: the largest segment of the page;
    `lowest`: the segment that reaches furthest down; `text_below`: some text of the page
    starts below the segment's bottom edge, so it does not close the page."""
    top, height = ctx.content[1], ctx.content[3]
    bottom = top + height
    x, y, w, h = rect
    images = [b for b in leaves if b.kind == "image"]
    texts = [b for b in leaves if b.kind == "text"]
    links = link_share(leaves)
    chars = sum(len(b.text) for b in texts)
    if images and not texts and is_ad_shaped(rect):
        return "advertisement", 0.7
    tol = min(150.0, max(40.0, 0.04 * height))
    near_top = y <= top + tol
    near_bottom = y + h >= bottom - tol
    # A thin full-width bar of links is a menu, whatever its names say, unless it closes
    # the page (a footer's row of links).
    if h <= 60 and w >= 0.5 * ctx.content[2] and links >= 0.8 and not (near_bottom or lowest):
        return "navigation", 0.7
    hint = hinted_label(hints)
    header_sized = h <= min(350.0, 0.3 * height)
    footer_sized = h <= 0.4 * height and not biggest
    if hint == "header" and header_sized and y <= top + 0.3 * height:
        return "header", 0.8
    if hint == "footer" and footer_sized and y >= top + 0.5 * height:
        return "footer", 0.8
    if hint == "navigation" or (hint == "advertisement" and area(rect) < 0.1 * area(ctx.content)):
        return hint, 0.8
    if near_top and header_sized:
        if h <= 60 and links > 0.8 and w > 0.5 * ctx.width:
            return "navigation", 0.6
        return "header", 0.7
    # A footer by position alone must close the page: body text below it means it is
    # more of the content (seen: a page's last section taken for its footer).
    if (near_bottom or lowest) and footer_sized and y >= top + 0.5 * height and not text_below:
        return "footer", 0.7
    if hint in ("main", "sidebar"):
        return hint, 0.7
    if w <= 0.3 * ctx.content[2] and h >= 0.3 * height:
        return ("navigation", 0.5) if links > 0.7 else ("sidebar", 0.5)
    if links > 0.75 and chars >= 20 and area(rect) < 0.15 * area(ctx.content):
        return "navigation", 0.5
    if biggest or area(rect) >= 0.15 * area(ctx.content):
        return "main", 0.6
    return "main", 0.4
