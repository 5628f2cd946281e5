"""DevTools commands that work on a local Chrome driver and through a Selenium Grid alike."""

from __future__ import annotations

from typing import Any

_CDP_COMMAND = "webseg_execute_cdp"


def cdp(driver: Any, cmd: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a Chrome DevTools Protocol command and return its result."""
    if hasattr(driver, "execute_cdp_cmd"):
        return driver.execute_cdp_cmd(cmd, params or {})
    # webdriver.Remote lacks execute_cdp_cmd; chromedriver (and a Grid in front of it)
    # answers the same endpoint that ChromiumDriver uses.
    commands = driver.command_executor._commands
    if _CDP_COMMAND not in commands:
        commands[_CDP_COMMAND] = ("POST", "/session/$sessionId/goog/cdp/execute")
    return driver.execute(_CDP_COMMAND, {"cmd": cmd, "params": params or {}})["value"]
