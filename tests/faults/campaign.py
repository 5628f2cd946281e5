"""Kill campaigns: a long command SIGKILLed at seeded random moments, rerun until it
completes, and its end state compared with an uninterrupted run's.

Shared by tests/faults/ (a bounded campaign in CI) and bench/faults.py (a longer one that
prints the table). Each stage starts from a copy of one prepared workspace, so the
uninterrupted run and every interrupted one see the same inputs.

What the comparison leaves out, and why (everything else must be equal byte for byte):
- catalog columns that say when or in which run something happened (`captured_at`,
  `created_at`, `hashed_at`, `started_at`, `finished_at`, `pulled_at`, `run_id`,
  `generation`, `crawl_id`, the frontier's `added_at`, `updated_at`, `next_at` and
  `attempts`): a rerun is another run at another time, and a capture cut by a kill counts
  as an attempt; `pushed_at`, and Label Studio's own ids (`project_id`, `task_id`): each
  push trial has a project of its own, compared by its tasks' data and predictions;
- Label Studio's side (push and pull, in studio.py), read back from the server per page id:
  every task's data, its predictions' model version, score and results, its annotations'
  results. Left out: the server's ids (task, prediction, annotation, project) and times
  (created, updated, lead time), which it assigns itself and which differ between any two
  projects; the workspace's folder inside the task's image address, as each push trial
  pushes its own workspace to its own project (the pages' folders below it are compared);
  the order of tasks, predictions and results, which is the server's. Pull trials all read
  one project, pushed once and annotated before the campaign: what a pull writes is
  compared as files and rows, and the project must be left as it was;
- dedupe's history tables (`dedupe_runs`, `dedupe_decisions`, `dedupe_skipped`) and the
  duplicate rows a rerun adds to `dedupe_edges` (edges are compared as a set): they record
  the runs themselves, and an interrupted stage has more of them;
- page.json's `captured_at`, `timings` and `crawl_id`, by contract a record of the capture;
- the catalog file itself (its bytes depend on page reuse inside SQLite) and logs;
- train: model.json (it records the run's date and seconds) and curves.png (drawn from the
  same history, seconds included); the weights are compared to float tolerance, as a
  resumed run reloads its optimiser state and may add in another order. What else is
  checked there: one model version only, and no checkpoint or half-written version left;
  the page cache (`models/.cache`) is not a version: derived from the release, keyed by
  its checksums and safe to delete, a killed run may leave fewer entries in it.

Besides the end state, every trial checks that nothing of its killed runs lives on: a
process carrying the workspace's token (a crawl's browsers) still running is a difference.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from catalog import Catalog, Workspace
from export.synthetic import add_page
from scraper.orphans import owned_groups, owner_token

ROOT = Path(__file__).resolve().parents[2]

RUN_COLUMNS = {"captured_at", "created_at", "hashed_at", "started_at", "finished_at",
               "pulled_at", "run_id", "generation", "crawl_id", "next_at", "attempts",
               "added_at", "updated_at", "pushed_at", "project_id", "task_id"}
HISTORY_TABLES = {"dedupe_runs", "dedupe_decisions", "dedupe_skipped", "meta"}
PAGE_JSON_RUN_FIELDS = {"captured_at", "timings", "crawl_id"}
# The catalog is compared by its rows; the crawl's lock and its list of running browsers
# hold process ids.
SKIPPED_FILES = {"catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", ".crawl.lock",
                 ".crawl-browsers"}


# -- what a stage leaves behind ---------------------------------------------------------------


def file_state(root: Path) -> dict[str, str]:
    """SHA-256 of every file under the workspace (page.json without its run fields)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name in SKIPPED_FILES or path.suffix == ".log":
            continue
        data = path.read_bytes()
        if path.name == "page.json":
            doc = {k: v for k, v in json.loads(data).items() if k not in PAGE_JSON_RUN_FIELDS}
            data = json.dumps(doc, sort_keys=True).encode()
        out[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def catalog_state(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows without run columns, as sorted sets (history tables left out)."""
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        out = {}
        for table in sorted(set(tables) - HISTORY_TABLES):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")
                    if r[1] not in RUN_COLUMNS]
            rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(set(rows), key=repr)
        return out
    finally:
        conn.close()


def end_state(ws: Path) -> tuple[dict[str, str], dict[str, list[tuple]]]:
    return file_state(ws), catalog_state(ws / "catalog.sqlite")


def differences(a: tuple, b: tuple) -> list[str]:
    """What differs between two end states, in words (empty: the same)."""
    (fa, ca), (fb, cb) = a, b
    out = [f"file {k}: {'missing' if k not in fb else 'extra' if k not in fa else 'differs'}"
           for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    out += [f"catalog table {t}: {len(ca.get(t, []))} rows vs {len(cb.get(t, []))}, differing"
            for t in sorted(set(ca) | set(cb)) if ca.get(t) != cb.get(t)]
    return out


# -- the workspaces the stages start from ---------------------------------------------------


def _boxes(seed: int, width: int, height: int) -> dict:
    rng = random.Random(seed)
    boxes = [{"id": 0, "kind": "block", "tag": "body", "bbox": [0, 0, width, height],
              "visible": True, "depth": 0, "parent": None}]
    y = 10
    while y < height - 40:
        block = len(boxes)
        boxes.append({"id": block, "kind": "block", "tag": "div", "bbox": [10, y, width - 20, 90],
                      "visible": True, "depth": 1, "parent": 0})
        for line in range(3):
            boxes.append({"id": len(boxes), "kind": "text", "parent": block, "depth": 2,
                          "bbox": [20, y + 8 + 24 * line, width - 60, 16], "visible": True,
                          "font_size": 14.0, "text": " ".join(
                              f"w{rng.randrange(9000)}" for _ in range(10))})
        y += 110
    return {"schema": 1, "width": width, "height": height, "boxes": boxes}


def annotated_workspace(root: Path, pages: int, seed: int = 0) -> Workspace:
    """Captured, annotated pages of several sites, some of them near copies of others."""
    ws = Workspace(root)
    ws.ensure()
    with Catalog(ws.catalog_path) as cat:
        for i in range(pages):
            copy_of = i - 1 if i % 5 == 4 else i  # every fifth page repeats the one before
            pid = add_page(ws, cat, f"https://site{i % 7}.org/p{i}", seed=seed * 1000 + copy_of,
                           width=320, height=1200, textured=True)
            ws.boxes_json(pid).write_text(json.dumps(_boxes(seed * 1000 + copy_of, 320, 1200)))
    return ws


# -- kills ------------------------------------------------------------------------------------


@dataclass
class Trial:
    stage: str
    kills: int = 0  # SIGKILLs that hit a running command
    survived: bool = False  # the end state equals the uninterrupted run's
    reruns: int = 0
    differences: list[str] = field(default_factory=list)


def run_command(cmd: list[str], timeout: float = 600, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**(env or os.environ), "PYTHONPATH": str(ROOT)})


def run_killed(cmd: list[str], at: float, env: dict[str, str] | None = None) -> bool:
    """Start the command in its own process group and SIGKILL the group after `at` seconds
    (its browsers with it); True when it was still running then."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**(env or os.environ), "PYTHONPATH": str(ROOT)},
                            start_new_session=True)
    try:
        proc.wait(timeout=at)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


@dataclass
class Stage:
    """A long command: how to make its starting workspace and how to run it there.

    `completed`: whether a killed run got as far as its product (None: only an exit code
    of 0 says so). An export killed after its release folder was renamed into place has
    made that release; running it again would make the next one, as any export does.
    `settle`: what the next command of the same stage does first, before its own work
    (the export records a finished release folder that a kill left unrecorded)."""

    name: str
    prepare: Callable[[Path], None]  # makes the starting workspace at the path
    command: Callable[[Path], list[str]]
    completed: Callable[[Path], bool] | None = None
    settle: Callable[[Path], None] | None = None
    env: dict[str, str] | None = None  # the command's environment (default: this one's)
    # Where the end state is not only the workspace's (push: the Label Studio project):
    # what to compare, read from the workspace's path, and its differences in words.
    state: Callable[[Path], object] | None = None
    # Where bytes are not the measure (train: weights to float tolerance): the differences
    # between the reference workspace and a trial's, in words, instead of end_state's.
    compare: Callable[[Path, Path], list[str]] | None = None


def campaign(stage: Stage, base: Path, trials: int, kills_per_trial: int, seed: int,
             say: Callable[[str], None] = lambda s: None) -> tuple[float, list[Trial]]:
    """Reference run, then `trials` runs each killed `kills_per_trial` times at seeded random
    moments within the reference's duration and rerun to the end; (reference seconds, trials)."""
    pristine = base / f"{stage.name}-start"
    stage.prepare(pristine)
    reference = base / f"{stage.name}-reference"
    shutil.copytree(pristine, reference)
    t0 = time.monotonic()
    done = run_command(stage.command(reference), env=stage.env)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{stage.name} failed without faults: {done.stderr[-2000:]}")
    if stage.settle:
        stage.settle(reference)
    expected = None if stage.compare else end_state(reference)
    outside = stage.state(reference) if stage.state else None
    rng = random.Random(f"{stage.name}:{seed}")
    out = []
    for n in range(trials):
        ws = base / f"{stage.name}-trial{n}"
        shutil.copytree(pristine, ws)
        trial = Trial(stage.name)
        for _ in range(kills_per_trial):
            if stage.completed and stage.completed(ws):
                break
            if not run_killed(stage.command(ws), rng.uniform(0.05, seconds), stage.env):
                break  # it finished before the moment came: the command is done
            trial.kills += 1
        finished = None
        while not (stage.completed and stage.completed(ws)):
            trial.reruns += 1
            finished = run_command(stage.command(ws), env=stage.env)
            if finished.returncode == 0 or trial.reruns >= 3:
                break
        if stage.settle:
            stage.settle(ws)
        if finished is not None and finished.returncode != 0:
            trial.differences = [f"rerun failed: {finished.stderr.strip()[-300:]}"]
        elif stage.compare:
            trial.differences = stage.compare(reference, ws)
        else:
            trial.differences = differences(expected, end_state(ws))
            if stage.state and stage.state(ws) != outside:
                trial.differences.append(f"{stage.name}: the state outside the workspace "
                                         "differs")
        # Nothing of a killed run may live on: the browsers of a crawl carry the
        # workspace's token, and the rerun stops them; any still running is a leak.
        left = owned_groups(owner_token(Workspace(ws)))
        if left:
            trial.differences.append(f"{len(left)} browser process group(s) left running")
            for group in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
        trial.survived = not trial.differences
        say(f"{stage.name} trial {n}: {trial.kills} kill(s), "
            f"{'same end state' if trial.survived else trial.differences[:3]}")
        out.append(trial)
        if trial.survived:
            shutil.rmtree(ws)  # a differing one stays for a person to look at
    return seconds, out


# -- the stages -------------------------------------------------------------------------------


def _module(*args: str) -> Callable[[Path], list[str]]:
    return lambda ws: [sys.executable, "-m", *args, "--workspace", str(ws)]


def _prepare_preannotate(pages: int) -> Callable[[Path], None]:
    return lambda root: annotated_workspace(root, pages) and None


def _prepare_export(pages: int) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        annotated_workspace(root, pages)
        proc = run_command([sys.executable, "-m", "dedupe", "run", "--workspace", str(root)])
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
    return prepare


def _release_made(ws: Path) -> bool:
    return (ws / "releases" / "v0001").is_dir()


def _record_releases(ws: Path) -> None:
    from export.history import read_history, reconcile

    with Catalog(ws / "catalog.sqlite") as cat:
        reconcile(cat, ws / "releases", read_history(cat, ws / "releases"))


def _prepare_crawl(pages: int) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        site = root.parent / "site"
        if not site.exists():
            site.mkdir(parents=True)
            names = [f"p{i:02d}.html" for i in range(pages)]
            for i, name in enumerate(names):
                links = "".join(f'<a href="{names[(i + k) % pages]}">next {k}</a> '
                                for k in (1, 3))
                (site / name).write_text(
                    f"<!doctype html><title>Page {i}</title><h1>Page {i}</h1>"
                    f"<p>{'Lorem ipsum dolor sit amet. ' * (8 + i)}</p><p>{links}</p>",
                    encoding="utf-8")
            (site / "index.html").write_text(
                '<!doctype html><title>Index</title><a href="p00.html">start</a>',
                encoding="utf-8")
            # One server for the whole campaign: page ids hash the URL, port included, so
            # the uninterrupted run and every interrupted one must crawl the same address.
            handler = partial(_Quiet, directory=str(site))
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            (root.parent / "seed.txt").write_text(
                f"http://127.0.0.1:{server.server_address[1]}/\n")
        root.mkdir(parents=True)
        (root.parent / "crawl.toml").write_text(
            "[crawl]\nretries = 3\nbackoff = 0.2\n[capture]\ntimeout = 5.0\nimage_wait = 0.5\n")
    return prepare


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _crawl_command(ws: Path) -> list[str]:
    return [sys.executable, "-m", "scraper", "crawl", "--seeds", str(ws.parent / "seed.txt"),
            "--workspace", str(ws), "--config", str(ws.parent / "crawl.toml"), "--offline",
            "--max-pages", "500", "--no-robots"]


# Enough epochs that most of a run is training, not starting Python and reading pages: a
# kill at a random moment then mostly falls after a checkpoint, and the rerun resumes.
TRAIN_ARGS = ("--epochs", "16", "--working-width", "128", "--crop", "64", "--batch", "4",
              "--threads", "1", "--seed", "3")


def _prepare_train(pages: int) -> Callable[[Path], None]:
    def prepare(root: Path) -> None:
        from catalog import Config
        from export.release import make_release
        from export.synthetic import draw_page

        ws = Workspace(root)
        ws.ensure()
        with Catalog(ws.catalog_path) as cat:
            for i in range(pages):
                img, _, masks = draw_page(192, 384, seed=i)
                img = img.copy()
                img[masks["interactive"] & ~masks["text"]] = (70, 130, 200)
                add_page(ws, cat, f"https://www.site{i}.org/p{i}", seed=i, width=192,
                         height=384, pixels=img)
        cfg = Config()
        cfg.export.val_ratio = 0.4
        make_release(ws, cfg, log=lambda _: None)
    return prepare


def _checkpoints(ws: Path) -> list[Path]:
    return sorted((ws / "models").glob(".run-*/checkpoint.pt"))


def _train_command(ws: Path) -> list[str]:
    # A run stopped after a checkpoint refuses to start over without --resume, and
    # --resume refuses when there is nothing to resume: the person's rerun picks the one.
    resume = ["--resume"] if _checkpoints(ws) else []
    return [sys.executable, "-m", "model", "train", str(ws / "releases" / "v0001"),
            "--workspace", str(ws), *TRAIN_ARGS, *resume]


def _model_made(ws: Path) -> bool:
    return (ws / "models" / "m0001" / "model.json").is_file()


def _same_weights(reference: Path, ws: Path) -> list[str]:
    """The weights of m0001 to float tolerance; one version; nothing left half-done."""
    import numpy as np
    from safetensors.numpy import load_file

    out = []
    # The page cache (models/.cache) is derived from the release, keyed by its checksums and
    # safe to delete: an interrupted run may hold more or fewer entries, never other ones.
    versions = sorted(p.name for p in (ws / "models").iterdir() if p.name != ".cache")
    if versions != ["m0001"]:
        out.append(f"models holds {versions}, not one finished version")
    if not _model_made(ws):
        return out + ["no model was published"]
    a = load_file(str(reference / "models" / "m0001" / "model.safetensors"))
    b = load_file(str(ws / "models" / "m0001" / "model.safetensors"))
    if a.keys() != b.keys():
        return out + ["the weights have other tensors"]
    out += [f"weights {k} differ by up to {float(np.abs(a[k] - b[k]).max()):.2e}"
            for k in sorted(a) if not np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6)]
    return out


def stages(pages: int = 40, crawl_pages: int = 12, train_pages: int = 8) -> dict[str, Stage]:
    return {
        "preannotate": Stage("preannotate", _prepare_preannotate(pages),
                             _module("annotate", "preannotate")),
        "dedupe run": Stage("dedupe run", _prepare_preannotate(pages), _module("dedupe", "run")),
        "export": Stage("export", _prepare_export(pages), _module("export"),
                        completed=_release_made, settle=_record_releases),
        "crawl": Stage("crawl", _prepare_crawl(crawl_pages), _crawl_command),
        "train": Stage("train", _prepare_train(train_pages), _train_command,
                       completed=_model_made, compare=_same_weights),
    }
