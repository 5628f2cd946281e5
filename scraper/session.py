"""Browsers for an unattended crawl: started apart from the terminal, answering no
dialogs, reading their performance log on a Grid too, and never mistaking the previous
page for the one asked for. Built on the capture's `browser.py`.
"""

from __future__ import annotations

import shutil
import tempfile
import types
from collections.abc import Callable
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.command import Command

from catalog.urls import BadURL, normalise_url

from .browser import CHROMEDRIVER, BrowserOptions, chrome_options, stop_browser
from .cdp import cdp


def _get_log(driver: Any, log_type: str) -> Any:
    return driver.execute(Command.GET_LOG, {"type": log_type})["value"]


# A page that calls alert() or confirm() would fail the capture's next command ("unexpected
# alert open"), on every retry: in a crawl nobody is there to answer, so no dialog opens,
# and no pop-up window piles up in the browser either.
NO_DIALOGS = (
    "window.alert = () => undefined; window.confirm = () => true;"
    " window.prompt = () => null; window.print = () => undefined; window.open = () => null;"
)


def crawl_options(opts: BrowserOptions, profile: str | None = None) -> Any:
    """The capture's Chrome options; a dialog that still opens is dismissed."""
    options = chrome_options(opts, profile)
    options.unhandled_prompt_behavior = "dismiss"
    return options


def _unattended(driver: Any) -> Any:
    cdp(driver, "Page.addScriptToEvaluateOnNewDocument", {"source": NO_DIALOGS})
    return driver


def start_detached(opts: BrowserOptions) -> Any:
    """`start_browser`, with chromedriver (and so Chromium) in a session of its own.

    Ctrl-C in a terminal signals the whole foreground process group; a browser in it would
    die mid-page instead of finishing the pages in flight as the crawl promises.
    """
    if opts.grid:
        driver = webdriver.Remote(command_executor=opts.grid, options=crawl_options(opts))
        driver._webseg_profile = None  # the Grid owns the profile
        if not hasattr(driver, "get_log"):
            # webdriver.Remote has no get_log, which the capture reads the performance log
            # with; chromedriver behind a Grid answers the same command.
            driver.get_log = types.MethodType(_get_log, driver)
        return _unattended(driver)
    profile = tempfile.mkdtemp(prefix="webseg-chromium-")
    try:
        driver = webdriver.Chrome(
            service=Service(CHROMEDRIVER, popen_kw={"start_new_session": True}),
            options=crawl_options(opts, profile),
        )
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver._webseg_profile = profile  # stop_browser removes it
    try:
        return _unattended(driver)
    except Exception:
        stop_browser(driver)
        raise


class Tab:
    """A driver whose `current_url` never reports the previous page as the new one.

    A navigation that does not commit (a server that never answers, a download) leaves
    Chromium on the page before, and the capture would file its result under that page's
    URL, over that page. Here the browser still showing the URL it showed before `get`,
    when another URL was asked for, reads as "nowhere" (about:blank): the capture then
    files the attempt under the URL requested. Costs no extra round trip.

    `before_get` lets the worker wait for the host's turn at the navigation itself.
    """

    def __init__(self, driver: Any):
        self._driver = driver
        self.before_get: Callable[[], None] | None = None  # called right before navigating
        self._shown: str | None = None  # what current_url said last time
        self._before: str | None = None
        self._asked: str | None = None

    def __getattr__(self, name: str) -> Any:  # everything else is the driver's
        return getattr(self._driver, name)

    def get(self, url: str) -> None:
        self._before, self._asked = self._shown, url
        if self.before_get is not None:
            self.before_get()
        self._driver.get(url)

    @property
    def current_url(self) -> str:
        real = self._shown = self._driver.current_url
        if self._asked and real == self._before and _same(real, self._asked) is False:
            return "about:blank"
        return real


def _same(a: str, b: str) -> bool | None:
    try:
        return normalise_url(a) == normalise_url(b)
    except BadURL:
        return None
