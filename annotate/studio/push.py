"""Push: one Label Studio task per canonical page, its pre-annotation as a prediction.

Idempotent and resumable: the project's tasks are listed first (page_id is in each task's
data), so pages the server already has are never imported again, even when the previous
push died between the server's commit and our catalog write. Tasks go in batches bounded by
size (under the server's upload limit) as plain JSON POSTs; a batch the server refuses is
split until the offending page is found and named.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from catalog.config import Config, LabelsConfig
from catalog.db import Catalog
from catalog.records import Annotation
from catalog.workspace import CorruptFile, Workspace, read_json, remedy

from .client import Rejected, StudioClient, StudioUnavailable
from .project import (
    document_root,
    ensure_project,
    ensure_storage,
    open_tables,
    remote_tasks,
)
from .tasks import PREANNOTATION, serialise, source_hash, task_data

MAX_TASKS_PER_BATCH = 100  # short requests: the next batch is built while one is on the wire


@dataclass
class PageToPush:
    page_id: str
    url: str
    width: int
    height: int


@dataclass
class Built:
    """A page turned into the JSON the server receives, serialised once."""

    page_id: str
    source_hash: str
    model_version: str
    body: bytes = b""
    task_id: int | None = None
    remote_data: dict | None = None  # the task's data on the server, for a page pushed before
    error: str = ""


@dataclass
class PushResult:
    project_id: int
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    without_preannotation: int = 0
    withdrawn: int = 0  # tasks deleted: their pages became duplicates and nobody worked on them
    kept_duplicates: list[str] = field(default_factory=list)  # such tasks' pages, a task each
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (page_id, why)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def page_rows(cat: Catalog) -> sqlite3.Cursor:
    """(page id, url, final url, width, height, canonical: None where dedupe has not seen
    it) of every page, in page id order: one pass with only the columns the push uses, so
    that a catalog of a million pages is listed in about a second."""
    return cat.execute(
        "SELECT p.page_id, p.url, p.final_url, p.width, p.height, d.canonical FROM pages p"
        " LEFT JOIN dup_groups d ON d.page_id = p.page_id ORDER BY p.page_id"
    )


def pages_to_push(cat: Catalog, ws: Workspace) -> tuple[list[PageToPush], set[str], list[str]]:
    """Captured pages with a screenshot, and the duplicates that dedupe dropped (left out)."""
    notes = []
    dropped_ids: set[str] = set()
    deduped = cat.execute("SELECT EXISTS(SELECT 1 FROM dup_groups)").fetchone()[0]
    if not deduped:
        notes.append("dedupe has not run, pushing every captured page")
    pages = []
    unseen = dropped = 0
    for pid, url, final_url, width, height, canonical in page_rows(cat):
        if not ws.screenshot(pid).is_file():
            continue
        if deduped:
            if canonical is None:
                unseen += 1
                continue
            if int(canonical) == 0:
                dropped += 1
                dropped_ids.add(pid)
                continue
        pages.append(PageToPush(pid, final_url or url, width, height))
    if dropped:
        notes.append(f"{dropped} duplicate pages left out (dedupe)")
    if unseen:
        notes.append(
            f"{unseen} pages captured after the last dedupe run were left out: run `make dedupe`"
        )
    return pages, dropped_ids, notes


def unknown_labels(pre: dict, labels: LabelsConfig) -> list[str]:
    """Labels of a pre-annotation that the label set lacks (the server would take them
    silently and the labelling UI would show regions nobody can select)."""
    found = [r.get("label") for r in pre.get("regions", []) if r.get("label") not in labels.regions]
    found += [m for m in (pre.get("masks") or {}) if m not in labels.masks]
    return sorted({str(x) for x in found})


def build(page: PageToPush, ws: Workspace, image_prefix: str, digest: str,
          labels: LabelsConfig | None = None) -> Built:
    """Read a page's files and serialise its task (with its prediction, if any)."""
    page_dir = ws.page_dir(page.page_id)
    ref = f"{image_prefix}/{page.page_id}/screenshot.png"
    width, height = page.width, page.height
    version = ""
    try:
        pre = None
        if digest:
            pre = read_json(page_dir / PREANNOTATION)
            try:
                Annotation.from_dict(pre)  # the shape, before anything is read from it
            except ValueError as exc:
                path = page_dir / PREANNOTATION
                raise CorruptFile(f"{path} is not a pre-annotation ({exc}); "
                                  f"{remedy(path)}") from None
            width, height = int(pre["width"]), int(pre["height"])
            version = str((pre.get("meta") or {}).get("version", "")) or "unknown"
            unknown = unknown_labels(pre, labels) if labels is not None else []
            if unknown:
                return Built(page.page_id, digest, version, error=(
                    f"labels {', '.join(unknown)} are not in the label set ([labels] in "
                    "pipeline.toml)"))
        data = {"data": task_data(page.page_id, ref, width, height, page.url)}
        return Built(page.page_id, digest, version, serialise(data, page_dir, pre))
    except (CorruptFile, ValueError, KeyError, TypeError, OSError) as exc:
        # TypeError: a value of the right shape but not a number (a bbox of strings).
        return Built(page.page_id, digest, version, error=f"{type(exc).__name__}: {exc}")


