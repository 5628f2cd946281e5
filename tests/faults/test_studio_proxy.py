"""Label Studio's side under faults: push and pull through a proxy that fails on purpose,
and pull killed at random moments, end as they do without faults.

The proxy sits on loopback between the client and a real Label Studio and, seeded, answers
some requests 502 without passing them on, passes some on and then drops the connection
before the answer (the server did the work; the client cannot know), and holds some back
for a while. The tasks, predictions and pulled annotations must be those of a push and
pull straight to the server, apart from their ids. A real stop and start of the server in
the middle of a pull, too, must end with the same annotation files.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from PIL import Image

from catalog.workspace import read_json
from tests.labelstudio_fixture import (
    Api,
    StudioServer,
    make_workspace,
    run_annotate,
    write_config,
)

from .campaign import campaign
from .studio import project_state, pull_stage, push_stage

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]


class FaultyProxy:
    """Forwards to `upstream`; per request, by a seeded draw: 502, drop after forwarding,
    a slow answer, or a clean pass. `before` sees each request (method, path) before it is
    forwarded; while the upstream is down the connection drops unanswered, as a stopped
    server's would."""

    def __init__(self, upstream: str, seed: int, p502: float = 0.15, pdrop: float = 0.1,
                 pslow: float = 0.1,
                 before: Callable[[str, str], None] = lambda method, path: None) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults: Counter = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    draw = outer.rng.random()
                if draw < p502:
                    outer.faults["502"] += 1
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if draw < p502 + pdrop + pslow and draw >= p502 + pdrop:
                    outer.faults["slow"] += 1
                    time.sleep(1.0)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                before(self.command, self.path)
                try:
                    resp = requests.request(self.command, upstream + self.path, data=body,
                                            headers=headers, timeout=300)
                except requests.ConnectionError:
                    outer.faults["upstream down"] += 1
                    self.close_connection = True
                    return
                if p502 <= draw < p502 + pdrop:
                    outer.faults["dropped"] += 1
                    self.close_connection = True
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               b"\1\0\0\0\0\0\0\0")
                    return  # the work is done upstream, the answer never comes
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(labelstudio: StudioServer) -> Iterator[FaultyProxy]:
    p = FaultyProxy(labelstudio.url, seed=11)
    yield p
    p.httpd.shutdown()


def _annotation(ws_root: Path, page_id: str) -> tuple:
    doc = read_json(ws_root / "pages" / page_id / "annotation.json")
    masks = {c: Image.open(ws_root / "pages" / page_id / f).tobytes()
             for c, f in sorted(doc["masks"].items())}
    return doc["regions"], masks, doc["meta"]["annotator"]


def _annotate_first(api: Api, title: str, n: int) -> None:
    """The same correction on the first n tasks of a project: its first region left out."""
    for task in sorted(api.tasks(api.project(title)["id"]),
                       key=lambda t: t["data"]["page_id"])[:n]:
        result = api.predictions(task["id"])[0]["result"]
        api.annotate(task["id"], result[1:], lead_time=5.0)


def _assert_same_pulls(got: Path, want: Path, n: int) -> None:
    """n pages pulled into both workspaces, with the same regions, masks and annotator."""
    pulled = sorted(p.parent.name for p in (got / "pages").glob("*/annotation.json"))
    assert pulled == sorted(p.parent.name for p in (want / "pages").glob("*/annotation.json"))
    assert len(pulled) == n
    for pid in pulled:
        assert _annotation(got, pid) == _annotation(want, pid), pid


