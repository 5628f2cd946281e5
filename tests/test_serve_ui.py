"""The preview page in a real Chromium: a screenshot uploaded through the file chooser comes
back drawn over with the model's masks and regions, and a class's toggle takes exactly its
pixels off and on again."""

from __future__ import annotations

import base64
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from export.synthetic import draw_page
from model.serve import ServeConfig

from .serve_fixture import run_live, serve_model, serve_release  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def driver(chromium):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='serve-ui-')}"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service(chromium), options=opts)
    yield d
    d.quit()


def _wait(fn, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _canvas(driver) -> np.ndarray:
    url = driver.execute_script("return document.querySelector('#views canvas').toDataURL()")
    data = base64.b64decode(url.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def test_upload_shows_the_overlay_and_a_class_toggles(driver, serve_model, tmp_path):  # noqa: F811
    rgb, _, _ = draw_page(640, 1800, seed=21)
    shot = tmp_path / "page.png"
    Image.fromarray(rgb).save(shot)
    live = next(run_live(ServeConfig(model=serve_model, scratch=tmp_path / "scratch")))
    expected = live.post("/api/segment", data=shot.read_bytes()).json()
    masks = {k: coco_mask.decode({"size": v["size"], "counts": v["counts"].encode()}) > 0
             for k, v in expected["masks"].items()}
    shown = max(masks, key=lambda k: masks[k].sum())
    assert masks[shown].sum() > 1000, "the tiny model found no element at all"

    driver.get(live.url + "/")
    _wait(lambda: driver.find_elements("css selector", "#legend input"), what="the legend")
    driver.find_element("id", "file").send_keys(str(shot))
    _wait(lambda: driver.execute_script("return document.body.dataset.ready"), 120,
          "the prediction")
    with_all = _canvas(driver)
    assert with_all.shape == rgb.shape
    assert np.abs(with_all - rgb).sum(axis=2).astype(bool).mean() > 0.01  # drawn over

    # Every class off: the screenshot itself. One mask class on: only its pixels change.
    for box in driver.find_elements("css selector", "#legend input"):
        if box.is_selected():
            box.click()
    bare = _canvas(driver)
    assert np.abs(bare - rgb).max() <= 2
    driver.find_element("css selector", f"#legend input[data-cls='{shown}']").click()
    one = _canvas(driver)
    changed = np.abs(one - rgb).sum(axis=2) > 6
    assert changed[masks[shown]].mean() > 0.95
    assert not changed[~masks[shown]].any()
    assert "regions" in driver.find_element("id", "message").text

    # The downloads: preannotation.json naming one PNG per mask class, each the mask.
    links = {a.get_attribute("download"): a
             for a in driver.find_elements("css selector", "#downloads a")}
    assert set(links) == {"preannotation.json", *(f"upload_mask_{k}.png" for k in masks)}
    fetch = ("const a = arguments[0], done = arguments[1]; a.click();"
             "fetch(a.href).then(r => r.blob()).then(b => { const f = new FileReader();"
             "f.onload = () => done(f.result); f.readAsDataURL(b); });")
    saved = json.loads(base64.b64decode(
        driver.execute_async_script(fetch, links["preannotation.json"]).split(",", 1)[1]))
    assert saved["regions"] == expected["regions"]
    assert saved["masks"] == {k: f"upload_mask_{k}.png" for k in masks}
    for k, mask in masks.items():
        data = driver.execute_async_script(fetch, links[f"upload_mask_{k}.png"])
        with Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))) as im:
            assert np.array_equal(np.asarray(im.convert("L")) > 127, mask), k

    for box in driver.find_elements("css selector", "#legend input"):
        if not box.is_selected():
            box.click()
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "serve-page.png"))
    live.server.close()


PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 16px sans-serif; } header { background: #223; color: #fff; height: 120px; }
nav a { color: #fff; margin: 0 1em; } main { padding: 2em; } footer { background: #555; height: 150px; }
</style></head><body><header><nav><a href="#a">Home</a><a href="#b">Docs</a></nav></header>
<main>""" + "".join(f"<p>Paragraph {i} of text that runs across the page.</p>" for i in range(40)) \
    + """<img src="data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='300'
height='150'><rect width='300' height='150' fill='teal'/></svg>"></main><footer>Footer</footer>
</body></html>"""


def test_a_url_is_captured_and_shown_next_to_its_dom_preannotation(
        driver, serve_model, static_site, tmp_path):  # noqa: F811
    site, base = static_site
    (site / "index.html").write_text(PAGE)
    gen = run_live(ServeConfig(model=serve_model, scratch=tmp_path / "scratch",
                               allow_hosts=frozenset({"127.0.0.1"})))
    live = next(gen)
    driver.get(live.url + "/")
    _wait(lambda: driver.find_elements("css selector", "#legend input"), what="the legend")
    driver.find_element("id", "url").send_keys(base + "/index.html")
    driver.find_element("css selector", "#url-form button").click()
    # The page answers while the capture runs: the spinner turns and the status says so.
    assert "capturing" in driver.find_element("id", "message").text
    assert driver.find_element("id", "spinner").is_displayed()
    _wait(lambda: driver.execute_script("return document.body.dataset.ready"), 240,
          "the capture: " + driver.find_element("id", "message").text)
    titles = [e.text for e in driver.find_elements("css selector", ".view h2")]
    assert titles[0] == "DOM pre-annotation" and titles[1].startswith("model m0001"), titles
    sizes = driver.execute_script(
        "return [...document.querySelectorAll('#views canvas')].map(c => [c.width, c.height])")
    assert sizes[0] == sizes[1] and sizes[0][1] > 1000, sizes  # the whole tall page
    dom_regions = driver.execute_script(
        "return document.getElementById('message').textContent")
    assert "from the DOM" in dom_regions and not driver.find_element("id", "spinner").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "serve-page-url.png"))
    live.server.close()