def batches(items: Iterator[Built], max_bytes: int, max_count: int) -> Iterator[list[Built]]:
    batch: list[Built] = []
    size = 2
    for item in items:
        if batch and (size + len(item.body) + 1 > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], 2
        batch.append(item)
        size += len(item.body) + 1
    if batch:
        yield batch


class Pusher:
    def __init__(self, client: StudioClient, cat: Catalog, config: Config, project_id: int):
        self.client = client
        self.cat = cat
        self.project_id = project_id
        self.retries = config.labelstudio.retries
        self.backoff = config.labelstudio.backoff
        # One try per request: the retries (and the look at what the server already took)
        # happen around whole batches, in _with_retries.
        self.quick = copy.copy(client)
        self.quick.retries = 0

    def _record(self, items: list[Built]) -> None:
        now = time.time()
        with self.cat.transaction() as conn:
            conn.executemany(
                "INSERT INTO studio_tasks(project_id, page_id, task_id, source_hash,"
                " model_version, pushed_at) VALUES(?,?,?,?,?,?)"
                " ON CONFLICT(project_id, page_id) DO UPDATE SET task_id=excluded.task_id,"
                " source_hash=excluded.source_hash, model_version=excluded.model_version,"
                " pushed_at=excluded.pushed_at",
                [(self.project_id, i.page_id, i.task_id, i.source_hash, i.model_version, now)
                 for i in items],
            )

    def _with_retries(
        self, send: Callable[[], None], before_retry: Callable[[], bool] | None = None
    ) -> None:
        """Call `send`, retrying with exponential backoff while the server is unavailable.

        `before_retry` runs before each new try; it returns False when nothing is left.
        """
        wait = self.backoff
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait)
                wait *= 2
                if before_retry is not None:
                    try:
                        if not before_retry():
                            return
                    except StudioUnavailable as exc:
                        last = exc
                        continue
            try:
                send()
                return
            except StudioUnavailable as exc:
                last = exc
        raise self.client.unavailable(_why(last), self.retries)

    def _with_resume(self, items: list[Built], send: Callable[[list[Built]], None]) -> None:
        """Send, and after a lost connection look at what the server took before resending."""
        pending = [items]

        def resume() -> bool:
            pending[0] = self._drop_already_there(pending[0])
            return bool(pending[0])

        self._with_retries(lambda: send(pending[0]), resume)

    def _drop_already_there(self, items: list[Built]) -> list[Built]:
        remote = remote_tasks(self.quick, self.project_id)
        done, rest = [], []
        for item in items:
            # A task and its prediction are committed in one transaction: a task that is
            # there came with its prediction.
            if item.page_id in remote:
                item.task_id = remote[item.page_id][0]["id"]
                done.append(item)
            else:
                rest.append(item)
        if done:
            self._record(done)
        return rest

    def import_tasks(self, items: list[Built], rejected: list[tuple[str, str]]) -> int:
        """Import a batch; a refused batch is halved until the refused page is alone."""
        created = 0

        def send(batch: list[Built]) -> None:
            nonlocal created
            body = b"[" + b",".join(i.body for i in batch) + b"]"
            try:
                resp = self.quick.request(
                    "POST", f"/api/projects/{self.project_id}/import",
                    params={"return_task_ids": "true"}, data=body,
                )
            except Rejected as exc:
                # 4xx is a refused payload; a body over the upload limit comes back as 500.
                if len(batch) == 1:
                    rejected.append((batch[0].page_id, f"HTTP {exc.status}: {exc.detail}"))
                    return
                half = len(batch) // 2
                self._with_resume(batch[:half], send)
                self._with_resume(batch[half:], send)
                return
            ids = resp.get("task_ids") or []
            if len(ids) != len(batch):
                raise StudioUnavailable(
                    f"Label Studio answered {len(ids)} task ids for {len(batch)} tasks"
                )
            for item, tid in zip(batch, ids, strict=True):
                item.task_id = tid
            self._record(batch)
            created += len(batch)

        self._with_resume(items, send)
        return created

    def replace_predictions(self, items: list[Built], rejected: list[tuple[str, str]]) -> int:
        """Delete a task's predictions, then add the new one; rerunning it is harmless."""
        replaced = 0

        def send(batch: list[Built]) -> None:
            nonlocal replaced
            quick = self.quick
            payload = []
            for item in batch:
                for old in quick.get("/api/predictions", task=item.task_id) or []:
                    try:
                        quick.request("DELETE", f"/api/predictions/{old['id']}")
                    except Rejected as exc:
                        if exc.status != 404:
                            raise
                task = json.loads(item.body)
                if item.remote_data is not None and task["data"] != item.remote_data:
                    # Captured again (another size): the labelling UI must scale to it.
                    quick.request("PATCH", f"/api/tasks/{item.task_id}/",
                                  json_body={"data": task["data"]})
                for pred in task.get("predictions", []):
                    payload.append({"task": item.task_id, **pred})
            if payload:
                body = json.dumps(payload).encode()
                try:
                    quick.request(
                        "POST", f"/api/projects/{self.project_id}/import/predictions", data=body
                    )
                except Rejected as exc:
                    if len(batch) == 1:
                        rejected.append((batch[0].page_id, f"HTTP {exc.status}: {exc.detail}"))
                        return
                    half = len(batch) // 2
                    send(batch[:half])
                    send(batch[half:])
                    return
            self._record(batch)
            replaced += len(batch)

        self._with_retries(lambda: send(items))
        return replaced


