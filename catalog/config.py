"""Every setting of the pipeline, its default and what it means, in one place.

`pipeline.toml` at the repository root overrides any of these; command-line flags override
the file. Unknown keys are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

CONFIG_FILE = "pipeline.toml"


class ConfigError(ValueError):
    """The config file is wrong; the message names the key or the file."""


@dataclass
class DatasetConfig:
    name: str = "sqlite-docs"  # workspace is <root>/<name>
    root: str = "datasets"


@dataclass
class CaptureConfig:
    # "WxH" or "WxH@DPR"; several give one capture per viewport.
    viewports: list[str] = field(default_factory=lambda: ["1280x800"])
    max_height: int = 16384  # CSS px; taller pages are cut here and flagged
    timeout: float = 30.0  # seconds for a page load before the partial page is taken
    image_wait: float = 5.0  # seconds to wait for lazy images to decode
    optimize_for_speed: bool = True  # faster PNG encoding, about 27% larger files
    text_max_chars: int = 200  # text kept per box
    # Pages of at least this many image pixels are checked for a blank (unpainted) bottom:
    # Chromium's paint budget is about 512 MiB, i.e. 134M pixels.
    blank_check_pixels: int = 40_000_000


@dataclass
class CrawlConfig:
    # "URL" or "URL SCOPE" per entry; with none, the crawl serves `serve` and starts there.
    seeds: list[str] = field(default_factory=list)
    # Built-in default: Debian's sqlite3-doc, served locally, so a crawl works offline.
    serve: str = "/usr/share/doc/sqlite3"
    # "NAME=FOLDER" per entry: several local sites served and crawled together, each as
    # http://NAME.localhost:PORT/ (the name is its site, whatever the port); used instead of
    # `serve` when there are no seeds.
    sites: list[str] = field(default_factory=list)
    max_pages: int = 200  # pages captured with status ok, over all runs of these seeds; 0: none
    max_pages_per_site: int = 0  # the same per registered domain; 0: no per-site limit
    max_depth: int = 10
    scope: str = "prefix"  # page | prefix | host | domain
    # Regexes; when any are given, a URL matching one is in scope instead of the scope rule.
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)  # regexes that drop a URL
    browsers: int = 0  # 0: one local browser, or as many as the Grid has free slots
    grid: str = ""  # remote Selenium Grid URL; empty: local Chromium
    grid_wait: float = 600.0  # seconds to wait for a free Grid slot before giving up
    recycle_after: int = 200  # pages per browser before it is restarted; 0: never
    offline: bool = False  # the browsers resolve no host name but loopback (tests, mirrors)
    obey_robots: bool = True
    robots_timeout: float = 10.0  # seconds to fetch a robots.txt; unreachable means allow
    robots_error_wait: float = 300.0  # a robots.txt answering 5xx holds its host this long
    delay: float = 1.0  # seconds between requests to one host
    loopback_delay: float = 0.0  # the same for 127.0.0.1 and localhost
    per_host_concurrency: int = 1  # pages of one host loading at once
    loopback_concurrency: int = 0  # the same for loopback hosts; 0: one per browser
    retries: int = 3
    backoff: float = 2.0  # seconds, doubled per retry
    max_retry_after: float = 120.0  # longest Retry-After that is waited for
    allow_private: bool = False  # follow links from public seeds to private addresses
    user_agent: str = "webseg-pipeline/0.1 (+https://github.com/webseg/webseg-pipeline)"


@dataclass
class DedupeConfig:
    band_height: int = 800  # CSS px of a perceptual-hash band (below the first viewport)
    max_bands: int = 8  # the first viewport counts as one
    # Thresholds measured by bench/dedupe.py on real pages and their real-world variants.
    phash_threshold: int = 6  # pages with little text: pHash bits (of 64) for a near duplicate
    text_threshold: int = 12  # pages with text: text SimHash bits (of 64), then ...
    text_phash_threshold: int = 64  # ... pHash bits too; 64: no pixel check (it only lost recall)
    band_rule: str = "mean"  # mean | max: how band distances make a page distance
    height_tolerance: float = 0.1  # near duplicates differ in height by at most this share
    image_threshold: int = 8  # pHash bits (of 64) for the same image on two pages
    image_page_share: float = 0.5  # images cover this share of a page: judged on its images
    min_text_chars: int = 200  # less visible text than this: judged on pixels alone
    layout_grid: list[int] = field(default_factory=lambda: [8, 24])  # columns, rows
    layout_threshold: float = 0.8  # cosine of layout grids for "same template" (measured)


@dataclass
class LabelsConfig:
    regions: list[str] = field(
        default_factory=lambda: [
            "header", "navigation", "main", "sidebar", "footer", "advertisement", "segment",
        ]
    )
    masks: list[str] = field(default_factory=lambda: ["text", "image", "interactive"])
    colors: dict[str, str] = field(
        default_factory=lambda: {
            "header": "#e6194b", "navigation": "#3cb44b", "main": "#4363d8",
            "sidebar": "#f58231", "footer": "#911eb4", "advertisement": "#f032e6",
            "segment": "#808000", "text": "#ffe119", "image": "#42d4f4",
            "interactive": "#bfef45",
        }
    )


@dataclass
class PreannotateConfig:
    """How DOM boxes become proposed regions (annotate/propose/segment.py); tuned on the dev half
    of the Kreuzer corpus only."""

    pixels: bool = True  # look at the screenshot for content the DOM does not explain
    min_area: float = 0.004  # share of the page's content area: smaller parts are no segment
    content_share: float = 1.0  # of min_area: the least area of objects a segment holds
    chain_cover: float = 0.8  # a lone child holding this share of its parent replaces it
    chain_growth: float = 3.0  # a lone-child chain shows its outer box if at most this
    # many times the inner one's area
    edge_tol: float = 0.01  # share of the content height (at least 10 px): "touches the end"
    wrapper_height: float = 0.3  # share of the content height: a stack is at least this tall
    nested: float = 0.9  # a part this much inside a small segment (below) joins it
    nest_area: float = 0.3  # share of the content area: the largest segment that takes parts in
    loose_overlap: float = 0.3  # a group of loose objects overlapping segments more is dropped
    pixel_area: float = 0.016  # share of the content area: the least the pixel check proposes
    # A thin bar of links along a header's edge becomes a navigation region of its own.
    # Off: Kreuzer's annotators keep the menu in the header (segment F1 with it: dev 0.748
    # -> 0.694, held-out 0.692 -> 0.660); a team that marks menus apart turns it on.
    header_menu: bool = False
    # How fine the proposed segments are: 0 (coarse, the rules as tuned on Kreuzer's
    # top-level blocks) to 1 (fine: large containers opened into their parts, smaller parts
    # kept, menus apart from headers); a number or a name of GRANULARITY.
    granularity: float = 0.0
    # px: main parts this close down the page become one region (0: off). Off because
    # Kreuzer's annotators keep several content blocks: at 60 px, held-out BCubed F1 0.795
    # -> 0.791 and label accuracy 0.819 -> 0.814 (segment F1 0.692 either way).
    merge_main_gap: float = 0.0
    # A `python -m model train` output (models/mNNNN) whose predictions join the proposal;
    # empty: the DOM alone. Where a page's DOM covers less than `model_coverage` of its
    # inked pixels (canvas, pictures of text) its regions are the model's; `model_fill` adds
    # the model's regions that no proposed region covers, on every page. Both measured on
    # the Kreuzer held-out pages (README, "Pre-annotation with the model").
    model: str = ""
    model_coverage: float = 0.5
    model_fill: bool = False
    # Label a picture over the part of its element's box that shows something other than
    # the page's colour around it (annotate/propose/visible.py), not over its whole box:
    # a plot's white figure or a thumbnail's padding on a white page is no image to the
    # eye. Needs `pixels`. Off by default: it changes what a release calls image.
    visible_pictures: bool = False

    NAMED_VALUES: ClassVar[dict[str, dict[str, float]]] = {
        "granularity": {"coarse": 0.0, "medium": 0.5, "fine": 1.0},
    }


@dataclass
class LabelStudioConfig:
    project_title: str = ""  # empty: the dataset name
    batch_bytes: int = 50 * 1024 * 1024  # well under the server's 250 MiB upload limit
    retries: int = 5
    backoff: float = 1.0


@dataclass
class ExportConfig:
    val_ratio: float = 0.2
    test_ratio: float = 0.0  # >0 adds a test split
    # Sites whose new pages go to val (a site, or the NAME of `[crawl] sites`), every other
    # new page to train; val_ratio is then not used (export/splitplan.py)
    val_sites: list[str] = field(default_factory=list)
    tile: int = 0  # >0: also list square tiles of this many pixels (windows over the pages)
    tile_files: bool = False  # with tile: also write each tile's image and mask files
    resize_width: int = 0  # >0: resize pages to this width
    include_preannotations: bool = False
    split_salt: str = "webseg-v1"  # changing it reshuffles every split; never change it lightly
    png_level: int = 1  # zlib level of PNGs the export writes (1 fast ... 9 small); fixed = same bytes
    preview_pages: int = 12  # pages on a release's contact sheet (preview.png)


@dataclass
class Config:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    crawl: CrawlConfig = field(default_factory=CrawlConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    preannotate: PreannotateConfig = field(default_factory=PreannotateConfig)
    labelstudio: LabelStudioConfig = field(default_factory=LabelStudioConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def workspace_dir(self) -> Path:
        return Path(self.dataset.root) / self.dataset.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fill(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]} (known: {', '.join(known)})")
    kwargs = {}
    default = cls()
    for name, value in values.items():
        current = getattr(default, name)
        names = getattr(cls, "NAMED_VALUES", {}).get(name)
        if names and isinstance(value, str):
            if value not in names:
                raise ConfigError(f"{where}.{name} must be a number or one of "
                                  f"{', '.join(names)}, not {value!r}")
            value = names[value]
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] must be a table")
            kwargs[name] = _fill(type(current), value, name)
            continue
        if isinstance(current, bool) != isinstance(value, bool) or (
            isinstance(current, (int, float)) and not isinstance(value, (int, float))
        ) or (isinstance(current, (str, list, dict)) and not isinstance(value, type(current))):
            raise ConfigError(
                f"{where}.{name} must be {type(current).__name__}, not {value!r}"
            )
        kwargs[name] = float(value) if isinstance(current, float) else value
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file (default: ./pipeline.toml if present) over the defaults."""
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.exists():
            return Config()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return _fill(Config, data, "config")


