"""The records every stage reads and writes, with their on-disk schema versions.

page.json, boxes.json, preannotation.json and annotation.json are documented here; a
change to any of them bumps its schema number and keeps the old one readable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PAGE_SCHEMA = 1
BOXES_SCHEMA = 1
ANNOTATION_SCHEMA = 1
CONVENTION_SCHEMA = 1

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
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


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
        if data.get("schema") != ANNOTATION_SCHEMA:
            raise ValueError(f"unsupported annotation schema {data.get('schema')!r}")
        return cls(
            page_id=data["page_id"],
            width=int(data["width"]),
            height=int(data["height"]),
            regions=[
                Region(
                    label=r["label"],
                    bbox=[float(v) for v in r["bbox"]],
                    score=float(r.get("score", 1.0)),
                    source=r.get("source", "pipeline"),
                )
                for r in data.get("regions", [])
            ],
            masks=_mask_files(data.get("masks", {})),
            meta=dict(data.get("meta", {})),
        )


def _mask_files(masks: Any) -> dict[str, str]:
    """The masks of an annotation: each a PNG beside the JSON, so a plain file name."""
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
    """

    version: str  # c0001, c0002, ...
    granularity: float = 0.0
    header_menu: bool = False
    label_map: dict[str, str] = field(default_factory=dict)
    pages: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    schema: int = CONVENTION_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Convention:
        if data.get("schema") != CONVENTION_SCHEMA:
            raise ValueError(f"unsupported convention schema {data.get('schema')!r}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def is_plain_name(name: object) -> bool:
    """A single file or folder name: no separator, not `.` or `..`, nothing to escape with."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and not any(c in name for c in "/\\\0"))
