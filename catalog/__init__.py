"""The shared piece: records, the SQLite catalog and the workspace layout."""

from .config import Config, ConfigError, load_config, resolve_viewport
from .db import Catalog
from .records import Annotation, PageRecord, Region
from .urls import BadURL, normalise_url, page_id
from .workspace import CorruptFile, Workspace, read_json, write_bytes_atomic, write_json_atomic

__all__ = [
    "Annotation", "BadURL", "Catalog", "Config", "ConfigError", "CorruptFile", "PageRecord",
    "Region", "Workspace", "load_config", "normalise_url", "page_id", "read_json",
    "resolve_viewport", "write_bytes_atomic", "write_json_atomic",
]
