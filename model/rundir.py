"""A training run's directory (`models/.run-KEY/`): its last checkpoint while it trains, and,
from the moment it publishes, which version it published. A run killed after its version
was renamed into place but before this directory was removed is then finished by the rerun
(the directory removed, the version named) instead of training and publishing a second,
identical version."""

from __future__ import annotations

import json
import shutil
from contextlib import suppress
from pathlib import Path

from catalog.workspace import write_json_atomic

from .store import CARD, VERSION_RE

PUBLISHED = "published.json"
PUBLISHED_SCHEMA = 1


def note_published(run_dir: Path, version: str, weights_sha256: str) -> None:
    """Say, before the rename that publishes it, which version this run is about to be."""
    write_json_atomic(run_dir / PUBLISHED, {"schema": PUBLISHED_SCHEMA, "version": version,
                                            "weights_sha256": weights_sha256})


def published_by(run_dir: Path, models_dir: Path) -> Path | None:
    """The version this run published, when its note names one that exists with the same
    weights (a note written just before a kill, ahead of its rename, names none, or one
    that another run took: its weights differ)."""
    try:
        note = json.loads((run_dir / PUBLISHED).read_text(encoding="utf-8"))
        if not VERSION_RE.match(note["version"]):
            return None
        card = json.loads((models_dir / note["version"] / CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(card, dict) or card.get("weights_sha256") != note.get("weights_sha256"):
        return None
    return models_dir / note["version"]


def remove_run_dir(run_dir: Path) -> None:
    """The checkpoint first and the note last: a kill in between leaves a directory that a
    rerun still finishes, never one without a note that a rerun would train again from."""
    if not run_dir.is_dir():
        return
    for path in sorted(run_dir.iterdir(), key=lambda p: (p.name == PUBLISHED, p.name)):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with suppress(OSError):
        run_dir.rmdir()