def _worked_on(task: dict) -> bool:
    # Submitted or skipped; a draft nobody submitted is not in what the API tells others.
    return bool(task.get("total_annotations") or task.get("cancelled_annotations"))


def withdraw_duplicates(client: StudioClient, remote: dict[str, list[dict]], dropped: set[str],
                        result: PushResult) -> None:
    """Delete the tasks of pages that dedupe dropped after they were pushed (a later crawl
    found their original), so that nobody spends time on them; a task somebody already
    annotated or skipped is kept and named (export leaves its page out anyway). Each task
    is asked for again just before it goes, so one annotated since the listing stays.
    Withdrawn pages leave `remote`; their catalog rows go with the other vanished tasks."""
    for page_id in sorted(dropped & remote.keys()):
        tasks = remote[page_id]
        kept = [t for t in tasks if _worked_on(t) or _worked_on(_fresh(client, t))]
        if kept:
            result.kept_duplicates += [page_id] * len(kept)
            continue
        for task in tasks:
            try:
                client.request("DELETE", f"/api/tasks/{task['id']}/")
            except Rejected as exc:
                if exc.status != 404:  # already gone is what was wanted
                    raise
            result.withdrawn += 1
        del remote[page_id]


def _fresh(client: StudioClient, task: dict) -> dict:
    try:
        return client.get(f"/api/tasks/{task['id']}/") or {}
    except Rejected as exc:
        if exc.status == 404:
            return {}
        raise


def _why(exc: Exception | None) -> str:
    text = str(exc or "")
    return text[text.find("(") + 1 : text.find(")")] if "(" in text else "no answer"


