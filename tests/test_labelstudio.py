"""The Label Studio round trip against a real server: push, pull, report, and the faults."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from annotate.studio import server as ls_server
from catalog.brush_rle import mask_to_rle, rle_to_mask
from catalog.db import Catalog
from catalog.workspace import read_json, write_json_atomic
from tests.labelstudio_fixture import (
    Api,
    StudioServer,
    make_workspace,
    run_annotate,
    synthetic_page,
    write_config,
    write_preannotation,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]


@pytest.fixture
def api(labelstudio: StudioServer) -> Api:
    return Api(labelstudio)


def _ws(srv: StudioServer, name: str, n: int, **kw):
    return make_workspace(srv.document_root / name, n, **kw)


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_push_one_task_per_canonical_page_idempotent_and_replaces_changed_predictions(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    ws = _ws(labelstudio, "ws-push", 5)
    ids = ws.page_ids()
    with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
        conn.executemany(
            "INSERT INTO dup_groups(page_id, group_id, canonical) VALUES(?,?,?)",
            [(ids[0], "g0", 1), (ids[2], "g0", 0), (ids[1], "g1", 1), (ids[3], "g3", 1),
             (ids[4], "g4", 1)],
        )
    env = labelstudio.env()
    out = _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    assert "4 tasks created" in out
    project = api.project("ws-push")
    tasks = api.tasks(project["id"])
    assert sorted(t["data"]["page_id"] for t in tasks) == sorted(set(ids) - {ids[2]})
    tall = next(t for t in tasks if t["data"]["height"] == 3000)
    # The image is served from the workspace through the local-files storage.
    img = api.s.get(labelstudio.url + tall["data"]["image"], timeout=60)
    assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
    preds = api.predictions(tall["id"])
    assert len(preds) == 1 and preds[0]["model_version"] == "test-1"
    kinds = sorted(r["type"] for r in preds[0]["result"])
    assert kinds == ["brushlabels"] * 3 + ["rectanglelabels"] * 4
    text = next(r for r in preds[0]["result"] if r["value"].get("brushlabels") == ["text"])
    page_dir = ws.page_dir(tall["data"]["page_id"])
    sent = rle_to_mask(text["value"]["rle"], 1280, 3000)
    assert np.array_equal(sent, np.asarray(Image.open(page_dir / "mask_text.png")))

    # A second push creates nothing.
    out = _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    assert "0 tasks created" in out and "4 unchanged" in out
    assert len(api.tasks(project["id"])) == 4

    # A changed pre-annotation replaces the task's prediction.
    pre = read_json(page_dir / "preannotation.json")
    pre["regions"][0]["bbox"] = [10, 10, 500, 90]
    pre["meta"]["version"] = "test-2"
    write_json_atomic(page_dir / "preannotation.json", pre)
    out = _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    assert "0 tasks created, 1 predictions replaced, 3 unchanged" in out
    preds = api.predictions(tall["id"])
    assert [p["model_version"] for p in preds] == ["test-2"]
    header = next(r for r in preds[0]["result"] if r["id"] == "r0")
    assert header["value"]["x"] == pytest.approx(100 * 10 / 1280)
    assert len(api.tasks(project["id"])) == 4

    # Captured again at another height (`scraper check --recapture`) and pre-annotated
    # again: the task takes the new size, so the labelling UI scales to the new picture.
    pid = tall["data"]["page_id"]
    img, regions, masks = synthetic_page(1280, 2500, 99)
    img.save(page_dir / "screenshot.png", compress_level=1)
    write_preannotation(ws, pid, 1280, 2500, regions, masks, "test-2")
    with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
        conn.execute("UPDATE pages SET height=2500 WHERE page_id=?", (pid,))
    out = _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    assert "0 tasks created, 1 predictions replaced, 3 unchanged" in out
    task = next(t for t in api.tasks(project["id"]) if t["data"]["page_id"] == pid)
    assert (task["id"], task["data"]["height"]) == (tall["id"], 2500)
    assert api.predictions(tall["id"])[0]["result"][0]["original_height"] == 2500


def test_push_withdraws_tasks_of_pages_that_became_duplicates_unless_worked_on(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    ws = _ws(labelstudio, "ws-withdraw", 4)
    ids = ws.page_ids()

    def groups(canonical: dict[str, int]) -> None:
        with Catalog(ws.catalog_path) as cat, cat.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO dup_groups(page_id, group_id, canonical) VALUES(?,?,?)",
                [(p, f"g{i}", canonical.get(p, 1)) for i, p in enumerate(ids)],
            )

    def push() -> str:
        return _ok(run_annotate(["push", "--workspace", str(ws.root), "--no-progress"],
                                labelstudio.env(), tmp_path))

    def pushed() -> dict[str, int]:
        return {t["data"]["page_id"]: t["id"]
                for t in api.tasks(api.project("ws-withdraw")["id"])}

    groups({})
    assert "4 tasks created" in push()
    task_of = pushed()
    api.annotate(task_of[ids[1]], api.predictions(task_of[ids[1]])[0]["result"], 30.0)
    skipped = api.s.post(f"{api.url}/api/tasks/{task_of[ids[2]]}/annotations/",
                         json={"result": [], "was_cancelled": True}, timeout=60)
    skipped.raise_for_status()
    # A later crawl found the originals of pages 0, 1 and 2.
    groups({ids[0]: 0, ids[1]: 0, ids[2]: 0})
    out = push()
    assert "1 tasks withdrawn" in out
    assert f"2 tasks kept although dedupe dropped their pages as duplicates (e.g. {ids[1]})" in out
    assert sorted(pushed()) == sorted(ids[1:])
    with Catalog(ws.catalog_path) as cat:
        rows = {r[0] for r in cat.execute("SELECT page_id FROM studio_tasks").fetchall()}
    assert rows == set(ids[1:])
    out = push()
    assert "withdrawn" not in out and "0 tasks created" in out
    # Page 0 is an original again (its duplicate was recaptured): it gets a task again.
    groups({ids[1]: 0, ids[2]: 0})
    assert "1 tasks created" in push()
    assert sorted(pushed()) == sorted(ids)


def test_push_without_dedupe_says_so(labelstudio: StudioServer, api: Api, tmp_path: Path):
    ws = _ws(labelstudio, "ws-nodedupe", 2)
    out = _ok(run_annotate(["push", "--workspace", str(ws.root), "--no-progress"],
                           labelstudio.env(), tmp_path))
    assert "dedupe has not run, pushing every captured page" in out
    assert len(api.tasks(api.project("ws-nodedupe")["id"])) == 2


def _edit(results: list[dict]) -> list[dict]:
    """What an annotator does: move the header, delete the footer, add a sidebar, paint."""
    edited = []
    for r in results:
        r = json.loads(json.dumps(r))
        labels = r["value"].get("rectanglelabels", [])
        if labels == ["footer"]:
            continue
        if labels == ["header"]:
            r["value"]["height"] *= 0.8
        if r["value"].get("brushlabels") == ["text"]:
            mask = rle_to_mask(r["value"]["rle"], r["original_width"], r["original_height"])
            mask[0:50, 0:50] = 255
            r["value"]["rle"] = mask_to_rle(mask)
        edited.append(r)
    w, h = results[0]["original_width"], results[0]["original_height"]
    edited.append({
        "id": "added1", "from_name": "region", "to_name": "image", "type": "rectanglelabels",
        "original_width": w, "original_height": h, "image_rotation": 0,
        "value": {"x": 80, "y": 10, "width": 20, "height": 50, "rotation": 0,
                  "rectanglelabels": ["sidebar"]},
    })
    return edited


def test_pull_writes_annotations_incrementally_and_report_counts_changes(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    ws = _ws(labelstudio, "ws-pull", 3)
    env = labelstudio.env()
    _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    project = api.project("ws-pull")
    tasks = sorted(api.tasks(project["id"]), key=lambda t: t["data"]["page_id"])
    tall = next(t for t in tasks if t["data"]["height"] == 3000)
    pred = api.predictions(tall["id"])[0]
    ann = api.annotate(tall["id"], _edit(pred["result"]), lead_time=42.5)

    out = _ok(run_annotate(["pull", "--workspace", str(ws.root)], env, tmp_path))
    assert "1 annotations written" in out
    page_id = tall["data"]["page_id"]
    doc = read_json(ws.annotation_json(page_id))
    assert doc["schema"] == 1 and (doc["width"], doc["height"]) == (1280, 3000)
    assert {r["label"] for r in doc["regions"]} == {"header", "navigation", "main", "sidebar"}
    assert all(r["source"] == "human" for r in doc["regions"])
    meta = doc["meta"]
    assert meta["annotator"] == "admin@webseg.local" and meta["lead_time"] == 42.5
    assert meta["reviewed"] is False
    assert (meta["task_id"], meta["annotation_id"]) == (tall["id"], ann["id"])
    text = np.asarray(Image.open(ws.page_dir(page_id) / doc["masks"]["text"]))
    expected = np.asarray(Image.open(ws.page_dir(page_id) / "mask_text.png")).copy()
    expected[0:50, 0:50] = 255
    assert np.array_equal(text, expected)
    with Catalog(ws.catalog_path) as cat:
        row = cat.execute("SELECT * FROM annotations WHERE page_id=?", (page_id,)).fetchone()
    assert row["annotation_id"] == ann["id"] and row["lead_time"] == 42.5

    # Nothing changed: nothing is read again.
    out = _ok(run_annotate(["pull", "--workspace", str(ws.root)], env, tmp_path))
    assert "0 annotations written" in out and "0 tasks read" in out

    # A second annotation of the same page: the newest wins, and the pull says so.
    time.sleep(1.1)
    second = api.annotate(tall["id"], pred["result"], lead_time=10.0)
    out = _ok(run_annotate(["pull", "--workspace", str(ws.root)], env, tmp_path))
    assert f"page {page_id} has 2 annotations; kept #{second['id']}, the newest" in out
    assert read_json(ws.annotation_json(page_id))["meta"]["annotation_id"] == second["id"]
    # Back to the edited one for the report.
    api.s.delete(f"{labelstudio.url}/api/annotations/{second['id']}/", timeout=60)
    _ok(run_annotate(["pull", "--workspace", str(ws.root)], env, tmp_path))

    out = _ok(run_annotate(["report", "--workspace", str(ws.root), "--json"], env, tmp_path))
    rep = json.loads(out)
    assert rep["pages"] == 1 and rep["seconds_per_page"] == 42.5
    c = rep["classes"]
    assert (c["header"]["moved"], c["header"]["kept"]) == (1, 0)
    assert c["footer"]["deleted_share"] == 1.0
    assert c["main"]["kept_share"] == 1.0 and c["navigation"]["kept"] == 1
    assert c["sidebar"]["added"] == 1
    assert c["header"]["mean_iou"] == pytest.approx(0.8, abs=0.01)
    assert 0.9 < c["text"]["mean_iou"] < 1.0
    assert c["footer"]["mean_iou"] == 0.0
    sheet = Path(__file__).resolve().parent.parent / "test-artifacts" / "labelstudio_changes.png"
    table = _ok(run_annotate(["report", "--workspace", str(ws.root), "--sheet", str(sheet)],
                             env, tmp_path))
    assert "seconds per page: 42.5" in table
    with Image.open(sheet) as im:
        pixels = np.asarray(im.convert("RGB"))
    # Each region in the colour of what became of it: the deleted footer, the added
    # sidebar, the moved header, the kept main; the legend names them.
    from annotate.studio.sheet import LEGEND_HEIGHT, STATE_COLORS

    for state in ("deleted", "added", "moved", "kept"):
        drawn = (pixels[LEGEND_HEIGHT:] == STATE_COLORS[state]).all(axis=2).sum()
        assert drawn > 100, state


def test_rejected_page_is_named_and_the_rest_pushed(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    ws = _ws(labelstudio, "ws-reject", 6, sizes=[(1280, 800)])
    bad = ws.page_ids()[3]
    pre = read_json(ws.preannotation_json(bad))
    pre["regions"][1]["score"] = math.nan  # a pre-annotator's 0/0; the server refuses NaN
    write_json_atomic(ws.preannotation_json(bad), pre)
    # A label the label set lacks is caught before it reaches the server, which takes any.
    odd = ws.page_ids()[5]
    odd_pre = read_json(ws.preannotation_json(odd))
    odd_pre["regions"][0]["label"] = "banner"
    write_json_atomic(ws.preannotation_json(odd), odd_pre)
    env = labelstudio.env()
    proc = run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path)
    assert proc.returncode == 1
    assert f"page {bad} was not pushed (HTTP 400" in proc.stdout
    assert f"page {odd} was not pushed (labels banner are not in the label set" in proc.stdout
    assert "4 tasks created" in proc.stdout
    pid = api.project("ws-reject")["id"]
    assert sorted(t["data"]["page_id"] for t in api.tasks(pid)) == sorted(
        set(ws.page_ids()) - {bad, odd})
    # Fixed, they go in on the next push, and nothing is doubled.
    pre["regions"][1]["score"] = 0.5
    write_json_atomic(ws.preannotation_json(bad), pre)
    odd_pre["regions"][0]["label"] = "header"
    write_json_atomic(ws.preannotation_json(odd), odd_pre)
    out = _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    assert "2 tasks created" in out
    assert sorted(t["data"]["page_id"] for t in api.tasks(pid)) == ws.page_ids()


def test_wrong_token_is_one_line_naming_the_variable(labelstudio: StudioServer, tmp_path: Path):
    ws = _ws(labelstudio, "ws-token", 1, sizes=[(1280, 800)])
    env = labelstudio.env(LABEL_STUDIO_API_KEY="0123456789abcdef")
    proc = run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LABEL_STUDIO_API_KEY" in lines[0] and "401" in lines[0]
    assert "0123456789abcdef" not in proc.stdout + proc.stderr


def test_changed_label_set_is_refused_with_a_migration_hint(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    ws = _ws(labelstudio, "ws-labels", 1, sizes=[(1280, 800)])
    env = labelstudio.env()
    _ok(run_annotate(["push", "--workspace", str(ws.root)], env, tmp_path))
    regions = ["header", "navigation", "main", "sidebar", "footer", "advertisement", "segment",
               "banner"]
    cfg = write_config(tmp_path / "labels.toml", labels={"regions": regions})
    proc = run_annotate(["push", "--config", str(cfg), "--workspace", str(ws.root)], env,
                        tmp_path)
    assert proc.returncode == 2
    assert "does not match the label set" in proc.stderr and "banner" in proc.stderr
    assert "--update-config" in proc.stderr
    _ok(run_annotate(["push", "--config", str(cfg), "--workspace", str(ws.root),
                      "--update-config"], env, tmp_path))
    assert 'value="banner"' in api.project("ws-labels")["label_config"]


def test_server_killed_mid_push_fails_clearly_and_next_push_doubles_nothing(
    labelstudio: StudioServer, api: Api, tmp_path: Path
):
    # Many small batches: the push must still be under way when the poller sees its first
    # tasks, also on a loaded machine.
    n_pages = 80
    ws = _ws(labelstudio, "ws-crash", n_pages, sizes=[(1280, 800)])
    cfg = write_config(tmp_path / "fast.toml",
                       labelstudio={"retries": 2, "backoff": 0.5, "batch_bytes": 150_000})
    env = labelstudio.env()
    args = ["push", "--config", str(cfg), "--workspace", str(ws.root), "--no-progress"]
    result = {}
    runner = threading.Thread(target=lambda: result.update(p=run_annotate(args, env, tmp_path)))
    runner.start()
    deadline = time.monotonic() + 120
    killed_at = -1
    while time.monotonic() < deadline and runner.is_alive():
        try:
            projects = [p for p in api.get("/api/projects", page_size=1000)["results"]
                        if p["title"] == "ws-crash"]
            if projects and projects[0]["task_number"] > 0:
                killed_at = projects[0]["task_number"]
                labelstudio.kill()
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    runner.join(timeout=180)
    proc = result["p"]
    try:
        assert 0 < killed_at < n_pages, "the push finished before the server could be killed"
        assert proc.returncode == 2, proc.stdout + proc.stderr
        err = proc.stderr.strip().splitlines()[-1]
        assert "did not answer" in err and "make labelstudio" in err
    finally:
        labelstudio.restart()
    out = _ok(run_annotate(args, env, tmp_path))
    pid = api.project("ws-crash")["id"]
    pages = [t["data"]["page_id"] for t in api.tasks(pid)]
    assert sorted(pages) == ws.page_ids(), "a page is missing or doubled after the restart"
    assert "tasks created" in out
    for t in api.tasks(pid):
        assert len(api.predictions(t["id"])) == 1, f"task {t['id']} has not one prediction"


def test_the_api_key_is_on_no_command_line(labelstudio: StudioServer, tmp_path: Path):
    """The server, its workers and the commands that talk to it get the key through the
    environment and `.env`: no process's command line (which every user sees in `ps`)
    holds it, while a push runs or after."""
    def command_lines() -> list[bytes]:
        out = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                out.append((proc / "cmdline").read_bytes())
        return out

    server_pid = json.loads((labelstudio.data_dir / ls_server.STATE_FILE).read_text())["pid"]
    assert Path(f"/proc/{server_pid}/cmdline").read_bytes(), "the server is not running"
    ws = _ws(labelstudio, "ws-cmdline", 6)
    push = subprocess.Popen([sys.executable, "-m", "annotate", "push", "--workspace",
                             str(ws.root), "--no-progress"], env=labelstudio.env(),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    while push.poll() is None:
        seen += command_lines()
        time.sleep(0.2)
    assert push.returncode == 0, push.stdout.read().decode()
    seen += command_lines()
    key = labelstudio.api_key.encode()
    assert len(seen) > 10 and not [c for c in seen if key in c]


def test_start_reuses_a_running_server_and_restart_keeps_data(
    labelstudio: StudioServer, api: Api
):
    before = {p["title"] for p in api.get("/api/projects", page_size=1000)["results"]}
    again = ls_server.start(labelstudio.port, labelstudio.data_dir, labelstudio.document_root,
                            labelstudio.env_file, quiet=True)
    assert again.started is False and again.url == labelstudio.url
    labelstudio.stop()
    assert not ls_server.healthy(labelstudio.url)
    labelstudio.restart()
    after = {p["title"] for p in api.get("/api/projects", page_size=1000)["results"]}
    assert after == before
    text = labelstudio.env_file.read_text()
    assert "LABEL_STUDIO_API_KEY=" in text and labelstudio.env_file.stat().st_mode & 0o777 == 0o600
    log = (labelstudio.data_dir / ls_server.LOG_FILE).read_text(errors="replace")
    assert labelstudio.api_key not in log
