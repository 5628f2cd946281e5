"""Starting a Chromium that behaves the same locally and on a remote Selenium Grid.

Debian's chromedriver is named explicitly so that Selenium Manager never runs (it would
try to download a driver). The flags are the ones measured to work headless as root with
no network; `offline` also keeps every hostname but loopback from resolving. Nobody is
there to answer a page's dialogs, so none opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.command import Command

from .browser_state import state_of
from .cdp import cdp
from .devtools import COMMAND_TIMEOUT

CHROMEDRIVER = "/usr/bin/chromedriver"
OWNER_ENV = "WEBSEG_BROWSER_OWNER"
CHROMIUM = "/usr/bin/chromium"

BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-quic",
    "--window-size=1280,800",
)
# alert() or confirm() would fail every later command ("unexpected alert open") and
# window.open would pile up windows: in an unattended capture they do nothing.
NO_DIALOGS = (
    "window.alert = () => undefined; window.confirm = () => true;"
    " window.prompt = () => null; window.print = () => undefined; window.open = () => null;"
)
# The capture style (no animations, every content-visibility section painted, see
# js/prepare.js) from the document's first moment: added after load, it would make
# Chromium style the whole page a second time, the costliest step of reading the boxes.
CAPTURE_CSS = (Path(__file__).with_name("js") / "capture.css").read_text(encoding="utf-8").strip()
CAPTURE_STYLE_AT_START = (
    "try { const sheet = new CSSStyleSheet(); sheet.replaceSync(" + json.dumps(CAPTURE_CSS) + ");"
    " window.__websegCaptureSheet = sheet;"
    " document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet]; } catch (e) {}"
)
QUIT_TIMEOUT = 10.0  # seconds for the quit command, not the two minutes of any other
# A Grid queues a session request while its slots are busy; past this the browser is
# reported missing and its page goes back to the crawl, to another browser, rather than
# wait for a node that died or a slot that someone else holds.
GRID_SESSION_TIMEOUT = 30.0
# Offline, only loopback resolves: served sites' *.localhost names are mapped to it first.
OFFLINE_RULE = ("--host-resolver-rules=MAP *.localhost 127.0.0.1 , MAP * ~NOTFOUND , "
                "EXCLUDE localhost , EXCLUDE 127.0.0.1")


@dataclass
class BrowserOptions:
    grid: str = ""  # remote Selenium Grid (or a chromedriver) URL; empty: local Chromium
    user_agent: str = ""
    offline: bool = False
    extra_args: list[str] = field(default_factory=list)
    # Put in a local chromedriver's environment (and so its Chromium's) as OWNER_ENV: a
    # crawl killed while a browser starts, before it could note the browser, still finds it.
    owner: str = ""


def chrome_options(opts: BrowserOptions, user_data_dir: str | None = None) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    for flag in BASE_FLAGS:
        options.add_argument(flag)
    if user_data_dir:
        options.add_argument(f"--user-data-dir={user_data_dir}")
    if opts.offline:
        options.add_argument(OFFLINE_RULE)
    if opts.user_agent:
        options.add_argument(f"--user-agent={opts.user_agent}")
    for flag in opts.extra_args:
        options.add_argument(flag)
    if not opts.grid:
        options.binary_location = CHROMIUM
    # The performance log carries the document's HTTP status, content type, redirects and
    # headers, and it works through a Grid where a CDP event listener would not. It is
    # read only for pages that cannot tell these themselves (see response.py).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # Network events only: the Page domain's lifecycle events would be logged, sent and
    # parsed for every page, and nothing reads them.
    options.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    options.page_load_strategy = "normal"
    options.unhandled_prompt_behavior = "dismiss"  # a dialog that still opens
    return options


def start_browser(opts: BrowserOptions | None = None) -> webdriver.Remote:
    """A fresh browser with its own profile; call `stop_browser` to remove it again."""
    opts = opts or BrowserOptions()
    if opts.grid:
        client = ClientConfig(remote_server_addr=opts.grid, keep_alive=True,
                              timeout=GRID_SESSION_TIMEOUT)
        driver = webdriver.Remote(command_executor=opts.grid, options=chrome_options(opts),
                                  client_config=client)
        # Every command bounded: one sent to a node that died may never be answered.
        # The capture lengthens it where a page load may take longer (see _set_timeouts).
        set_command_timeout(driver, COMMAND_TIMEOUT)
        state_of(driver).profile = None  # the Grid owns it
    else:
        profile = tempfile.mkdtemp(prefix="webseg-chromium-")
        try:
            # A session of its own: Ctrl-C in a terminal signals the foreground process
            # group, and the browser must live on to finish the pages in flight.
            env = {**os.environ, OWNER_ENV: opts.owner} if opts.owner else None
            service = Service(CHROMEDRIVER, env=env, popen_kw={"start_new_session": True})
            driver = webdriver.Chrome(service=service, options=chrome_options(opts, profile))
        except Exception:
            shutil.rmtree(profile, ignore_errors=True)
            raise
        state_of(driver).profile = profile
    try:
        cdp(driver, "Page.addScriptToEvaluateOnNewDocument",
            {"source": NO_DIALOGS + CAPTURE_STYLE_AT_START})
    except Exception:
        stop_browser(driver)
        raise
    return driver


def performance_log(driver: Any) -> list[dict[str, Any]]:
    """The entries logged since the last call; webdriver.Remote lacks `get_log`."""
    return driver.execute(Command.GET_LOG, {"type": "performance"})["value"]


def stop_browser(driver: webdriver.Remote) -> None:
    """Quit, tolerating a browser that already died or hangs, and remove its profile."""
    state = state_of(driver)
    if state.devtools is not None:
        state.devtools.close()
    pid = browser_pid(driver)
    if state.hung and pid:
        # A session stuck in a page's script would hold the quit for minutes: the local
        # browser's process group goes at once. (A Grid's session times out on its own.)
        _kill_group(pid)
        with contextlib.suppress(Exception):
            driver.service.stop()  # collects the dead chromedriver
        with contextlib.suppress(Exception):
            driver.command_executor.close()
    else:
        set_command_timeout(driver, QUIT_TIMEOUT)
        with contextlib.suppress(Exception):  # a dead browser cannot be asked to quit
            driver.quit()
        if pid:
            _kill_group(pid)  # whatever of its Chromium outlived chromedriver
    if state.profile:
        shutil.rmtree(state.profile, ignore_errors=True)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def set_command_timeout(driver: webdriver.Remote, seconds: float | None) -> float | None:
    """Set how long a WebDriver command may take over HTTP; returns the previous limit."""
    config = getattr(driver.command_executor, "client_config", None)
    if config is None:
        return None
    previous, config.timeout = config.timeout, seconds
    return previous


def browser_pid(driver: webdriver.Remote) -> int | None:
    """PID of the local chromedriver process (its child is the browser)."""
    service = getattr(driver, "service", None)
    process = getattr(service, "process", None)
    return process.pid if process else None
