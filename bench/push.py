"""Push benchmark: 500 pre-annotated pages (rectangles and brush masks) into Label Studio.

Compares, in the same run and against the same server:
- ours: `annotate push` end to end (read files, encode masks, plain JSON POSTs);
- the SDK path: the same tasks made with the SDK's `mask2rle` and sent with the SDK's
  `projects.import_tasks` in batches of the same size;
- the upload alone: the SDK-built tasks sent by `import_tasks` and by a plain POST;
and prints the brush RLE encode/decode cost per page (ours against the SDK's).

The server (its own data dir), the synthetic workspace and the results live in bench/out/.
Last line: tasks/s and the ratio to the SDK path. Exits 1 when a target is missed
(>= 40 tasks/s and >= 3x the SDK path).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from label_studio_sdk import LabelStudio  # noqa: E402
from label_studio_sdk.converter import brush  # noqa: E402

from annotate.studio import server  # noqa: E402
from annotate.studio.client import StudioClient  # noqa: E402
from annotate.studio.config import labelling_config  # noqa: E402
from annotate.studio.env import Credentials  # noqa: E402
from annotate.studio.push import MAX_TASKS_PER_BATCH, push  # noqa: E402
from annotate.studio.tasks import rect_result, task_data  # noqa: E402
from catalog.brush_rle import mask_to_rle, rle_to_mask  # noqa: E402
from catalog.config import Config  # noqa: E402
from catalog.workspace import Workspace, read_json  # noqa: E402
from tests.labelstudio_fixture import make_workspace  # noqa: E402

OUT = ROOT / "bench" / "out" / "push"
TARGET_RATE = 40.0
TARGET_RATIO = 3.0
SIZES = [(1280, 800), (1280, 1400), (1280, 2200), (1280, 3000)]


def workspace(pages: int) -> Workspace:
    root = OUT / f"ws-{pages}"
    done = root / ".complete"
    if not done.exists():
        print(f"making {pages} synthetic pages in {root} (once)", flush=True)
        make_workspace(root, pages, sizes=SIZES)
        done.touch()
    return Workspace(root)


def sdk_tasks(ws: Workspace, prefix: str) -> list[dict]:
    """The tasks as an SDK user would make them: the SDK's own RLE encoder."""
    tasks = []
    for page_id in ws.page_ids():
        folder = ws.page_dir(page_id)
        pre = read_json(folder / "preannotation.json")
        w, h = pre["width"], pre["height"]
        result = [rect_result(r["label"], r["bbox"], w, h, f"r{i}", r["score"])
                  for i, r in enumerate(pre["regions"])]
        for cls, name in sorted(pre["masks"].items()):
            mask = np.asarray(Image.open(folder / name).convert("L"))
            if mask.any():
                result.append({
                    "id": f"m-{cls}", "from_name": "mask", "to_name": "image",
                    "type": "brushlabels", "original_width": w, "original_height": h,
                    "image_rotation": 0,
                    "value": {"format": "rle", "rle": brush.mask2rle(mask),
                              "brushlabels": [cls]},
                })
        tasks.append({
            "data": task_data(page_id, f"{prefix}/{page_id}/screenshot.png", w, h, ""),
            "predictions": [{"model_version": pre["meta"]["version"], "result": result}],
        })
    return tasks


