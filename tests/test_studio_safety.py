"""What comes back from Label Studio is data, never a path or a place to print the key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

import annotate.studio.pull as pull_module
from annotate.studio.client import Rejected, StudioClient
from annotate.studio.env import Credentials
from catalog.config import Config
from catalog.records import Annotation
from catalog.workspace import Workspace, read_json

SECRET_KEY = "0123456789abcdef-very-secret-token"


class FakeStudio:
    """The two calls pull makes, answering with the given tasks and annotations."""

    def __init__(self, tasks: list[dict], results: dict[int, object] | None = None) -> None:
        self.tasks = tasks
        self.results = results or {}

    def get(self, path: str, **params: object) -> object:
        if path == "/api/users":
            return [{"id": 1, "email": "a@example.org"}]
        task_id = int(path.split("/")[3])
        result = self.results.get(task_id, [
            {"type": "rectanglelabels", "original_width": 100, "original_height": 100,
             "value": {"x": 0, "y": 0, "width": 50, "height": 50,
                       "rectanglelabels": ["../../../etc/passwd"]}}])
        return [{"id": 100 + task_id, "completed_by": 1, "updated_at": "2026-01-01",
                 "result": result}]

    def iter_tasks(self, project_id: int) -> Iterator[dict]:
        yield from self.tasks


def test_task_page_ids_that_climb_out_of_the_pages_folder_are_ignored(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws").ensure()
    (ws.root / "releases" / "v0001").mkdir(parents=True)
    ws.page_dir("abc123").mkdir()
    Image.new("RGB", (100, 100), "white").save(ws.screenshot("abc123"))
    monkeypatch.setattr(pull_module, "ensure_project", lambda *a, **k: {"id": 1})
    outside = tmp_path / "outside"  # absolute: pages_dir / "/x" is "/x"
    outside.mkdir()
    evil = ["..", "../releases/v0001", "../../outside", "abc123/../..", str(outside), "", None]
    tasks = [{"id": i, "total_annotations": 1, "updated_at": "x",
              "data": {"page_id": pid, "width": 100, "height": 100}}
             for i, pid in enumerate(["abc123", *evil])]
    result = pull_module.pull(ws, Config(), FakeStudio(tasks), say=lambda s: None)
    assert result.written == 1 and result.unknown == len(evil)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("annotation*"))
    assert [str(p) for p in written if p.suffix == ".json"] == ["ws/pages/abc123/annotation.json"]
    assert all(p.parent.name == "abc123" for p in written)
    # A label is kept as text: it never names a file.
    ann = Annotation.from_dict(read_json(ws.annotation_json("abc123")))
    assert ann.regions[0].label == "../../../etc/passwd"
    assert set(ann.masks.values()) == {f"annotation_mask_{c}.png" for c in ann.masks}


def test_an_unreadable_annotation_costs_its_page_not_the_pull(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws").ensure()
    for pid in ("good", "bad"):
        ws.page_dir(pid).mkdir()
    monkeypatch.setattr(pull_module, "ensure_project", lambda *a, **k: {"id": 1})
    tasks = [{"id": i, "total_annotations": 1, "updated_at": "x",
              "data": {"page_id": pid, "width": 100, "height": 100}}
             for i, pid in enumerate(["bad", "good"])]
    broken = [{"type": "rectanglelabels", "value": {"x": "left", "rectanglelabels": ["main"]}}]
    notes: list[str] = []
    result = pull_module.pull(ws, Config(), FakeStudio(tasks, {0: broken}), say=notes.append)
    assert result.written == 1 and ws.annotation_json("good").exists()
    assert not ws.annotation_json("bad").exists()
    assert len(result.unreadable) == 1 and "page bad" in notes[0] and "save it again" in notes[0]


def test_a_page_id_or_mask_file_that_is_a_path_is_refused():
    ws = Workspace(Path("/nonexistent"))
    for bad in ("..", ".", "a/b", "a\\b", ""):
        with pytest.raises(ValueError, match="not a page id"):
            ws.page_dir(bad)
    doc = {"schema": 1, "page_id": "p", "width": 1, "height": 1, "regions": [],
           "masks": {"text": "../../secret.png"}}
    with pytest.raises(ValueError, match="not a file name beside the JSON"):
        Annotation.from_dict(doc)


@pytest.fixture
def echoing_server() -> Iterator[str]:
    """Answers 400 with the request's headers in the body, as some proxies' error pages do."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"detail": f"bad request: {dict(self.headers)}"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_an_error_that_echoes_the_api_key_never_shows_it(echoing_server):
    creds = Credentials(echoing_server, SECRET_KEY, "")
    client = StudioClient(creds, retries=0)
    with pytest.raises(Rejected) as caught:
        client.get("/api/projects")
    message = str(caught.value)
    assert "bad request" in message and "***" in message
    assert SECRET_KEY not in message and SECRET_KEY not in repr(creds)
