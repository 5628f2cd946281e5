"""Kreuzer-format ground truth: find the pages, split them, render their marked blocks.

A page folder holds `index.blocks.html` whose elements carry `data-block="1"` (top-level
segments) and `data-block-type`. The truth is read by rendering that file in Chromium; the
pipeline gets a copy with every `data-block*` attribute stripped, served from the same place
so that its relative links to CSS and images still resolve. The pipeline never sees the
attributes.

The dev / held-out split is fixed by a hash of the page's folder name, so adding pages or
re-running never moves a page from one side to the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from catalog.workspace import Workspace, read_json, write_json_atomic

BLOCKS_FILE = "index.blocks.html"
# Served beside index.blocks.html: the snapshot without scripts (it is already the DOM after
# they ran; running them again rewrites it, e.g. news.google.com blanks itself), once with the
# truth and once without.
TRUTH_FILE = "index.truth.html"
STRIPPED_FILE = "index.stripped.html"
SPLIT_SALT = "webseg-kreuzer-split-1"
TRUTH_VERSION = 2  # what the rendered truth holds; a cache of another version is rendered anew


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_BLOCK_ATTR = re.compile(r"""\sdata-block(?:-type)?\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I)


@dataclass
class KreuzerPage:
    name: str  # folder of index.blocks.html relative to the corpus root
    path: Path  # the index.blocks.html file

    @property
    def split(self) -> str:
        return split_of(self.name)