def rle_costs(ws: Workspace, n_pages: int, n_sdk_decode: int) -> dict[str, float]:
    enc, dec, sdk_enc, sdk_dec = [], [], [], []
    for i, page_id in enumerate(ws.page_ids()[:n_pages]):
        folder = ws.page_dir(page_id)
        pre = read_json(folder / "preannotation.json")
        masks = [np.asarray(Image.open(folder / f).convert("L")) for f in pre["masks"].values()]
        t = time.perf_counter()
        rles = [mask_to_rle(m) for m in masks]
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        for r, m in zip(rles, masks, strict=True):
            assert np.array_equal(rle_to_mask(r, m.shape[1], m.shape[0]) > 0, m > 0)
        dec.append(time.perf_counter() - t)
        t = time.perf_counter()
        sdk = [brush.mask2rle(m) for m in masks]
        sdk_enc.append(time.perf_counter() - t)
        assert sdk == rles
        if i < n_sdk_decode:
            t = time.perf_counter()
            for r in rles:
                brush.decode_rle(bytes(r))
            sdk_dec.append(time.perf_counter() - t)
    ms = lambda xs: 1000 * float(np.mean(xs))  # noqa: E731
    return {"encode": ms(enc), "decode": ms(dec), "sdk_encode": ms(sdk_enc),
            "sdk_decode": ms(sdk_dec)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--keep-server", action="store_true", help="leave the server running")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ws = workspace(args.pages)
    env_file = OUT / ".env"
    port = server.free_port()
    info = server.start(port, OUT / "labelstudio", OUT, env_file, timeout=400, quiet=True)
    key = server.read_env_file(env_file)["LABEL_STUDIO_API_KEY"]
    creds = Credentials(info.url, key, str(OUT))
    client = StudioClient(creds)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    made: list[int] = []
    try:
        # Ours, end to end.
        config = Config()
        config.labelstudio.project_title = f"bench-ours-{stamp}"
        server_cpu, client_cpu = cpu_seconds(info.pid), time.process_time()
        result = push(ws, config, client, progress=True, say=lambda s: None)
        server_cpu = cpu_seconds(info.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        made.append(result.project_id)
        assert result.created == args.pages and not result.rejected, result
        ours = args.pages / result.seconds

        # The SDK path: SDK encoder + import_tasks, same batch size.
        sdk = LabelStudio(base_url=info.url, api_key=key)
        prefix = f"/data/local-files/?d={ws.pages_dir.resolve().relative_to(OUT)}"
        t0 = time.perf_counter()
        tasks = sdk_tasks(ws, prefix)
        t_build = time.perf_counter() - t0
        project = sdk.projects.create(title=f"bench-sdk-{stamp}",
                                      label_config=labelling_config(config.labels))
        made.append(project.id)
        t1 = time.perf_counter()
        for i in range(0, len(tasks), MAX_TASKS_PER_BATCH):
            sdk.projects.import_tasks(id=project.id, request=tasks[i : i + MAX_TASKS_PER_BATCH],
                                      return_task_ids=True)
        t_sdk_upload = time.perf_counter() - t1
        sdk_rate = args.pages / (t_build + t_sdk_upload)

        # The upload alone: the same SDK-built tasks as plain POSTs.
        plain = client.request("POST", "/api/projects", json_body={
            "title": f"bench-plain-{stamp}", "label_config": labelling_config(config.labels)})
        made.append(plain["id"])
        t2 = time.perf_counter()
        for i in range(0, len(tasks), MAX_TASKS_PER_BATCH):
            body = json.dumps(tasks[i : i + MAX_TASKS_PER_BATCH]).encode()
            client.request("POST", f"/api/projects/{plain['id']}/import",
                           params={"return_task_ids": "true"}, data=body)
        t_plain_upload = time.perf_counter() - t2
        for pid in made:
            n = client.get(f"/api/projects/{pid}")["task_number"]
            assert n == args.pages, f"project {pid} has {n} tasks, not {args.pages}"

        costs = rle_costs(ws, 20, 4)
    finally:
        for pid in made:
            client.request("DELETE", f"/api/projects/{pid}")
        if not args.keep_server:
            server.stop(OUT / "labelstudio", quiet=True)

    mean_kb = np.mean([len(json.dumps(t)) for t in tasks]) / 1024
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the end (the server, "
          "the client and anything else share them)")
    print(f"{args.pages} pages ({', '.join(f'{w}x{h}' for w, h in SIZES)}), "
          f"4 rectangles + 3 brush masks each, {mean_kb:.0f} KiB of JSON per task")
    print(f"ours (annotate push, end to end): {result.seconds:6.1f} s  {ours:6.1f} tasks/s "
          f"(CPU per task: client {1000 * client_cpu / args.pages:.1f} ms, server "
          f"{1000 * server_cpu / args.pages:.1f} ms)")
    print(f"SDK path (mask2rle + import_tasks): {t_build + t_sdk_upload:6.1f} s  "
          f"{sdk_rate:6.1f} tasks/s (build {t_build:.1f} s, upload {t_sdk_upload:.1f} s)")
    print(f"upload only, same tasks: import_tasks {args.pages / t_sdk_upload:6.1f} tasks/s, "
          f"plain POST {args.pages / t_plain_upload:6.1f} tasks/s "
          f"({t_sdk_upload / t_plain_upload:.1f}x)")
    print(f"brush RLE per page (3 masks, 20 pages): encode {costs['encode']:.1f} ms "
          f"(SDK {costs['sdk_encode']:.1f} ms), decode {costs['decode']:.1f} ms "
          f"(SDK {costs['sdk_decode']:.1f} ms)")
    ratio = ours / sdk_rate
    ok = ours >= TARGET_RATE and ratio >= TARGET_RATIO
    print(f"push: {ours:.1f} tasks/s (target >= {TARGET_RATE:.0f}), {ratio:.1f}x the SDK path "
          f"(target >= {TARGET_RATIO:.0f}x){'' if ok else ' -- TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