def push(
    ws: Workspace,
    config: Config,
    client: StudioClient,
    update_config: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> PushResult:
    start = time.perf_counter()
    with Catalog(ws.catalog_path) as cat:
        open_tables(cat)
        pages, dropped, notes = pages_to_push(cat, ws)
        for note in notes:
            say(note)
        project = ensure_project(client, config, ws, update_config=update_config)
        pid = int(project["id"])
        result = PushResult(project_id=pid, notes=notes)
        prefix = ensure_storage(client, pid, ws, document_root(config, client))
        remote = remote_tasks(client, pid)
        withdraw_duplicates(client, remote, dropped, result)
        doubled = [p for p, tasks in remote.items() if len(tasks) > 1]
        if doubled:
            say(f"warning: {len(doubled)} pages have more than one task in the project "
                f"(e.g. {doubled[0]}); they were imported by something else")
        local = {
            r["page_id"]: r
            for r in cat.execute(
                "SELECT * FROM studio_tasks WHERE project_id=?", (pid,)
            ).fetchall()
        }
        gone = [p for p in local if p not in remote]
        if gone:
            with cat.transaction() as conn:
                conn.executemany(
                    "DELETE FROM studio_tasks WHERE project_id=? AND page_id=?",
                    [(pid, p) for p in gone],
                )
        new, changed = [], []
        with ThreadPoolExecutor(max_workers=4) as pool:
            digests = dict(zip(
                (p.page_id for p in pages),
                pool.map(lambda p: source_hash(ws.page_dir(p.page_id)), pages),
                strict=True,
            ))
        for page in pages:
            digest = digests[page.page_id]
            if not digest:
                result.without_preannotation += 1
            if page.page_id not in remote:
                new.append(page)
                continue
            row = local.get(page.page_id)
            task_id = remote[page.page_id][0]["id"]
            if row is not None and row["source_hash"] == digest and row["task_id"] == task_id:
                result.unchanged += 1
            else:
                changed.append((page, task_id))
        if result.without_preannotation:
            say(f"{result.without_preannotation} pages have no pre-annotation yet (run "
                "`python -m annotate preannotate`); they are pushed without a prediction")
        pusher = Pusher(client, cat, config, pid)
        total = len(new) + len(changed)
        with _progress(total, progress) as bar:
            def built(items: list[PageToPush]) -> Iterator[Built]:
                # Pages are read and encoded in threads (numpy, zlib and sockets release the
                # GIL) while the previous batch is on the wire; a window bounds the memory.
                with ThreadPoolExecutor(max_workers=2) as pool:
                    for b in _bounded_map(
                        pool, lambda p: build(p, ws, prefix, digests[p.page_id], config.labels), items,
                        window=2 * MAX_TASKS_PER_BATCH,
                    ):
                        if b.error:
                            result.rejected.append((b.page_id, b.error))
                            bar.advance(1, errors=len(result.rejected))
                            continue
                        yield b

            for batch in batches(
                built(new), config.labelstudio.batch_bytes, MAX_TASKS_PER_BATCH
            ):
                result.created += pusher.import_tasks(batch, result.rejected)
                bar.advance(len(batch), errors=len(result.rejected))
            task_ids = {p.page_id: t for p, t in changed}
            data = {p.page_id: remote[p.page_id][0].get("data") for p, _ in changed}
            for batch in batches(
                built([p for p, _ in changed]), config.labelstudio.batch_bytes, 50
            ):
                for item in batch:
                    item.task_id = task_ids[item.page_id]
                    item.remote_data = data[item.page_id]
                result.replaced += pusher.replace_predictions(batch, result.rejected)
                bar.advance(len(batch), errors=len(result.rejected))
        versions = {
            r[0] for r in cat.execute(
                "SELECT DISTINCT model_version FROM studio_tasks WHERE project_id=? AND"
                " model_version != ''", (pid,)
            ).fetchall()
        }
    if len(versions) == 1 and project.get("model_version") != next(iter(versions)):
        # The labelling UI shows the predictions of the project's model version.
        client.request("PATCH", f"/api/projects/{pid}",
                       json_body={"model_version": next(iter(versions))})
    result.seconds = time.perf_counter() - start
    return result


def _bounded_map(pool: ThreadPoolExecutor, fn: Callable, items: list, window: int) -> Iterator:
    """pool.map in order, with at most `window` results waiting (pool.map submits them all)."""
    pending: deque = deque()
    it = iter(items)
    for item in it:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            break
    while pending:
        yield pending.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))


class _Bar:
    def __init__(self, progress, task_id):
        self.progress = progress
        self.task_id = task_id
        self.done = 0
        self.start = time.perf_counter()

    def advance(self, n: int, errors: int = 0) -> None:
        self.done += n
        if self.progress is not None:
            rate = self.done / max(time.perf_counter() - self.start, 1e-6)
            self.progress.update(self.task_id, advance=n, errors=errors, rate=rate)


class _progress:
    """A rich progress bar (pages done, rate, errors), or nothing when not wanted."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled and total > 0
        self.progress = None

    def __enter__(self) -> _Bar:
        if not self.enabled:
            return _Bar(None, None)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("push"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} tasks/s"),
            TextColumn("errors {task.fields[errors]}"), TimeElapsedColumn(),
        )
        self.progress.start()
        tid = self.progress.add_task("push", total=self.total, errors=0, rate=0.0)
        return _Bar(self.progress, tid)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def describe(result: PushResult, url: str, ws_root: Path) -> list[str]:
    lines = [
        f"project {result.project_id} at {url}/projects/{result.project_id}: "
        f"{result.created} tasks created, {result.replaced} predictions replaced, "
        f"{result.unchanged} unchanged ({result.seconds:.1f} s)"
    ]
    if result.withdrawn:
        lines.append(f"{result.withdrawn} tasks withdrawn: dedupe dropped their pages as "
                     "duplicates after they were pushed")
    if result.kept_duplicates:
        lines.append(
            f"{len(result.kept_duplicates)} tasks kept although dedupe dropped their pages as "
            f"duplicates (e.g. {result.kept_duplicates[0]}): somebody worked on them; "
            "export leaves these pages out"
        )
    for page_id, why in result.rejected:
        lines.append(
            f"page {page_id} was not pushed ({why}); fix "
            f"{ws_root / 'pages' / page_id / 'preannotation.json'} and push again"
        )
    return lines
