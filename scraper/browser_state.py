"""What the crawler keeps about one browser beside Selenium's driver object.

One record a driver, made on first use: the profile folder this process made for it, the
settings last sent (so that a page does not send them again), the page's own DevTools
socket and whether the browser is stuck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .devtools import DevToolsSession
from .response import NavigationLog


@dataclass
class BrowserState:
    profile: str | None = None  # the profile folder made here; None for a Grid's browser
    hung: bool = False  # stuck in a page's script: it is killed, and never asked again
    viewport: tuple[int, int, float] | None = None  # device metrics last set
    timeouts: tuple[float, float] | None = None  # (page load, image wait) last set
    top_frame: str | None = None  # the page target's id: chromedriver's window handle
    devtools: DevToolsSession | None = None  # the page's own socket (local browsers only)
    devtools_tried: bool = False  # opened, or failed once and chromedriver relays instead
    navigation: NavigationLog = field(default_factory=NavigationLog)


def state_of(driver: Any) -> BrowserState:
    """The driver's record, made on first use."""
    state = getattr(driver, "_webseg", None)
    if state is None:
        state = BrowserState()
        driver._webseg = state
    return state
