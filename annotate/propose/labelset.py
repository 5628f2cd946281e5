"""The label set: region labels and element-mask classes with their colours, from the config."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.config import LabelsConfig

# What the pre-annotator can propose; a label set without one of these just never gets it.
REGION_KINDS = ("header", "navigation", "main", "sidebar", "footer", "advertisement", "segment")
MASK_KINDS = ("text", "image", "interactive")


@dataclass(frozen=True)
class LabelSet:
    regions: tuple[str, ...]
    masks: tuple[str, ...]
    colors: dict[str, str]

    def color(self, label: str) -> tuple[int, int, int]:
        return hex_to_rgb(self.colors.get(label, "#808080"))

    def region_label(self, label: str) -> str:
        """A proposed label the set knows, else its generic segment (or the first region)."""
        if label in self.regions:
            return label
        return "segment" if "segment" in self.regions else self.regions[0]


def hex_to_rgb(text: str) -> tuple[int, int, int]:
    value = text.strip().lstrip("#")
    if len(value) != 6:
        raise ValueError(f"colour {text!r} must look like #rrggbb")
    try:
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        raise ValueError(f"colour {text!r} must look like #rrggbb") from None


def label_set(cfg: LabelsConfig | None = None) -> LabelSet:
    """The configured label set, checked: labels unique, masks from the known classes."""
    cfg = cfg or LabelsConfig()
    if not cfg.regions:
        raise ValueError("labels.regions is empty: name at least one region label")
    for group in (cfg.regions, cfg.masks):
        dup = {x for x in group if group.count(x) > 1}
        if dup:
            raise ValueError(f"label {sorted(dup)[0]!r} appears twice in the label set")
    unknown = [m for m in cfg.masks if m not in MASK_KINDS]
    if unknown:
        raise ValueError(
            f"labels.masks has {unknown[0]!r}; mask classes are {', '.join(MASK_KINDS)}"
        )
    for name, colour in cfg.colors.items():
        hex_to_rgb(colour)
        del name
    return LabelSet(tuple(cfg.regions), tuple(cfg.masks), dict(cfg.colors))
