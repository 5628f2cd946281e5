"""A real Label Studio server for the test session, and synthetic workspaces to push.

The server is started once per session by the project's own start code (the same as `make
labelstudio`) on a free loopback port, with its data dir, local-files root and token under a
temporary directory. Without `.venv-labelstudio` the tests skip; under CI=1 they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, ImageDraw

from annotate.studio.client import sdk_headers
from catalog.db import Catalog
from catalog.records import PageRecord
from catalog.workspace import Workspace, write_json_atomic

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StudioServer:
    url: str
    api_key: str
    port: int
    data_dir: Path
    document_root: Path
    env_file: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a command that talks to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
        env.update(
            LABEL_STUDIO_URL=self.url,
            LABEL_STUDIO_API_KEY=self.api_key,
            LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(self.document_root),
        )
        env.update(extra)
        return env

    def restart(self) -> None:
        from annotate.studio import server

        server.start(self.port, self.data_dir, self.document_root, self.env_file, quiet=True)

    def kill(self) -> None:
        from annotate.studio import server

        server.kill(self.data_dir)

    def stop(self) -> None:
        from annotate.studio import server

        server.stop(self.data_dir, quiet=True)


# Where pytest's cache (`config.cache.mkdir`) keeps the migrated template, for starts made
# outside pytest (bench/faults.py): they share it with the tests.
TEMPLATES = ROOT / ".pytest_cache" / "d" / "labelstudio-template"


def studio_bin() -> Path:
    """The label-studio executable the project's start code would run (it may be missing)."""
    from annotate.studio import server

    return Path(os.environ.get(server.BIN_VAR) or server.DEFAULT_BIN)


def _template_key(ls_bin: Path) -> str:
    site = sorted(ls_bin.parent.parent.glob("lib/python*/site-packages/label_studio-*.dist-info"))
    return site[-1].name if site else "label_studio"


