"""The records every stage reads and writes, with their on-disk schema versions.

page.json, boxes.json, preannotation.json and annotation.json are documented here; a
change to any of them bumps its schema number and keeps the old one readable.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

PAGE_SCHEMA = 1
BOXES_SCHEMA = 1
ANNOTATION_SCHEMA = 1
CONVENTION_SCHEMA = 2  # 2: split_model, model, model_coverage, model_fill (1 still read)

BOX_KINDS = ("text", "image", "interactive", "landmark", "block")

# page.json "status": "ok" or one of these error kinds.
PAGE_STATUSES = (
    "ok",
    "http_error",  # 4xx/5xx; captured as the server rendered it
    "timeout",  # load did not finish; the partial page was captured
    "not_html",  # PDF, image...: recorded, not captured
    "unreachable",  # DNS, refused connection
    "browser_error",  # the browser died or refused
)
# The statuses whose page has a screenshot and boxes: pre-annotated, deduplicated, released.
CAPTURED = ("ok", "http_error", "timeout")
# The same, for a query: "status IN CAPTURED_SQL"
CAPTURED_SQL = "(" + ", ".join(f"'{s}'" for s in CAPTURED) + ")"


@dataclass
class PageRecord:
    """page.json: what was captured, where from, and how it went."""

    page_id: str
    url: str  # as requested
    final_url: str
    status: str
    viewport: list[int]  # [w, h] in CSS px
    device_pixel_ratio: float
    width: int = 0  # of screenshot.png, in image pixels
    height: int = 0
    http_status: int | None = None
    content_type: str = ""
    title: str = ""
    page_height_css: int = 0  # full document height before any cap
    flags: list[str] = field(default_factory=list)  # truncated, blank_below, timeout...
    blank_from: int | None = None  # image row below which the capture is blank
    redirects: list[str] = field(default_factory=list)  # the chain, requested URL first
    retry_after: float | None = None  # seconds, when the server sent Retry-After
    boxes_beyond_cap: int = 0  # boxes below the height cap, not in the image
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    crawl_id: str = ""
    depth: int = 0
    captured_at: float = 0.0
    error: str = ""
    schema: int = PAGE_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageRecord:
        """ValueError (naming the field) for anything but a page record."""
        return cls(**typed_fields(cls, data, "page.json"))


@dataclass
class Region:
    """A labelled rectangle in image pixels of the screenshot."""

    label: str
    bbox: list[float]  # [x, y, w, h]
    score: float = 1.0
    source: str = "pipeline"  # pipeline | human | landmark | cluster | pixel

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Annotation:
    """preannotation.json (proposed) and annotation.json (human-corrected).

    masks maps a mask class to a PNG file beside the JSON: a single-channel image of the
    screenshot's size, 255 where the class is, 0 elsewhere.
    """

    page_id: str
    width: int
    height: int
    regions: list[Region] = field(default_factory=list)
    masks: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # version, annotator, lead_time...
    schema: int = ANNOTATION_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "page_id": self.page_id,
            "width": self.width,
            "height": self.height,
            "regions": [r.to_dict() for r in self.regions],
            "masks": dict(self.masks),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Annotation:
        """ValueError (saying what is wrong) for anything but an annotation."""
        if not isinstance(data, dict):
            raise ValueError("an annotation is a JSON object")
        if data.get("schema") != ANNOTATION_SCHEMA:
            raise ValueError(f"unsupported annotation schema {data.get('schema')!r}")
        try:
            page_id = data["page_id"]
            if not isinstance(page_id, str):
                raise TypeError(f"page_id {page_id!r} is not text")
            regions = data.get("regions", [])
            meta = data.get("meta", {})
            if not isinstance(regions, list) or not isinstance(meta, dict):
                raise TypeError("regions must be a list and meta an object")
            return cls(
                page_id=page_id,
                width=int(data["width"]),
                height=int(data["height"]),
                regions=[_region(r) for r in regions],
                masks=_mask_files(data.get("masks", {})),
                meta=dict(meta),
            )
        except (KeyError, TypeError, OverflowError, AttributeError) as exc:
            raise ValueError(f"malformed annotation ({exc!r})") from None


def _region(r: Any) -> Region:
    label, bbox = r["label"], [float(v) for v in r["bbox"]]
    if not isinstance(label, str):
        raise TypeError(f"region label {label!r} is not text")
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise TypeError(f"region bbox {r['bbox']!r} is not four finite numbers")
    source = r.get("source", "pipeline")
    return Region(label=label, bbox=bbox, score=float(r.get("score", 1.0)),
                  source=source if isinstance(source, str) else "pipeline")


def _mask_files(masks: Any) -> dict[str, str]:
    """The masks of an annotation: each a PNG beside the JSON, so a plain file name."""
    if not isinstance(masks, dict):
        raise TypeError("masks must be an object of class: file name")
    out = dict(masks)
    for cls, name in out.items():
        if not is_plain_name(name):
            raise ValueError(f"mask {cls!r}: {name!r} is not a file name beside the JSON")
    return out


@dataclass
class Convention:
    """conventions/cNNNN.json: how one team segments, learned from its corrected pages.

    `granularity` and `header_menu` are the proposal's settings that fit the team's
    annotations best; `label_map` renames a proposed label to the one the team uses for it.
    `pages` names what it was learned from (page id and the SHA-256 of its annotation.json),
    `left_out` what was not and why, `figures` the fit (mean segment F1 of each candidate).
    `split_model`: the open-or-keep decision refitted on the team's pages (the logistic
    model annotate/propose/split.py reads), or None for the rules. `model` is the version of
    the model stage's network whose predictions were weighed (empty: none), with the use
    kept: `model_coverage` (pages whose DOM covers less of their ink take the model's
    regions; 0: never) and `model_fill` (the model's regions nothing proposed covers, added).
    """

    version: str  # c0001, c0002, ...
    granularity: float = 0.0
    header_menu: bool = False
    label_map: dict[str, str] = field(default_factory=dict)
    pages: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    split_model: dict[str, Any] | None = None
    model: str = ""
    model_coverage: float = 0.0
    model_fill: bool = False
    schema: int = CONVENTION_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Convention:
        """ValueError (naming the field) for anything but a convention."""
        if not isinstance(data, dict) or data.get("schema") not in (1, CONVENTION_SCHEMA):
            found = data.get("schema") if isinstance(data, dict) else data
            raise ValueError(f"unsupported convention schema {found!r}")
        known = typed_fields(cls, data, "convention")
        label_map = known.get("label_map", {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in label_map.items()):
            raise ValueError("convention: label_map must map label names to label names")
        split = known.get("split_model")
        if split is not None and not all(k in split for k in ("features", "weights", "bias")):
            raise ValueError("convention: split_model lacks its features, weights or bias")
        return replace(cls(**known), schema=CONVENTION_SCHEMA)


def is_plain_name(name: object) -> bool:
    """A single file or folder name: no separator, not `.` or `..`, nothing to escape with."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and not any(c in name for c in "/\\\0"))


_PLAIN = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list,
          "dict": dict, "Any": object}


def typed_fields(cls: type, data: Any, what: str) -> dict[str, Any]:
    """The dataclass's fields found in `data`, each of its declared kind (`int | None`,
    `list[str]`: the outer kind is checked); ValueError naming the first that is not, or a
    required one that is missing. Keys the class does not know are left out, so a newer
    writer's extra fields do not stop an older reader."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object")
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{what} lacks {f.name!r}")
            continue
        value, kinds = data[f.name], str(f.type).replace(" ", "").split("|")
        ok = any((value is None) if k == "None"
                 else isinstance(value, _PLAIN.get(k.split("[")[0], object))
                 and not (isinstance(value, bool) and k.split("[")[0] in ("int", "float"))
                 for k in kinds)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise ValueError(f"{what}: {f.name} is {value!r}, not {f.type}")
        out[f.name] = value
    return out
