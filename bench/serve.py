"""`model serve` under load, next to the bare call measured in the same run.

The bare call is what the server does for one upload, in this process: decode the PNG,
predict, encode the masks as COCO RLE and the answer as JSON as Flask's jsonify does
(timed on the main thread and on a worker thread; the faster is the baseline). The server
(`python -m model serve`, waitress, one worker) then gets the same 1280x4000 screenshot
from 1, 4 and 8 concurrent clients; requests/s and p50/p95 latency are printed for each.
Target: at one client the server's p50 is at most 15% over the bare call's p50. More
clients queue behind the one worker (their latency grows, requests/s should not fall).

Where the time goes is printed part by part, the bare call's next to the server's (from
its Server-Timing header: read the body and the image's header, decode, wait for the
worker, predict, RLE, JSON); what is left of a request's latency (`http`) is the HTTP
exchange itself: the client's upload and its download of the answer, waitress and Flask.
The client only sends the bytes and reads the answer; it does not parse the JSON, which
the bare call does not do either.

Without --model a model of the default architecture with untrained weights is written to a
temporary folder: the same arithmetic as a trained one, so the same time.
The exit status is 1 when the target is missed.

    .venv/bin/python bench/serve.py [--model M] [--repeat 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from export.synthetic import draw_page  # noqa: E402
from model.infer import Windowing  # noqa: E402
from model.network import NetConfig, Normalise, SegNet  # noqa: E402
from model.serve.inputs import open_image  # noqa: E402
from model.serve.memory import keep_freed_memory  # noqa: E402
from model.serve.segment import answer  # noqa: E402
from model.serve.timing import Spans, parse_server_timing  # noqa: E402
from model.store import load_model, publish  # noqa: E402

OVERHEAD = 0.15
CLIENTS = (1, 4, 8)
REGIONS = ["header", "navigation", "main", "sidebar", "footer", "advertisement", "segment"]
ELEMENTS = ["text", "image", "interactive"]


def untrained_model(folder: Path) -> Path:
    classes = [{"id": k + 1, "name": n, "kind": "region", "color": "#808080"}
               for k, n in enumerate(REGIONS)]
    classes += [{"id": len(REGIONS) + k + 1, "name": n, "kind": "element", "color": "#808080"}
                for k, n in enumerate(ELEMENTS)]
    cfg = NetConfig(elements=len(ELEMENTS) + 1, regions=len(REGIONS) + 1)
    torch.manual_seed(0)
    card = {"classes": classes,
            "heads": {"elements": ["background", *ELEMENTS], "regions": ["background", *REGIONS]},
            "input": {"working_width": 384, "normalise": asdict(Normalise()),
                      "windowing": asdict(Windowing())},
            "network": cfg.to_json(), "config": {}}
    return publish(folder, SegNet(cfg).eval(), card, {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


def bare_call(model, png: bytes) -> tuple[float, dict[str, float]]:
    """Seconds of the whole call, and of its parts under the names the server uses: the
    server's own functions (header check, then decode, predict and RLE), and the JSON text
    as Flask's jsonify makes it outside debug mode."""
    spans = Spans()
    t0 = time.perf_counter()
    with spans.span("read"):
        im = open_image(png)
    out = answer(model, im, "upload", spans)
    with spans.span("json"):
        (json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n").encode()
    return time.perf_counter() - t0, spans.seconds


def load(url: str, png: bytes, clients: int, per_client: int, parts: list | None = None
         ) -> tuple[list[float], float]:
    """Latencies of `clients` x `per_client` uploads; each answer's Server-Timing parts are
    appended to `parts` (with the latency as `total`)."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        s = requests.Session()  # one kept-alive connection per client
        for _ in range(per_client):
            t0 = time.perf_counter()
            r = s.post(url + "/api/segment", data=png, timeout=600,
                       headers={"Content-Type": "image/png"})
            dt = time.perf_counter() - t0
            with lock:
                (lat.append(dt) if r.ok else errors.append(f"{r.status_code} {r.text[:80]}"))
                if parts is not None:
                    parts.append({**parse_server_timing(r.headers.get("Server-Timing", "")),
                                  "total": dt})

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return lat, wall


PARTS = ("read", "decode", "wait", "predict", "rle", "json")


def print_parts(bare_name: str, bare: list[dict], server: list[dict]) -> None:
    """Median milliseconds per part, the bare call next to the server at 1 client; `http`
    is the server's latency less its timed parts."""
    for s in server:
        s["http"] = s["total"] - sum(s.get(k, 0.0) for k in PARTS)
    print(f"{'median ms per part':<24}" + "".join(f"{k:>8}" for k in (*PARTS, "http", "total")))
    for name, rows in ((bare_name, bare), ("server, 1 client", server)):
        cells = [f"{1000 * statistics.median(r.get(k, 0.0) for r in rows):8.1f}"
                 if any(k in r for r in rows) else f"{'-':>8}" for k in (*PARTS, "http", "total")]
        print(f"{name:<24}" + "".join(cells))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--repeat", type=int, default=5, help="requests of the one client")
    p.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    args = p.parse_args()
    # The bare call runs with the C allocator set up as `model serve` sets it up.
    malloc = "one arena that keeps freed memory" if keep_freed_memory() else "as it was"
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model_dir = args.model or untrained_model(tmp / "models")
    rgb, _, _ = draw_page(1280, 4000, seed=7, textured=True)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    png = buf.getvalue()
    print(f"page 1280x4000, PNG {len(png) / 1e6:.1f} MB, model {model_dir}, "
          f"{args.threads} torch threads, malloc {malloc} (both sides)")

    torch.set_num_threads(args.threads)
    model = load_model(model_dir)
    bare_call(model, png)  # warms caches; not counted
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The server's log goes to a file: a pipe nobody reads could fill and stall it.
    log = open(tmp / "serve.log", "w+")  # noqa: SIM115 (closed with the server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "model", "serve", "--model", str(model_dir), "--port", str(port),
         "--threads", str(args.threads), "--workers", "1", "--queue", str(max(CLIENTS))],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    p50_one = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(url + "/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"the server did not start: {log.read()}") from None
                time.sleep(0.3)
        load(url, png, 1, 1)  # warm-up
        # On a shared machine the load of other programs changes from minute to minute:
        # bare calls and single-client requests alternate, so both see the same.
        # The bare call is timed on the main thread and on a worker thread as the server
        # runs it (measured: on the main thread it can take twice as long); the server is
        # judged against the faster of the two.
        runs: dict[str, list[tuple[float, dict]]] = {"main thread": [], "worker thread": []}
        one, server_parts = [], []
        with ThreadPoolExecutor(1) as worker:
            for _ in range(args.repeat):
                runs["main thread"].append(bare_call(model, png))
                runs["worker thread"].append(worker.submit(bare_call, model, png).result())
                one.append(load(url, png, 1, 1, server_parts)[0][0])
        for where, rows in runs.items():
            t = [total for total, _ in rows]
            print(f"{'bare call, ' + where:<38} {1 / statistics.mean(t):6.2f} req/s"
                  f"  p50 {statistics.median(t):6.3f} s  p95 {pct(t, 0.95):6.3f} s")
        where = min(runs, key=lambda k: statistics.median(total for total, _ in runs[k]))
        b = [total for total, _ in runs[where]]
        p50_one = statistics.median(one)
        print_parts(f"bare, {where}", [{**parts, "total": total} for total, parts in runs[where]],
                    server_parts)
        print(f"{'server, 1 client (alternating)':<38} {1 / statistics.mean(one):6.2f} req/s"
              f"  p50 {p50_one:6.3f} s  p95 {pct(one, 0.95):6.3f} s")
        for n in CLIENTS:
            per = args.repeat if n == 1 else max(2, args.repeat // 2)
            lat, wall = load(url, png, n, per)
            p50 = statistics.median(lat)
            print(f"{f'server, {n} concurrent client(s)':<38} {len(lat) / wall:6.2f} req/s  "
                  f"p50 {p50:6.3f} s  p95 {pct(lat, 0.95):6.3f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    over = p50_one / statistics.median(b) - 1
    ok = over <= OVERHEAD
    print(f"server overhead at 1 client: {100 * over:+.1f}% of the bare call "
          f"(target <= {100 * OVERHEAD:.0f}%): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
