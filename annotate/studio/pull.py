"""Pull: the annotators' work back into the workspace, incrementally.

A task's `updated_at` moves whenever one of its annotations is created or changed, so only
tasks whose stamp differs from the one recorded at the last pull are fetched. Each page gets
`annotation.json` (schema 1, like preannotation.json) with masks decoded from brush RLE into
PNGs beside it, and a row in the catalog's `annotations` table.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from catalog.config import Config
from catalog.db import Catalog
from catalog.records import is_plain_name
from catalog.workspace import Workspace, read_json, write_bytes_atomic, write_json_atomic

from .client import StudioClient
from .project import ensure_project, open_tables
from .tasks import annotation_document, parse_results

REVIEW_ACTIONS = {"accepted", "fixed_and_accepted"}


@dataclass
class PullResult:
    project_id: int
    fetched: int = 0  # tasks whose annotations were read
    written: int = 0  # annotation.json files written or replaced
    unchanged: int = 0
    skipped_only: int = 0  # tasks whose every annotation was skipped (cancelled)
    several: list[str] = field(default_factory=list)  # notes on pages annotated more than once
    unknown: int = 0  # tasks for pages this workspace does not have
    unreadable: list[str] = field(default_factory=list)  # annotations that could not be read
    seconds: float = 0.0


def mask_file(cls: str) -> str:
    return f"annotation_mask_{cls}.png"


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def choose(annotations: list[dict]) -> tuple[dict | None, int]:
    """The newest accepted (not skipped) annotation, and how many accepted there were."""
    accepted = [a for a in annotations if not a.get("was_cancelled")]
    if not accepted:
        return None, 0
    newest = max(accepted, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))
    return newest, len(accepted)


def is_reviewed(annotation: dict) -> bool:
    """Label Studio (community) has no review queue: an annotation counts as reviewed when
    it is marked ground truth, was accepted by a reviewer, or was last saved by someone other
    than its author."""
    if annotation.get("ground_truth") or annotation.get("last_action") in REVIEW_ACTIONS:
        return True
    by, author = annotation.get("updated_by"), annotation.get("completed_by")
    author_id = author.get("id") if isinstance(author, dict) else author
    return by is not None and author_id is not None and by != author_id


def pull(
    ws: Workspace,
    config: Config,
    client: StudioClient,
    say: Callable[[str], None] = print,
) -> PullResult:
    start = time.perf_counter()
    project = ensure_project(client, config, ws, create=False)
    pid = int(project["id"])
    result = PullResult(project_id=pid)
    users = {u["id"]: u.get("email") or u.get("username") or str(u["id"])
             for u in (client.get("/api/users") or [])}
    with Catalog(ws.catalog_path) as cat:
        open_tables(cat)
        stamps = {
            r["page_id"]: r["pulled_task_updated_at"]
            for r in cat.execute(
                "SELECT page_id, pulled_task_updated_at FROM studio_tasks WHERE project_id=?",
                (pid,),
            ).fetchall()
        }
        for task in client.iter_tasks(pid):
            page_id = (task.get("data") or {}).get("page_id")
            # A task's page id names a folder: only a plain name of a captured page will do
            # (a task made elsewhere could say "../releases/v0001").
            if not is_plain_name(page_id) or not ws.page_dir(page_id).is_dir():
                result.unknown += 1
                continue
            if not task.get("total_annotations") and not task.get("cancelled_annotations"):
                continue
            if stamps.get(page_id) == task.get("updated_at") and ws.annotation_json(page_id).exists():
                continue
            result.fetched += 1
            annotations = client.get(f"/api/tasks/{task['id']}/annotations/") or []
            chosen, accepted = choose(annotations)
            if chosen is None:
                result.skipped_only += 1
            else:
                if accepted > 1:
                    note = (f"page {page_id} has {accepted} annotations; kept #{chosen['id']}, "
                            "the newest")
                    result.several.append(note)
                    say(note)
                try:
                    wrote = _write(ws, cat, config, task, chosen, users)
                except ValueError as exc:
                    # One unreadable annotation costs its page, not the pull; its task is
                    # not marked pulled, so the next pull reads it again.
                    note = (f"page {page_id}: annotation #{chosen.get('id')} of task "
                            f"{task['id']} is unreadable ({exc}); open it in Label Studio, "
                            "save it again and pull")
                    result.unreadable.append(note)
                    say(note)
                    continue
                if wrote:
                    result.written += 1
                else:
                    result.unchanged += 1
            with cat.transaction() as conn:
                conn.execute(
                    "INSERT INTO studio_tasks(project_id, page_id, task_id, pushed_at,"
                    " pulled_task_updated_at) VALUES(?,?,?,?,?)"
                    " ON CONFLICT(project_id, page_id) DO UPDATE SET"
                    " pulled_task_updated_at=excluded.pulled_task_updated_at",
                    (pid, page_id, task["id"], 0.0, task.get("updated_at") or ""),
                )
    result.seconds = time.perf_counter() - start
    return result


def _write(ws: Workspace, cat: Catalog, config: Config, task: dict, ann: dict,
           users: dict[int, str]) -> bool:
    """Write annotation.json and its masks; False when the same annotation is already there."""
    page_id = task["data"]["page_id"]
    path = ws.annotation_json(page_id)
    if path.exists():
        try:
            old = read_json(path).get("meta", {})
        except ValueError:
            old = {}
        if old.get("annotation_id") == ann["id"] and old.get("updated_at") == ann.get("updated_at"):
            return False
    width = int(task["data"].get("width") or 0)
    height = int(task["data"].get("height") or 0)
    parsed = parse_results(ann.get("result") or [], width, height)
    folder = ws.page_dir(page_id)
    masks = {}
    for cls in config.labels.masks:
        mask = parsed.masks.get(cls)
        if mask is None:
            mask = np.zeros((height, width), dtype=np.uint8)
        write_bytes_atomic(folder / mask_file(cls), _png(mask))
        masks[cls] = mask_file(cls)
    author = ann.get("completed_by")
    author_id = author.get("id") if isinstance(author, dict) else author
    meta = {
        "annotator": users.get(author_id, str(author_id or "")),
        "lead_time": ann.get("lead_time"),
        "reviewed": is_reviewed(ann),
        "task_id": task["id"],
        "annotation_id": ann["id"],
        "updated_at": ann.get("updated_at") or "",
    }
    # Masks first, then the JSON that names them: a reader never sees a missing mask.
    write_json_atomic(
        path, annotation_document(page_id, width, height, parsed.regions, masks, meta)
    )
    with cat.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO annotations(page_id, task_id, annotation_id, annotator,"
            " lead_time, reviewed, updated_at, pulled_at) VALUES(?,?,?,?,?,?,?,?)",
            (page_id, task["id"], ann["id"], meta["annotator"], meta["lead_time"],
             int(meta["reviewed"]), meta["updated_at"], time.time()),
        )
    return True
