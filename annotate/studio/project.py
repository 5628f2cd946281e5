"""The Label Studio side of a workspace: its project, its local-files storage, its task table.

Our private table `studio_tasks` maps a page to its task in a project and remembers the
digest of the pre-annotation that was sent, so a second push sends nothing new and a changed
pre-annotation replaces the task's prediction.
"""

from __future__ import annotations

import os
from pathlib import Path

from catalog.config import Config
from catalog.db import Catalog
from catalog.workspace import Workspace

from .client import Rejected, StudioClient, StudioError
from .config import config_mismatch, labelling_config
from .env import ROOT_VAR

TASKS_DDL = """
CREATE TABLE IF NOT EXISTS studio_tasks (
    project_id INTEGER NOT NULL,
    page_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    source_hash TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '',
    pushed_at REAL NOT NULL,
    pulled_task_updated_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project_id, page_id)
);
"""


def open_tables(cat: Catalog) -> None:
    cat.ensure_tables(TASKS_DDL)


def project_title(config: Config, ws: Workspace) -> str:
    """The configured title, else the workspace's name (the dataset name by default)."""
    return config.labelstudio.project_title or ws.root.resolve().name


def find_project(client: StudioClient, title: str) -> dict | None:
    body = client.get("/api/projects", title=title, page_size=1000)
    projects = body.get("results", []) if isinstance(body, dict) else body
    matches = [p for p in projects if p.get("title") == title]
    return min(matches, key=lambda p: p["id"]) if matches else None


def ensure_project(
    client: StudioClient, config: Config, ws: Workspace, update_config: bool = False,
    create: bool = True,
) -> dict:
    """The workspace's project, created with the label set's config when absent.

    An existing project whose labels differ from the label set is refused unless asked to
    migrate: annotations made with other labels would be read back wrongly.
    """
    title = project_title(config, ws)
    wanted = labelling_config(config.labels)
    project = find_project(client, title)
    if project is None:
        if not create:
            raise StudioError(
                f"Label Studio has no project {title!r}: run `python -m annotate push` first"
            )
        return client.request(
            "POST", "/api/projects",
            json_body={"title": title, "label_config": wanted,
                       "description": "web page segmentation (pushed by webseg-pipeline)"},
        )
    problem = config_mismatch(project.get("label_config", ""), config.labels)
    if problem and not update_config:
        raise StudioError(
            f"project {title!r} (id {project['id']}) does not match the label set: {problem}. "
            "To migrate, run `python -m annotate push --update-config` (labels that "
            "annotations already use cannot be removed), or set [labelstudio] project_title "
            "in pipeline.toml to push into a new project"
        )
    if problem or project.get("label_config", "").strip() != wanted.strip():
        try:
            project = client.request(
                "PATCH", f"/api/projects/{project['id']}", json_body={"label_config": wanted}
            )
        except Rejected as exc:
            raise StudioError(
                f"Label Studio refused the new labelling config for project {title!r}: "
                f"{exc.detail}"
            ) from None
    return project


def document_root(config: Config, client: StudioClient) -> Path:
    value = client.creds.document_root or os.environ.get(ROOT_VAR, "")
    return Path(value).resolve() if value else Path(config.dataset.root).resolve()


def ensure_storage(client: StudioClient, project_id: int, ws: Workspace, root: Path) -> str:
    """Connect the workspace's pages as local files; returns the prefix of image refs."""
    pages = ws.pages_dir.resolve()
    try:
        rel = pages.relative_to(root)
    except ValueError:
        raise StudioError(
            f"the workspace {pages} is outside the server's local-files root {root}: put the "
            f"workspace under it, or restart the server with {ROOT_VAR} covering it"
        ) from None
    storages = client.get("/api/storages/localfiles", project=project_id) or []
    if not any(Path(s.get("path", "")).resolve() == pages for s in storages):
        try:
            client.request(
                "POST", "/api/storages/localfiles",
                json_body={"project": project_id, "path": str(pages), "title": "pages",
                           "use_blob_urls": False, "regex_filter": ""},
            )
        except Rejected as exc:
            raise StudioError(
                f"Label Studio refused {pages} as local-files storage ({exc.detail}); its "
                f"{ROOT_VAR} must be a parent folder of the workspace"
            ) from None
    return f"/data/local-files/?d={rel.as_posix()}"


def remote_tasks(client: StudioClient, project_id: int) -> dict[str, list[dict]]:
    """page_id -> the project's tasks for it (more than one means someone imported twice)."""
    found: dict[str, list[dict]] = {}
    for task in client.iter_tasks(project_id):
        pid = (task.get("data") or {}).get("page_id")
        if pid:
            found.setdefault(pid, []).append(task)
    return found
