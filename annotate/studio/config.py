"""The labelling config generated from the label set, and the check that a project matches.

Regions are rectangles (`RectangleLabels`), element classes brush masks (`BrushLabels`).
Label Studio squeezes an `<Image>` to the window by default (a 1280x3000 page showed at
301x706); a large `maxHeight` keeps tall pages at full width with a scrolling pane.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from catalog.config import LabelsConfig

IMAGE = "image"
REGIONS = "region"
MASKS = "mask"
# Tallest screenshot: the capture cap (16,384 CSS px) at a device pixel ratio of 4.
MAX_IMAGE_HEIGHT = 65536


def labelling_config(labels: LabelsConfig) -> str:
    def label_lines(names: list[str]) -> str:
        return "\n".join(
            f"    <Label value={quoteattr(n)} background={quoteattr(labels.colors.get(n, '#808080'))}/>"
            for n in names
        )

    parts = [
        "<View>",
        f'  <Image name="{IMAGE}" value="$image" zoom="true" zoomControl="true" '
        f'rotateControl="false" maxHeight="{MAX_IMAGE_HEIGHT}px"/>',
    ]
    if labels.regions:
        parts += [
            f'  <RectangleLabels name="{REGIONS}" toName="{IMAGE}" strokeWidth="2" opacity="0.3">',
            label_lines(labels.regions),
            "  </RectangleLabels>",
        ]
    if labels.masks:
        parts += [
            f'  <BrushLabels name="{MASKS}" toName="{IMAGE}">',
            label_lines(labels.masks),
            "  </BrushLabels>",
        ]
    parts.append("</View>")
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class ConfigLabels:
    regions: tuple[str, ...]
    masks: tuple[str, ...]


def config_labels(xml: str) -> ConfigLabels:
    """The rectangle and brush labels of a labelling config (ours by tag name)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"the project's labelling config is not XML ({exc})") from None
    found: dict[str, tuple[str, ...]] = {REGIONS: (), MASKS: ()}
    for tag in root.iter():
        if tag.tag in ("RectangleLabels", "BrushLabels") and tag.get("name") in found:
            found[tag.get("name", "")] = tuple(lab.get("value", "") for lab in tag.iter("Label"))
    return ConfigLabels(found[REGIONS], found[MASKS])


def config_mismatch(project_xml: str, labels: LabelsConfig) -> str:
    """'' when a project's config has the label set's labels, else what differs."""
    have = config_labels(project_xml)
    want = ConfigLabels(tuple(labels.regions), tuple(labels.masks))
    problems = []
    for kind, h, w in (("region", have.regions, want.regions), ("mask", have.masks, want.masks)):
        missing = [x for x in w if x not in h]
        extra = [x for x in h if x not in w]
        if missing:
            problems.append(f"{kind} labels {', '.join(missing)} are not in the project")
        if extra:
            problems.append(f"the project has {kind} labels {', '.join(extra)} not in the label set")
    return "; ".join(problems)