def start_studio(base: Path, templates: Path = TEMPLATES) -> StudioServer:
    """A Label Studio started by the project's own start code on a free loopback port, its
    data dir, local-files root and token under `base` (made empty by the caller); `stop()`
    ends it."""
    from annotate.studio import server

    data_dir, root, env_file = base / "data", base / "root", base / ".env"
    root.mkdir(parents=True)
    port = server.free_port()
    # The first start of a data dir spends about 90 s in migrations: keep an empty, migrated
    # data dir (and the token made for it) in pytest's cache and start from a copy of it.
    template = templates / _template_key(studio_bin())
    if (template / "data" / "label_studio.sqlite3").exists():
        shutil.copytree(template / "data", data_dir)
        shutil.copy2(template / ".env", env_file)
        (data_dir / server.STATE_FILE).unlink(missing_ok=True)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LABEL_STUDIO_")}
    try:
        info = server.start(port, data_dir, root, env_file, timeout=400, quiet=True)
        if not (template / "data").exists():
            server.stop(data_dir, quiet=True)
            tmp = template.with_name(template.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(data_dir, tmp / "data")
            shutil.copy2(env_file, tmp / ".env")
            tmp.rename(template)
            info = server.start(port, data_dir, root, env_file, timeout=400, quiet=True)
        key = server.read_env_file(env_file)["LABEL_STUDIO_API_KEY"]
    finally:
        os.environ.update(saved)
    return StudioServer(info.url, key, port, data_dir, root, env_file)


@pytest.fixture(scope="session")
def labelstudio(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[StudioServer]:
    ls_bin = studio_bin()
    if not ls_bin.exists():
        why = f"{ls_bin} is missing (make labelstudio-install)"
        if os.environ.get("CI"):
            pytest.fail(f"Label Studio is required in CI: {why}")
        pytest.skip(why)
    srv = start_studio(tmp_path_factory.mktemp("labelstudio"),
                       request.config.cache.mkdir("labelstudio-template"))
    yield srv
    srv.stop()


class Api:
    """Label Studio's REST API as the tests read it: projects, tasks, predictions and
    annotations, and an annotation made as a person would."""

    def __init__(self, srv: StudioServer):
        self.url = srv.url
        self.s = requests.Session()
        self.s.headers.update(sdk_headers(srv.url, srv.api_key))

    def get(self, path: str, **params):
        r = self.s.get(self.url + path, params=params, timeout=60)
        r.raise_for_status()
        return r.json()

    def project(self, title: str) -> dict:
        found = [p for p in self.get("/api/projects", page_size=1000)["results"]
                 if p["title"] == title]
        assert len(found) == 1, f"{len(found)} projects titled {title}"
        return found[0]

    def tasks(self, project_id: int) -> list[dict]:
        return self.get("/api/tasks", project=project_id, page_size=1000,
                        fields="task_only")["tasks"]

    def predictions(self, task_id: int) -> list[dict]:
        return self.get("/api/predictions", task=task_id)

    def annotations(self, task_id: int) -> list[dict]:
        return self.get(f"/api/tasks/{task_id}/annotations/")

    def annotate(self, task_id: int, result: list[dict], lead_time: float) -> dict:
        r = self.s.post(f"{self.url}/api/tasks/{task_id}/annotations/",
                        json={"result": result, "lead_time": lead_time}, timeout=60)
        r.raise_for_status()
        return r.json()


def run_annotate(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
                 ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "annotate", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=timeout,
    )


def write_config(path: Path, **sections: dict) -> Path:
    """A pipeline.toml with the given [section] keys."""
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


# -- synthetic workspaces -------------------------------------------------------------------

REGION_LAYOUT = [("header", 0.0, 0.06), ("navigation", 0.06, 0.1), ("main", 0.1, 0.9),
                 ("footer", 0.9, 1.0)]


def synthetic_page(width: int, height: int, seed: int) -> tuple[Image.Image, list[dict],
                                                                 dict[str, np.ndarray]]:
    """A drawn page, its proposed regions and its text/image/interactive masks."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    text = np.zeros((height, width), np.uint8)
    image = np.zeros((height, width), np.uint8)
    interactive = np.zeros((height, width), np.uint8)
    regions = []
    for label, top, bottom in REGION_LAYOUT:
        y0, y1 = int(top * height), int(bottom * height)
        regions.append({"label": label, "bbox": [0, y0, width, y1 - y0],
                        "score": round(float(rng.uniform(0.5, 1.0)), 3), "source": "landmark"})
        shade = {"header": "#dde", "navigation": "#ded", "main": "#fff", "footer": "#eee"}[label]
        draw.rectangle([0, y0, width - 1, y1 - 1], fill=shade)
    # Text comes as one box per line (as the capture's Range.getClientRects gives it), with
    # links inside some lines, and the odd picture.
    y = int(0.12 * height)
    while y < int(0.88 * height) - 20:
        right = int(rng.integers(width // 2, width - 80))
        draw.rectangle([40, y, right, y + 13], fill="#333")
        text[y : y + 14, 40 : right + 1] = 255
        for _ in range(int(rng.integers(0, 3))):
            x0 = int(rng.integers(40, max(41, right - 100)))
            x1 = x0 + int(rng.integers(30, 100))
            draw.rectangle([x0, y, x1, y + 13], fill="#36c")
            interactive[y : y + 14, x0 : x1 + 1] = 255
        y += 22
        if rng.random() < 0.04:
            h = int(rng.integers(60, 160))
            draw.rectangle([60, y, 60 + 300, y + h], fill="#58a")
            image[y : y + h + 1, 60:361] = 255
            y += h + 10
    for i in range(6):
        x0 = 40 + i * 120
        y0 = int(0.065 * height)
        draw.rectangle([x0, y0, x0 + 90, y0 + 14], fill="#36c")
        interactive[y0 : y0 + 15, x0 : x0 + 91] = 255
    return img, regions, {"text": text, "image": image, "interactive": interactive}


def write_preannotation(ws: Workspace, page_id: str, width: int, height: int,
                        regions: list[dict], masks: dict[str, np.ndarray],
                        version: str = "test-1") -> None:
    folder = ws.page_dir(page_id)
    names = {}
    for cls, mask in masks.items():
        Image.fromarray(mask, mode="L").save(folder / f"mask_{cls}.png", compress_level=1)
        names[cls] = f"mask_{cls}.png"
    write_json_atomic(folder / "preannotation.json", {
        "schema": 1, "page_id": page_id, "width": width, "height": height,
        "regions": regions, "masks": names, "meta": {"version": version},
    })


def make_workspace(root: Path, n: int, sizes: list[tuple[int, int]] | None = None,
                   seed: int = 0, version: str = "test-1") -> Workspace:
    """n captured, pre-annotated pages recorded in a fresh catalog (no dedupe run)."""
    ws = Workspace(root).ensure()
    sizes = sizes or [(1280, 800), (1280, 3000)]
    with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
        for i in range(n):
            width, height = sizes[i % len(sizes)]
            page_id = f"p{seed:03d}{i:05d}"
            folder = ws.page_dir(page_id)
            folder.mkdir(parents=True, exist_ok=True)
            img, regions, masks = synthetic_page(width, height, seed * 100000 + i)
            img.save(folder / "screenshot.png", compress_level=1)
            rec = PageRecord(page_id=page_id, url=f"http://127.0.0.1/page{i}.html",
                             final_url=f"http://127.0.0.1/page{i}.html", status="ok",
                             viewport=[1280, 800], device_pixel_ratio=1.0, width=width,
                             height=height, captured_at=1.0)
            write_json_atomic(folder / "page.json", rec.to_dict())
            cat.record_page(rec, site="127.0.0.1", conn=conn)
            write_preannotation(ws, page_id, width, height, regions, masks, version)
    return ws