def split_of(name: str) -> str:
    """'dev' (tuning allowed) or 'heldout' (targets are judged here), about half each."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{name}".encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "heldout"


def list_pages(corpus: Path) -> list[KreuzerPage]:
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise FileNotFoundError(f"Kreuzer corpus {corpus} does not exist")
    pages = [
        KreuzerPage(str(p.parent.relative_to(corpus)), p)
        for p in sorted(corpus.rglob(BLOCKS_FILE))
    ]
    if not pages:
        raise ValueError(f"{corpus} holds no {BLOCKS_FILE}: is it a Kreuzer-format corpus?")
    return pages


def strip_scripts(html: str) -> str:
    return _SCRIPT.sub("", html)


def strip_blocks(html: str) -> str:
    """The page as the pipeline may see it: no data-block / data-block-type attributes."""
    return _BLOCK_ATTR.sub("", strip_scripts(html))


class _CorpusHandler(SimpleHTTPRequestHandler):
    """Serves the corpus read-only; index.truth.html and index.stripped.html are made from
    index.blocks.html on the fly."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".htm": "text/html; charset=utf-8",
    }

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = unquote(urlsplit(self.path).path)
        name = path.rsplit("/", 1)[-1]
        if name in (TRUTH_FILE, STRIPPED_FILE):
            source = (Path(self.directory) / path.lstrip("/")).with_name(BLOCKS_FILE)
            if not source.is_file() or ".." in Path(path).parts:
                self.send_error(404)
                return
            html = source.read_text(encoding="utf-8", errors="replace")
            body = (strip_blocks(html) if name == STRIPPED_FILE else strip_scripts(html)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class CorpusServer:
    """The corpus on an ephemeral port of 127.0.0.1."""

    def __init__(self, corpus: Path):
        handler = partial(_CorpusHandler, directory=str(Path(corpus).resolve()))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def truth_url(self, page: KreuzerPage) -> str:
        return f"{self.base}/{page.name}/{TRUTH_FILE}"

    def stripped_url(self, page: KreuzerPage) -> str:
        return f"{self.base}/{page.name}/{STRIPPED_FILE}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> CorpusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]


def start_chromium(width: int = 1280, height: int = 800) -> Any:
    """Local Debian Chromium with the exact viewport the captures use (dpr 1)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='webseg-truth-')}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


# Same preparation as a capture (no animations, eager images, top of the page), then the
# document rectangles of the top-level blocks.
_PREPARE_JS = """
const done = arguments[arguments.length - 1];
const style = document.createElement('style');
style.textContent = '*{content-visibility:visible!important;animation:none!important;' +
  'transition:none!important}';
(document.head || document.documentElement).appendChild(style);
const imgs = Array.from(document.images);
imgs.forEach(i => { try { i.loading = 'eager'; } catch (e) {} });
const wait = Promise.all(imgs.map(i => i.decode ? i.decode().catch(() => null) : null));
Promise.race([wait, new Promise(r => setTimeout(r, 3000))]).then(() => {
  window.scrollTo(0, 0);
  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
});
"""

# A marked element whose floated children overflow it has a collapsed rectangle (seen: 13 px
# tall over a 950 px column), yet the person marked the column they saw: such an element
# (own height under half of what its visible descendants span) is taken down to the bottom
# of its descendants, within its own width and the document. Each top-level block carries
# its `data-block="2"` sub-blocks (`sub`); sub-blocks outside any top-level block are listed
# apart.
_TRUTH_JS = """
const sx = window.scrollX, sy = window.scrollY;
const de = document.documentElement, b = document.body || de;
const W = Math.max(de.scrollWidth, b.scrollWidth), H = Math.max(de.scrollHeight, b.scrollHeight);
function boxOf(el) {
  const r = el.getBoundingClientRect();
  const left = Math.max(r.left, -sx), right = Math.min(r.right, W - sx);
  let top = Infinity, bottom = -Infinity;
  el.querySelectorAll('*').forEach(c => {
    const q = c.getBoundingClientRect();
    if (q.width * q.height < 1 || q.right <= left || q.left >= right) return;
    if (q.bottom <= -sy || q.top >= H - sy || getComputedStyle(c).visibility === 'hidden') return;
    top = Math.min(top, Math.max(q.top, -sy)); bottom = Math.max(bottom, Math.min(q.bottom, H - sy));
  });
  let box = [r.left, r.top, r.width, r.height];
  // Floats overflow downwards: the box grows down, never up.
  const y0 = r.width * r.height >= 1 ? r.top : top;
  if (isFinite(top) && r.height < 0.5 * (Math.max(r.bottom, bottom) - y0)) {
    const x0 = r.width >= 1 ? r.left : left;
    box = [x0, y0, Math.max(r.width, right - x0), Math.max(r.bottom, bottom) - y0];
  }
  if (box[2] * box[3] < 1) return null;
  return {type: el.getAttribute('data-block-type') || '', tag: el.tagName.toLowerCase(),
          bbox: [box[0] + sx, box[1] + sy, box[2], box[3]]};
}
const out = [], orphans = [];
document.querySelectorAll('[data-block="1"]').forEach(el => {
  const block = boxOf(el);
  if (!block) return;
  block.sub = [];
  el.querySelectorAll('[data-block="2"]').forEach(c => { const s = boxOf(c); if (s) block.sub.push(s); });
  out.push(block);
});
document.querySelectorAll('[data-block="2"]').forEach(el => {
  if (el.closest('[data-block="1"]')) return;
  const s = boxOf(el);
  if (s) orphans.push(s);
});
return {width: W, height: H, blocks: out, orphan_sub_blocks: orphans};
"""

def read_truth(driver: Any, url: str) -> dict[str, Any]:
    """Marked blocks of one index.blocks.html: {width, height, blocks: [{type, bbox, sub:
    [{type, bbox}]}], orphan_sub_blocks: [{type, bbox}]}."""
    from selenium.common.exceptions import TimeoutException

    with contextlib.suppress(TimeoutException):  # a capture takes the partial page too
        driver.get(url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.1)
    driver.set_script_timeout(10)
    driver.execute_async_script(_PREPARE_JS)
    return driver.execute_script(_TRUTH_JS)


def read_truths(corpus: Path, pages: list[KreuzerPage], cache: Path,
                progress: Any = None) -> dict[str, dict[str, Any]]:
    """Rendered truth of each page, cached in `cache` (JSON) by folder and file size/time."""
    data: dict[str, Any] = {}
    if cache.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(cache.read_text(encoding="utf-8"))
    key = {p.name: f"{TRUTH_VERSION}:{p.path.stat().st_size}:{int(p.path.stat().st_mtime)}"
           for p in pages}
    todo = [p for p in pages if data.get(p.name, {}).get("key") != key[p.name]]
    if todo:
        driver = start_chromium()
        try:
            with CorpusServer(corpus) as srv:
                for p in todo:
                    truth = read_truth(driver, srv.truth_url(p))
                    data[p.name] = {"key": key[p.name], **truth}
                    if progress:
                        progress(p)
        finally:
            driver.quit()
        write_json_atomic(cache, data)
    return {p.name: data[p.name] for p in pages}


def capture_pages(corpus: Path, pages: list[KreuzerPage], ws: Workspace,
                  python: str = sys.executable) -> dict[str, str]:
    """Capture the stripped copy of each page into `ws` through the capture command (once:
    the folder -> page id map is kept in the workspace). Returns folder -> page id."""
    index_path = ws.root / "kreuzer-pages.json"
    index: dict[str, str] = {}
    if index_path.exists():
        with contextlib.suppress(ValueError):
            index = json.loads(index_path.read_text(encoding="utf-8"))
    todo = [p for p in pages if not ws.boxes_json(index.get(p.name, "-")).exists()]
    if todo:
        ws.ensure()
        with CorpusServer(corpus) as srv:
            urls = {srv.stripped_url(p): p.name for p in todo}
            cmd = [python, "-m", "scraper", "capture", *urls, "--workspace", str(ws.root),
                   "--viewport", "1280x800", "--dpr", "1", "--offline"]
            proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2])
            # Pages captured before a failure are kept; the others are reported missing.
            for pid in ws.page_ids():
                try:
                    url = read_json(ws.page_json(pid)).get("url", "")
                except (FileNotFoundError, ValueError):
                    continue
                if url in urls:
                    index[urls[url]] = pid
        write_json_atomic(index_path, index)
        if proc.returncode != 0:
            missing = [p.name for p in todo if p.name not in index]
            if missing:
                raise ValueError(
                    f"the capture command failed (exit {proc.returncode}) before "
                    f"{len(missing)} page(s), e.g. {missing[0]}; run again to resume"
                )
    return {p.name: index[p.name] for p in pages if p.name in index}
