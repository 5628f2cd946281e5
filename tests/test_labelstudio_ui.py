"""The labelling UI in a real browser: a pushed task shows its pre-annotated regions."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import requests

from annotate.studio.client import sdk_headers
from tests.labelstudio_fixture import StudioServer, make_workspace, run_annotate

pytestmark = [pytest.mark.labelstudio, pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _driver(chromium: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--mute-audio",
        "--window-size=1400,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tempfile.mkdtemp(prefix='ls-ui-')}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromium), options=opts)


def _wait(fn, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # the page may still be rendering
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def login(driver, srv: StudioServer) -> None:
    """Log in to the labelling UI as the user the server was started with."""
    from selenium.webdriver.common.by import By

    env = srv.env_file.read_text()
    creds = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    driver.get(f"{srv.url}/user/login/")
    _wait(lambda: driver.find_element(By.NAME, "email"), what="the login form")
    driver.find_element(By.NAME, "email").send_keys(creds["LABEL_STUDIO_USERNAME"])
    driver.find_element(By.NAME, "password").send_keys(creds["LABEL_STUDIO_PASSWORD"])
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(lambda: "/user/login" not in driver.current_url, what="the login")


OUTLINER_TITLES = (
    "return [...document.querySelectorAll('.lsf-outliner-item__title')]"
    ".map(e => e.textContent.trim().toLowerCase());"
)
UI_STATE = (
    "const a = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;"
    "return {url: location.href, htx: !!window.Htx, regions: a ? a.regions.length : null,"
    " text: document.body.innerText.slice(0, 300)};"
)


def _outliner_titles(driver, expected: list[str]) -> list[str]:
    """The outliner's region titles once it lists them all, reloading the task once if the
    labelling UI has not rendered within 45 s (its first load can stall on a busy machine).
    On failure the message says what the page showed, and a screenshot is kept."""
    def listed():
        titles = driver.execute_script(OUTLINER_TITLES)
        return titles and len(titles) >= len(expected) and sorted(titles)

    try:
        return _wait(listed, timeout=45.0, what="the outliner")
    except AssertionError:
        driver.refresh()
    try:
        return _wait(listed, timeout=60.0, what="the outliner")
    except AssertionError as exc:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "labelstudio_task_failed.png"))
        console = [e["message"][:200] for e in driver.get_log("browser")][-8:]
        raise AssertionError(
            f"{exc}; after a reload the UI showed {driver.execute_script(UI_STATE)}; "
            f"console: {console}"
        ) from None


def test_pushed_task_shows_its_preannotated_regions(
    labelstudio: StudioServer, chromium: str, tmp_path: Path
):

    ws = make_workspace(labelstudio.document_root / "ws-ui", 1, sizes=[(1280, 3000)])
    proc = run_annotate(["push", "--workspace", str(ws.root), "--no-progress"],
                        labelstudio.env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = requests.Session()
    s.headers.update(sdk_headers(labelstudio.url, labelstudio.api_key))
    project = next(p for p in s.get(f"{labelstudio.url}/api/projects", timeout=60).json()["results"]
                   if p["title"] == "ws-ui")
    task = s.get(f"{labelstudio.url}/api/tasks", params={"project": project["id"],
                 "fields": "task_only"}, timeout=60).json()["tasks"][0]
    prediction = s.get(f"{labelstudio.url}/api/predictions", params={"task": task["id"]},
                       timeout=60).json()[0]
    expected = sorted(
        (r["value"].get("rectanglelabels") or r["value"].get("brushlabels"))[0]
        for r in prediction["result"]
    )
    driver = _driver(chromium)
    try:
        login(driver, labelstudio)
        driver.get(f"{labelstudio.url}/projects/{project['id']}/data?task={task['id']}")
        # The outliner re-renders while the task loads: read its titles in one script.
        titles = _outliner_titles(driver, expected)
        assert titles == expected
        drawn = driver.execute_script(
            "const a = window.Htx.annotationStore.selected;"
            "return a.regions.map(r => [r.type, r.labels ? r.labels[0] : null]);"
        )
        assert sorted(t for t, _ in drawn) == sorted(
            "rectangleregion" if r["type"] == "rectanglelabels" else "brushregion"
            for r in prediction["result"]
        )
        rects = driver.execute_script(
            "return window.Konva.stages.flatMap(s => s.find('Rect'))"
            ".filter(r => r.getAttr('name') !== 'ruler').length;"
        )
        assert rects >= 4
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "labelstudio_task.png"))
        # The tall page keeps its width and scrolls, rather than being squeezed to the window
        # (by default a 1280x3000 page is drawn 301x706 px).
        width, height = driver.execute_script(
            "const s = window.Konva.stages.reduce((a, b) => a.height() > b.height() ? a : b);"
            "return [s.width(), s.height()];"
        )
        assert height > 1000 and height / width == pytest.approx(3000 / 1280, rel=0.05), (
            f"the page is drawn {width}x{height} px"
        )
    finally:
        driver.quit()
