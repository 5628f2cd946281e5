"""The Label Studio stages of the kill campaign: `annotate push` and `annotate pull` against a
running server, their end state read back from it.

Shared by tests/faults/test_studio_proxy.py (on the session's server) and bench/faults.py
(on one it starts with the same code). What is compared on the server, and what is left out
and why, is in campaign.py's list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.labelstudio_fixture import Api, StudioServer, make_workspace, write_config

from .campaign import Stage, run_command

PUSH_SIZES = [(1280, 800), (1280, 2400)]


def _canonical(items: list) -> str:
    """A list of JSON objects as one string, in an order that does not depend on the server."""
    return json.dumps(sorted(json.dumps(i, sort_keys=True) for i in items))


def project_state(api: Api, title: str, ws: Path, document_root: Path) -> dict[str, list]:
    """page id -> each of its tasks (more than one is a difference): the task's data, its
    predictions' model version, score and results, and its annotations' results. Left out:
    Label Studio's ids and times, and the workspace's own folder in the image address
    (each run of a campaign has a workspace, and a project, of its own)."""
    folder = ws.resolve().relative_to(document_root.resolve()).as_posix()
    out: dict[str, list] = {}
    for task in api.tasks(api.project(title)["id"]):
        data = dict(task["data"])
        data["image"] = str(data.get("image", "")).replace(f"?d={folder}/", "?d=<workspace>/")
        preds = [{"model_version": p.get("model_version"), "score": p.get("score"),
                  "result": _canonical(p["result"])} for p in api.predictions(task["id"])]
        notes = [_canonical(a["result"]) for a in api.annotations(task["id"])]
        out.setdefault(data.get("page_id", ""), []).append(
            [json.dumps(data, sort_keys=True), _canonical(preds), sorted(notes)])
    return {k: sorted(v) for k, v in out.items()}


def push_stage(srv: StudioServer, config_dir: Path, pages: int = 24) -> Stage:
    """Push of `pages` pre-annotated pages to a project of the workspace's own name, batches
    small enough that a push is many requests; compared: the project's tasks."""
    api = Api(srv)
    cfg = write_config(config_dir / "push.toml", labelstudio={"batch_bytes": 200_000})

    def command(ws: Path) -> list[str]:
        return [sys.executable, "-m", "annotate", "push", "--config", str(cfg),
                "--workspace", str(ws), "--no-progress"]

    return Stage("push", lambda root: make_workspace(root, pages, sizes=PUSH_SIZES) and None,
                 command, env=srv.env(),
                 state=lambda ws: project_state(api, ws.name, ws, srv.document_root))


def pull_stage(srv: StudioServer, config_dir: Path, pages: int = 16,
               title: str = "pull-campaign") -> Stage:
    """Pull of `pages` tasks, each annotated once (its prediction without its last region),
    from one project pushed by the starting workspace: every run pulls the same
    annotations. Compared: the workspace (annotation files byte for byte, catalog rows) and
    the project, which a pull must leave as it was."""
    api = Api(srv)
    cfg = write_config(config_dir / f"{title}.toml", labelstudio={"project_title": title})
    first: list[Path] = []

    def prepare(root: Path) -> None:
        ws = make_workspace(root, pages, sizes=PUSH_SIZES)
        proc = run_command([sys.executable, "-m", "annotate", "push", "--config", str(cfg),
                            "--workspace", str(ws.root), "--no-progress"], env=srv.env())
        if proc.returncode != 0:
            raise RuntimeError(f"push before the pull failed: {proc.stderr[-2000:]}")
        for task in api.tasks(api.project(title)["id"]):
            result = api.predictions(task["id"])[0]["result"]
            api.annotate(task["id"], result[:-1], lead_time=3.0)
        first.append(root)  # the image addresses name the workspace that pushed them

    def command(ws: Path) -> list[str]:
        return [sys.executable, "-m", "annotate", "pull", "--config", str(cfg),
                "--workspace", str(ws)]

    return Stage("pull", prepare, command, env=srv.env(),
                 state=lambda ws: project_state(api, title, first[0], srv.document_root))


def studio_stages(srv: StudioServer, config_dir: Path, push_pages: int = 24,
                  pull_pages: int = 16) -> dict[str, Stage]:
    return {"push": push_stage(srv, config_dir, push_pages),
            "pull": pull_stage(srv, config_dir, pull_pages)}