def parse_granularity(text: str | float) -> float:
    """A granularity from the command line: a number from 0 to 1 or a named step."""
    names = PreannotateConfig.NAMED_VALUES["granularity"]
    if isinstance(text, str) and text in names:
        return names[text]
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(
            f"granularity {text!r} must be a number from 0 to 1 or one of {', '.join(names)}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"granularity {text!r} must lie between 0 (coarse) and 1 (fine)")
    return value


def parse_viewport(text: str) -> tuple[int, int, float]:
    """'1280x800' or '390x844@3' -> (width, height, device pixel ratio)."""
    spec, _, dpr = text.strip().lower().partition("@")
    try:
        w, h = (int(v) for v in spec.split("x"))
        ratio = float(dpr) if dpr else 1.0
    except ValueError:
        raise ConfigError(f"viewport {text!r} must look like 1280x800 or 390x844@3") from None
    if not (100 <= w <= 8000 and 100 <= h <= 8000 and 0.5 <= ratio <= 4):
        raise ConfigError(f"viewport {text!r} is out of range")
    return w, h, ratio


# Named presets accepted wherever a viewport is.
VIEWPORT_PRESETS = {
    "desktop": "1280x800",
    "laptop": "1440x900",
    "tablet": "768x1024@2",
    "phone": "390x844@3",
}


def resolve_viewport(text: str) -> tuple[int, int, float]:
    return parse_viewport(VIEWPORT_PRESETS.get(text.strip().lower(), text))
