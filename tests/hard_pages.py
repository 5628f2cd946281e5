"""A local web server with the pages that break naive captures, one path per case."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png(colour: tuple[int, int, int], size: tuple[int, int] = (200, 100)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


FIXED_HEADER = """<!doctype html><html><head><title>fixed</title><style>
body{margin:0;font:16px sans-serif}
#top{position:fixed;top:0;left:0;right:0;height:50px;background:rgb(200,0,0);color:#fff}
#side{position:sticky;top:0;height:40px;background:rgb(0,0,200)}
p{margin:0;height:200px}
</style></head><body><header id="top">Fixed header</header><div style="height:60px"></div>
<div id="side">Sticky bar</div>""" + "".join(f"<p>Paragraph {i}</p>" for i in range(30)) + """
</body></html>"""

LAZY_IMAGES = """<!doctype html><html><body style="margin:0">
<div style="height:4000px">Tall spacer</div>
<img id="native" loading="lazy" src="/red.png" width="200" height="100">
<div style="height:2000px"></div>
<img id="scripted" class="lazy" data-src="/green.png" width="200" height="100">
<p>end</p></body></html>"""

# A block that fades in over 1000 s and one that slides in over as long: captured as the
# page ends up, opaque and in place. With ?replace, the page's own script drops the
# style sheets adopted before it ran (as some frameworks do).
ANIMATED = """<!doctype html><html><head><style>
body{margin:0}
@keyframes fade{from{opacity:0}to{opacity:1}}
@keyframes slide{from{transform:translateX(800px)}to{transform:none}}
#fade{height:100px;background:rgb(0,0,200);animation:fade 1000s}
#slide{height:100px;width:200px;background:rgb(0,150,0);transition:width 1000s;animation:slide 1000s}
</style>SCRIPT</head><body><div id="fade">Fading in</div><div id="slide">Sliding in</div>
<div style="height:1200px"></div></body></html>"""

CONTENT_VISIBILITY = """<!doctype html><html><body style="margin:0;font:20px sans-serif">
<div style="height:3000px">Top</div>
<section style="content-visibility:auto;contain-intrinsic-size:1000px 500px">
<h2 id="cv">Section painted only when near the viewport</h2>
<p>Paragraph inside a content-visibility section.</p></section>
</body></html>"""

# The page moves its content whenever the window resizes or an element scrolls into view:
# exactly what the screenshot's internal resize would trigger.
RESIZE_REACTIVE = """<!doctype html><html><head><style>
body{margin:0;font:18px sans-serif} .row{height:120px;border-bottom:1px solid #888}
#banner{background:rgb(0,160,0);color:#fff;height:67px}
</style></head><body><div id="host"></div>
""" + "".join(f'<div class="row">Row {i}</div>' for i in range(40)) + """
<script>
let n = 0;
function react(){ n++; const h=document.getElementById('host');
  h.innerHTML = '<div id="banner">Resized ' + n + ' times</div>'.repeat(n % 3); }
window.addEventListener('resize', react);
const io = new IntersectionObserver(es => es.forEach(e => { if (e.isIntersecting)
  e.target.style.height = (120 + 30 * (n % 2)) + 'px'; }));
document.querySelectorAll('.row').forEach(r => io.observe(r));
</script></body></html>"""

HIDDEN_THINGS = """<!doctype html><html><body style="margin:0;font:16px sans-serif">
<p id="shown">Shown text</p>
<p style="visibility:hidden">Invisible text</p>
<p style="opacity:0">Transparent text</p>
<div style="display:none"><p>Not rendered</p></div>
<div style="height:40px;overflow:hidden"><p style="margin-top:100px">Clipped text</p></div>
<p id="under" style="margin-top:30px">Covered text</p>
<div style="position:absolute;left:0;top:150px;width:600px;height:80px;background:#000"></div>
<a href="/other" style="position:absolute;left:-9999px">Skip link</a>
</body></html>"""

# A drawing of many parts with HTML inside a foreignObject, and text that is not UTF-8
# as it stands: a lone surrogate put there by a script, and an emoji cut by the text limit.
DRAWING_AND_ODD_TEXT = """<!doctype html><html><head><title>Plain title</title></head>
<body style="margin:0;font:16px sans-serif">
<svg id="diagram" width="400" height="100">""" + "".join(
    f'<rect x="{4 * i}" y="10" width="3" height="80"/><text x="{4 * i}" y="95">t{i}</text>'
    for i in range(100)
) + """</svg>
<svg id="form" width="300" height="60"><g><foreignObject x="0" y="0" width="300" height="60">
<button id="inside" style="width:120px;height:40px">Inside</button></foreignObject></g></svg>
<p id="cut">""" + "a" * 199 + """😀 tail</p>
<p id="odd"></p>
<script>document.getElementById("odd").textContent = "odd \\ud800 text";
document.title = "Odd \\ud83d title";</script>
</body></html>"""

# Well-formed XML, so that it can be served as XHTML too: there tag names are lower case.
ELEMENT_KINDS = """<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><head>
<title>Kinds</title><script>var said = "script text";</script>
<style>p { margin: 4px }</style></head><body style="margin:0;font:16px sans-serif">
<header><h1>Site</h1><nav><a href="/a">Home</a> <a href="/b">About</a></nav></header>
<main><div><p>Some text in a block.</p><a href="/c" style="display:block">A block link</a>
<button>Press</button> <input type="text" value="typed"/> <input type="hidden" value="no"/>
<div role="button">Role button</div></div></main>
<footer><p>Foot</p></footer></body></html>"""

SLOW_PART = b"""<!doctype html><html><body><h1 id="early">Arrived before the hang</h1>"""


def tall_page(height_px: int) -> str:
    rows = height_px // 40
    return "<!doctype html><html><body style='margin:0;font:16px monospace'>" + "".join(
        f"<div style='height:40px;background:rgb({i % 7 * 30},{i % 5 * 40},{i % 3 * 80})'>"
        f"<span style='background:#fff'>Line {i} of a very tall page</span></div>"
        for i in range(rows)
    ) + "</body></html>"


class HardPages(BaseHTTPRequestHandler):
    hang_seconds = 60.0
    answered: dict[str, int] = {}  # requests per path and query (one dict per server)
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = "text/html; charset=utf-8", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: C901 - one branch per case reads best here
        path = self.path.split("?")[0]
        pages = {
            "/fixed": FIXED_HEADER,
            "/lazy": LAZY_IMAGES.replace(
                "<p>end</p>",
                "<script>document.querySelectorAll('img.lazy').forEach(i=>"
                "new IntersectionObserver((es,o)=>es.forEach(e=>{if(e.isIntersecting)"
                "{i.src=i.dataset.src;o.disconnect()}})).observe(i))</script><p>end</p>",
            ),
            "/cv": CONTENT_VISIBILITY,
            "/animated": ANIMATED.replace("SCRIPT", ""),
            "/animated-replace": ANIMATED.replace(
                "SCRIPT", "<script>document.adoptedStyleSheets = [];</script>"),
            "/resize": RESIZE_REACTIVE,
            "/hidden": HIDDEN_THINGS,
            "/drawing": DRAWING_AND_ODD_TEXT,
            "/other": "<html><body><p>Other page</p></body></html>",
            "/framing": "<html><body><p>A frame:</p>"
                        "<iframe src='/then-no-content?framed=1'></iframe></body></html>",
            # Once loaded, the page's own script holds the main thread for good, while the
            # capture still waits for an image that never arrives.
            "/hog": "<html><body><p>Hog</p><div style='height:3000px'></div>"
                    "<img loading=lazy src='/never.png'><script>addEventListener('load', () =>"
                    " setTimeout(() => { for (;;) {} }, 300));</script></body></html>",
            "/kinds.html": ELEMENT_KINDS,
            "/tall": tall_page(40000),
            "/very-tall": tall_page(140000),
        }
        with self.lock:
            self.answered[self.path] = times = self.answered.get(self.path, 0) + 1
        if path in pages:
            self._send(200, pages[path].encode())
        elif path == "/kinds.xhtml":
            self._send(200, ELEMENT_KINDS.encode(), "application/xhtml+xml; charset=utf-8")
        elif path == "/then-no-content":
            if times == 1:
                self._send(200, b"<html><body><p>The first answer</p></body></html>")
            else:
                self._send(204, b"")
        elif path == "/download":
            self._send(200, b"<html><body><p>Saved, not shown</p></body></html>",
                       headers={"Content-Disposition": "attachment; filename=page.html"})
        elif path == "/red.png":
            self._send(200, png((255, 0, 0)), "image/png")
        elif path == "/green.png":
            self._send(200, png((0, 255, 0)), "image/png")
        elif path == "/missing":
            self._send(404, b"<html><body><h1>Not Found</h1><p>No such page.</p></body></html>")
        elif path == "/broken":
            self._send(500, b"<html><body><h1>Internal Server Error</h1></body></html>")
        elif path == "/doc.pdf":
            self._send(200, b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "application/pdf")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/other")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/never.png":
            time.sleep(self.hang_seconds)
        elif path == "/hang":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(SLOW_PART)
            self.wfile.flush()
            time.sleep(self.hang_seconds)
        else:
            self._send(404, b"<html><body>Not here</body></html>")


def start_hard_pages() -> tuple[ThreadingHTTPServer, str]:
    handler = type("HardPagesServed", (HardPages,), {"answered": {}, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
