"""The on-disk layout of a dataset workspace and atomic writes into it.

    <workspace>/catalog.sqlite
    <workspace>/pages/<page_id>/{screenshot.png,page.json,boxes.json,...}
    <workspace>/releases/vNNNN/
    <workspace>/conventions/cNNNN.json   the team's convention, learned from its annotations

A page directory appears all at once: it is written under a temporary name and renamed,
so a kill at any moment leaves either the whole page or nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .processes import process_alive
from .records import Convention, is_plain_name

TMP_PREFIX = ".tmp-"


def umask() -> int:
    """The process's umask, read without changing it (another thread may be creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temp_files(folder: Path) -> int:
    """Remove the temporary files of writers that were killed before their rename; returns
    how many. Each temporary file names its writer's process, so a running writer's file
    is never touched."""
    removed = 0
    for tmp in folder.glob(f"{TMP_PREFIX}*-*"):
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        if tmp.is_file() and pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part; what a
    killed writer left in the same folder goes with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); the result is an ordinary output, with the
        # mode any file the user creates gets.
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode())


class CorruptFile(ValueError):
    """A workspace file that cannot be read; the message names it."""


# Written by the capture alone: no later stage makes them again, the page has to be captured.
CAPTURE_FILES = ("page.json", "boxes.json", "screenshot.png")


def remedy(path: Path | str) -> str:
    """What fixes an unreadable workspace file, said to the user."""
    path = Path(path)
    if path.name in CAPTURE_FILES:
        where = f" --workspace {path.parents[2]}" if path.parent.parent.name == "pages" else ""
        return f"capture the page again (`python -m scraper check --recapture{where}`)"
    return "delete it to have it made again"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFile(f"{path} is corrupt ({exc}); {remedy(path)}") from None


class Workspace:
    """Paths of one dataset workspace."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def pages_dir(self) -> Path:
        return self.root / "pages"

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    @property
    def conventions_dir(self) -> Path:
        return self.root / "conventions"

    def convention_files(self) -> list[Path]:
        """The learned conventions, oldest first (c0001.json, c0002.json, ...)."""
        if not self.conventions_dir.is_dir():
            return []
        return sorted(self.conventions_dir.glob("c[0-9][0-9][0-9][0-9].json"))

    def latest_convention(self) -> Convention | None:
        """The convention the proposal follows now: the newest one learned, if any."""
        files = self.convention_files()
        if not files:
            return None
        try:
            return Convention.from_dict(read_json(files[-1]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFile(
                f"{files[-1]} is not a convention ({exc}); run `python -m annotate learn` "
                "to learn it again"
            ) from None

    def page_dir(self, page_id: str) -> Path:
        """The page's folder; ValueError for an id that is not a plain folder name (one that
        came from outside, such as a Label Studio task, could otherwise name any folder)."""
        if not is_plain_name(page_id):
            raise ValueError(f"{page_id!r} is not a page id")
        return self.pages_dir / page_id

    def screenshot(self, page_id: str) -> Path:
        return self.page_dir(page_id) / "screenshot.png"

    def page_json(self, page_id: str) -> Path:
        return self.page_dir(page_id) / "page.json"

    def boxes_json(self, page_id: str) -> Path:
        return self.page_dir(page_id) / "boxes.json"

    def preannotation_json(self, page_id: str) -> Path:
        return self.page_dir(page_id) / "preannotation.json"

    def annotation_json(self, page_id: str) -> Path:
        return self.page_dir(page_id) / "annotation.json"

    def page_ids(self) -> list[str]:
        """Page directories that are complete (temporary ones are skipped)."""
        if not self.pages_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.pages_dir.iterdir()
            if p.is_dir() and not p.name.startswith(TMP_PREFIX)
        )

    def ensure(self) -> Workspace:
        self.pages_dir.mkdir(parents=True, exist_ok=True)
        return self

    def clean_partial(self) -> int:
        """Remove page directories a killed run left half-written; returns how many."""
        removed = 0
        if self.pages_dir.is_dir():
            for p in self.pages_dir.iterdir():
                if p.name.startswith(TMP_PREFIX):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
                    removed += 1
        return removed

    @contextmanager
    def new_page_dir(self, page_id: str) -> Iterator[Path]:
        """Yield a temporary directory; on success it becomes pages/<page_id> in one rename.

        An existing page directory is replaced (a re-capture); on failure nothing changes.
        """
        self.ensure()
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{page_id}-", dir=self.pages_dir))
        try:
            tmp.chmod(0o777 & ~umask())  # mkdtemp's 0700, as for the files above
            yield tmp
            final = self.page_dir(page_id)
            if final.exists():
                old = final.with_name(f"{TMP_PREFIX}old-{page_id}-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