def test_push_and_pull_through_faults_end_as_without_them(
    labelstudio: StudioServer, proxy: FaultyProxy, tmp_path: Path
) -> None:
    api = Api(labelstudio)
    direct = make_workspace(labelstudio.document_root / "ws-direct", 8, sizes=[(1280, 800)])
    faulty = make_workspace(labelstudio.document_root / "ws-faulty", 8, sizes=[(1280, 800)])
    cfg = write_config(tmp_path / "retry.toml",
                       labelstudio={"retries": 8, "backoff": 0.1, "batch_bytes": 300_000})
    for ws, env in ((direct, labelstudio.env()),
                    (faulty, labelstudio.env(LABEL_STUDIO_URL=proxy.url))):
        proc = run_annotate(["push", "--config", str(cfg), "--workspace", str(ws.root),
                             "--no-progress"], env, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    want = project_state(api, "ws-direct", direct.root, labelstudio.document_root)
    got = project_state(api, "ws-faulty", faulty.root, labelstudio.document_root)
    assert sorted(got) == sorted(want) == direct.page_ids()
    assert all(len(tasks) == 1 for tasks in got.values()), "a page has two tasks"
    assert got == want

    # The same corrections in both projects, then a pull of each.
    for title in ("ws-direct", "ws-faulty"):
        _annotate_first(api, title, 4)
    for ws, env in ((direct, labelstudio.env()),
                    (faulty, labelstudio.env(LABEL_STUDIO_URL=proxy.url))):
        proc = run_annotate(["pull", "--config", str(cfg), "--workspace", str(ws.root)],
                            env, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_same_pulls(faulty.root, direct.root, 4)
    assert proxy.faults["502"] and proxy.faults["dropped"], proxy.faults


def test_a_label_studio_restart_mid_pull_ends_with_the_same_annotations(
    labelstudio: StudioServer, tmp_path: Path
) -> None:
    """The server stopped (SIGTERM, every worker gone) while pull reads the third task's
    annotations, started again a moment later: pull waits it out through its retries and
    writes the same annotation files as a pull without the restart."""
    api = Api(labelstudio)
    direct = make_workspace(labelstudio.document_root / "ws-restart-direct", 8,
                            sizes=[(1280, 800)])
    faulty = make_workspace(labelstudio.document_root / "ws-restart", 8, sizes=[(1280, 800)])
    cfg = write_config(tmp_path / "restart.toml",
                       labelstudio={"retries": 8, "backoff": 1.0})
    for ws in (direct, faulty):
        proc = run_annotate(["push", "--config", str(cfg), "--workspace", str(ws.root),
                             "--no-progress"], labelstudio.env(), tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        _annotate_first(api, ws.root.name, 6)
    proc = run_annotate(["pull", "--config", str(cfg), "--workspace", str(direct.root)],
                        labelstudio.env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    seen, restarts = Counter(), []

    def restart_mid_pull(method: str, path: str) -> None:
        if method != "GET" or "/annotations" not in path:
            return
        seen["annotations"] += 1
        if seen["annotations"] == 3:
            labelstudio.stop()

            def start_again() -> None:
                time.sleep(2.0)
                labelstudio.restart()

            restarts.append(threading.Thread(target=start_again))
            restarts[-1].start()

    proxy = FaultyProxy(labelstudio.url, seed=0, p502=0, pdrop=0, pslow=0,
                        before=restart_mid_pull)
    try:
        proc = run_annotate(["pull", "--config", str(cfg), "--workspace", str(faulty.root)],
                            labelstudio.env(LABEL_STUDIO_URL=proxy.url), tmp_path)
    finally:
        for t in restarts:
            t.join(timeout=400)
        proxy.httpd.shutdown()
        labelstudio.restart()  # whatever happened, the next test has its server
    assert len(restarts) == 1 and proxy.faults["upstream down"] >= 1, \
        "the restart did not fall inside the pull"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_same_pulls(faulty.root, direct.root, 6)


def test_a_killed_pull_rerun_ends_as_an_uninterrupted_one(labelstudio: StudioServer,
                                                          tmp_path: Path) -> None:
    """Pull SIGKILLed at seeded moments, rerun: the same annotation files, byte for byte,
    and the project as it was."""
    stage = pull_stage(labelstudio, tmp_path, pages=16)
    _, trials = campaign(stage, labelstudio.document_root / "pull-campaign", trials=3,
                         kills_per_trial=2, seed=5)
    assert sum(t.kills for t in trials) >= 1, "no kill landed: the campaign proved nothing"
    assert [t.differences for t in trials] == [[], [], []]


def test_a_killed_push_rerun_ends_as_an_uninterrupted_one(labelstudio: StudioServer,
                                                          tmp_path: Path) -> None:
    """Push SIGKILLed at seeded moments, rerun: one task a page, with the same data and
    prediction, as in the project of an uninterrupted push (each run has a project of its
    own, named after its workspace)."""
    stage = push_stage(labelstudio, tmp_path, pages=24)
    _, trials = campaign(stage, labelstudio.document_root / "push-campaign", trials=3,
                         kills_per_trial=2, seed=3)
    assert sum(t.kills for t in trials) >= 1, "no kill landed: the campaign proved nothing"
    assert [t.differences for t in trials] == [[], [], []]


def test_the_project_comparison_sees_a_changed_annotation_and_a_second_task(
    labelstudio: StudioServer, tmp_path: Path
) -> None:
    """What the push and pull campaigns compare on the server can differ: an annotation's
    result and a page with two tasks both show."""
    api = Api(labelstudio)
    ws = make_workspace(labelstudio.document_root / "ws-state", 3, sizes=[(1280, 800)])
    proc = run_annotate(["push", "--workspace", str(ws.root), "--no-progress"],
                        labelstudio.env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def state() -> dict:
        return project_state(api, "ws-state", ws.root, labelstudio.document_root)

    before = state()
    assert sorted(before) == ws.page_ids() and all(len(v) == 1 for v in before.values())
    project = api.project("ws-state")
    task = sorted(api.tasks(project["id"]), key=lambda t: t["data"]["page_id"])[0]
    api.annotate(task["id"], api.predictions(task["id"])[0]["result"][1:], lead_time=1.0)
    annotated = state()
    assert annotated != before
    r = api.s.post(f"{api.url}/api/projects/{project['id']}/import",
                   json=[{"data": task["data"]}], timeout=60)
    r.raise_for_status()
    assert len(state()[task["data"]["page_id"]]) == 2
