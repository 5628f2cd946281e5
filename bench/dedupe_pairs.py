"""The labelled near-duplicate benchmark: real pages, real-world edits, real captures.

Families: one real page (a Kreuzer corpus page, or a page of Debian's sqlite3-doc site)
and its variants: the same page served from a second host (a mirror), an image replaced
by another (a rotated ad), a number changed (a date or a counter), a fixed cookie banner
added, and a few words edited. Two captures of one family are duplicates; two captures of
different families (other pages of one site, or other sites) are not.

Variants are written under bench/out/site/variants/ with a <base href> pointing at the
original's folder, so their images and styles load as the original's do.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
KREUZER = ROOT.parent / "shared" / "corpus" / "kreuzer-popular"
SQLITE_DOC = Path("/usr/share/doc/sqlite3")

COOKIE_BANNER = (
    '<div style="position:fixed;left:0;right:0;bottom:0;z-index:2147483647;'
    "background:#1d1d1f;color:#fff;font:15px/1.4 sans-serif;padding:14px 24px;"
    'box-shadow:0 -2px 8px rgba(0,0,0,.3)">We use cookies to improve your experience. '
    "By using this site you accept our cookie policy. "
    '<button style="margin-left:16px;padding:6px 14px">Accept</button></div>'
)

_TEXT = re.compile(r">([^<>]{3,})<")
_NUMBER = re.compile(r"(?<![\w.#&])(\d{2,4})(?![\w])")
_WORDS = re.compile(r"\b([A-Za-z]{4,})\s+([A-Za-z]{4,})\s+([A-Za-z]{4,})\b")
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""(\bsrc\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_SKIP_BEFORE = re.compile(r"<(script|style|title|noscript|option|textarea)\b[^>]*$", re.I)


@dataclass(frozen=True)
class Capture:
    family: str  # the original page
    variant: str  # original | mirror | ad | number | cookie | words
    url_path: str  # path under the served root
    host: int = 0  # 0: first server, 1: the mirror


def _text_spans(html: str) -> list[re.Match]:
    """Text between tags, outside script/style and the like (good enough for editing)."""
    spans = []
    for m in _TEXT.finditer(html):
        opening = html[max(0, m.start() - 400) : m.start() + 1]
        if _SKIP_BEFORE.search(opening) or not m.group(1).strip():
            continue
        spans.append(m)
    return spans


def with_base(html: str, base: str) -> str:
    tag = f'<base href="{base}">'
    m = re.search(r"<head\b[^>]*>", html, re.IGNORECASE)
    if m:
        return html[: m.end()] + tag + html[m.end() :]
    return tag + html


def change_number(html: str, rng: random.Random) -> str | None:
    for span in _text_spans(html):
        m = _NUMBER.search(span.group(1))
        if not m:
            continue
        old = m.group(1)
        new = old
        while new == old:
            new = str(rng.randrange(10 ** (len(old) - 1), 10 ** len(old)))
        at = span.start(1) + m.start(1)
        return html[:at] + new + html[at + len(old) :]
    return None


def edit_words(html: str, rng: random.Random) -> str | None:
    spans = [s for s in _text_spans(html) if _WORDS.search(s.group(1))]
    if not spans:
        return None
    span = spans[len(spans) // 2]
    m = _WORDS.search(span.group(1))
    assert m is not None
    # Another plausible phrase of about the same length, as an editor's fix would be.
    replacement = " ".join(w[::-1].lower().capitalize() if i == 0 else w[::-1].lower()
                           for i, w in enumerate(m.groups()))
    at = span.start(1) + m.start()
    return html[:at] + replacement + html[at + len(m.group(0)) :]


def replace_image(html: str, new_src: str) -> str | None:
    """Point the largest declared <img> (or the first) at another image: a rotated ad."""
    best, best_area = None, -1
    for m in _IMG.finditer(html):
        tag = m.group(0)
        if not _SRC.search(tag):
            continue
        w = re.search(r'\bwidth\s*=\s*["\']?(\d+)', tag, re.I)
        h = re.search(r'\bheight\s*=\s*["\']?(\d+)', tag, re.I)
        area = int(w.group(1)) * int(h.group(1)) if w and h else 0
        if area > best_area:
            best, best_area = m, area
    if best is None:
        return None
    tag = _SRC.sub(lambda s: f"{s.group(1)}{s.group(2)}{new_src}{s.group(2)}", best.group(0), 1)
    return html[: best.start()] + tag + html[best.end() :]


def add_cookie_banner(html: str) -> str:
    m = re.search(r"</body\s*>", html, re.IGNORECASE)
    at = m.start() if m else len(html)
    return html[:at] + COOKIE_BANNER + html[at:]


def _images_under(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif") and p.stat().st_size > 4000
    )


def build_site(n_kreuzer: int, n_sqlite: int, seed: int = 7) -> list[Capture]:
    """Write the served tree under bench/out/site/ and return every capture to make."""
    site = OUT / "site"
    variants = site / "variants"
    variants.mkdir(parents=True, exist_ok=True)
    for name, target in (("kreuzer", KREUZER), ("sqlite", SQLITE_DOC)):
        link = site / name
        if not link.exists():
            os.symlink(target, link)
    rng = random.Random(seed)
    originals: list[tuple[str, Path, str]] = []  # (family, file, served path)
    k_pages = sorted(KREUZER.glob("*/*/index.html"))
    for p in rng.sample(k_pages, min(n_kreuzer, len(k_pages))):
        rel = p.relative_to(KREUZER).as_posix()
        originals.append((f"kreuzer/{rel}", p, f"/kreuzer/{rel}"))
    s_pages = sorted(SQLITE_DOC.glob("*.html")) + sorted(SQLITE_DOC.glob("c3ref/*.html"))
    s_pages = [p for p in s_pages if p.stat().st_size > 3000]
    for p in rng.sample(s_pages, min(n_sqlite, len(s_pages))):
        rel = p.relative_to(SQLITE_DOC).as_posix()
        originals.append((f"sqlite/{rel}", p, f"/sqlite/{rel}"))
    k_images = _images_under(KREUZER)
    s_images = _images_under(SQLITE_DOC / "images")
    captures: list[Capture] = []
    for family, path, served in originals:
        html = path.read_text(encoding="utf-8", errors="replace")
        base = served.rsplit("/", 1)[0] + "/"
        captures.append(Capture(family, "original", served))
        captures.append(Capture(family, "mirror", served, host=1))
        pool = s_images if family.startswith("sqlite/") else k_images
        other = rng.choice(pool)
        other_url = ("/sqlite/" + other.relative_to(SQLITE_DOC).as_posix()
                     if family.startswith("sqlite/")
                     else "/kreuzer/" + other.relative_to(KREUZER).as_posix())
        edits = {
            "ad": replace_image(html, other_url),
            "number": change_number(html, rng),
            "cookie": add_cookie_banner(html),
            "words": edit_words(html, rng),
        }
        slug = re.sub(r"[^A-Za-z0-9]+", "_", family)
        for kind, edited in edits.items():
            if edited is None or edited == html:
                continue
            out = variants / f"{slug}.{kind}.html"
            out.write_text(with_base(edited, base), encoding="utf-8")
            captures.append(Capture(family, kind, f"/variants/{out.name}"))
    return captures


def capture_all(urls: list[str], workspace: Path, max_height: int) -> None:
    """Capture with the scraper's own command (stages never import each other)."""
    if not urls:
        return
    cmd = [sys.executable, "-m", "scraper", "capture", *urls, "--workspace", str(workspace),
           "--offline", "--max-height", str(max_height), "--timeout", "20"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
