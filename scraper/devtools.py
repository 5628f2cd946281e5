"""A DevTools session of our own on a local browser's page, beside chromedriver's.

Chromedriver relays every DevTools command over HTTP: about 4 ms a command, and a
full-page screenshot of several megabytes is parsed and written out again on the way
(70 ms on a tall page). The page's own websocket carries the same commands directly,
with no relay between. A Selenium Grid 4 offers the same through its hub (`se:cdp`, a
socket to the browser that the hub and the node pass on): the session attaches to the page
there and sends its commands with that page's session id (3 ms a command where the relay
through the hub, the node and chromedriver takes 17). A Grid without it, or a bare
chromedriver standing in for one, keeps the relay through `cdp.cdp`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import websocket

from .slots import session_alive

COMMAND_TIMEOUT = 120.0  # seconds: what Selenium allows any WebDriver command
# Seconds between looks at whether a remote browser still exists while its answer is
# awaited: a Grid keeps the socket to a session open after the session's node died, so
# silence alone would hold the page until COMMAND_TIMEOUT, and pings on that socket
# (answered here) would hold it longer still.
LIVENESS_POLL = 5.0
# Sent once the Inspector domain is on (as `open_session` leaves it).
CRASHED = ("Inspector.targetCrashed", "Inspector.detached")


class DevToolsError(RuntimeError):
    """The browser answered a command with an error."""


class DevToolsTimeout(Exception):
    """No answer in time: the page's main thread is held, or the browser is stuck."""


class DevToolsSession:
    """One websocket to one page target; commands are answered by id, events ignored."""

    def __init__(self, ws_url: str, session_id: str | None = None,
                 alive: Callable[[], bool | None] | None = None):
        """`alive`: whether the browser still exists (None: cannot tell), asked while an
        answer is late; a remote browser's socket does not close when its machine dies."""
        # No UTF-8 check of the frames in Python: a screenshot is megabytes of base64, and
        # the check costs a second for each.
        self._ws = websocket.create_connection(ws_url, suppress_origin=True,
                                               skip_utf8_validation=True, timeout=30)
        self._ids = itertools.count(1)
        self._answers: dict[int, dict[str, Any]] = {}
        self.session_id = session_id  # a page's session on a browser-wide socket (a Grid's)
        self.alive = alive

    def _send(self, method: str, params: dict[str, Any] | None = None) -> int:
        i = next(self._ids)
        message: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if self.session_id:
            message["sessionId"] = self.session_id
        try:
            self._ws.send(json.dumps(message))
        except websocket.WebSocketException as exc:
            raise ConnectionError(f"DevTools connection lost: {exc}") from exc
        return i

    def _result(self, i: int, timeout: float) -> dict[str, Any]:
        # One deadline for the whole answer: a socket timeout alone restarts with every
        # frame, pings included.
        deadline = time.monotonic() + timeout
        next_look = time.monotonic() + LIVENESS_POLL
        while i not in self._answers:
            now = time.monotonic()
            if now >= deadline:
                raise DevToolsTimeout(f"no DevTools answer in {timeout:.0f} s")
            if self.alive is not None and now >= next_look:
                next_look = now + LIVENESS_POLL
                if self.alive() is False:
                    raise ConnectionError("DevTools connection lost: the browser is gone")
            wait = deadline - now if self.alive is None else min(deadline, next_look) - now
            self._ws.settimeout(max(wait, 0.001))
            try:
                opcode, data = self._ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketException as exc:
                raise ConnectionError(f"DevTools connection lost: {exc}") from exc
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError("DevTools connection lost: closed by the other end")
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue  # a ping (answered already) or a pong
            message = orjson.loads(data)
            if "id" in message:
                self._answers[message["id"]] = message
            elif message.get("method") in CRASHED:
                # Its commands would never be answered: the browser is to be replaced.
                raise ConnectionError("the page's renderer crashed")
        answer = self._answers.pop(i)
        if "error" in answer:
            raise DevToolsError(str(answer["error"].get("message", answer["error"]))[:300])
        return answer.get("result", {})

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        return self._result(self._send(method, params), timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self._ws.close()


def open_session(driver: Any, handle: str | None = None) -> DevToolsSession | None:
    """A session on the driver's page when the browser runs here, else None. `handle`:
    the page's window handle, when the caller has it already."""
    if getattr(driver, "service", None) is None:  # a Grid session: its browser is elsewhere
        return _grid_session(driver, handle)
    address = (driver.capabilities.get("goog:chromeOptions") or {}).get("debuggerAddress")
    if not address:
        return None
    handle = handle or driver.current_window_handle  # chromedriver's handle is the target id
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with direct.open(f"http://{address}/json/list", timeout=10) as response:
        targets = json.load(response)
    for target in targets:
        if target.get("id") == handle and target.get("webSocketDebuggerUrl"):
            session = DevToolsSession(target["webSocketDebuggerUrl"])
            session.call("Inspector.enable", timeout=10)  # to hear of a crashed renderer
            return session
    return None


def _grid_session(driver: Any, handle: str | None) -> DevToolsSession | None:
    """A session on the page through the Grid's `se:cdp` socket, or None without one."""
    endpoint = driver.capabilities.get("se:cdp")
    if not endpoint:
        return None
    config = getattr(driver.command_executor, "client_config", None)
    if config is None:
        return None
    # The Grid names the socket by the address it thinks it has; the crawl reaches the hub
    # by the URL it was given, and the path is the hub's own route to the session.
    hub = urlsplit(config.remote_server_addr)
    scheme = "wss" if hub.scheme == "https" else "ws"
    hub_url, session_id = config.remote_server_addr, driver.session_id
    session = DevToolsSession(f"{scheme}://{hub.netloc}{urlsplit(endpoint).path}",
                              alive=lambda: session_alive(hub_url, session_id))
    try:
        target = handle or driver.current_window_handle
        attached = session.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                timeout=10)
        session.session_id = attached["sessionId"]
        session.call("Inspector.enable", timeout=10)  # to hear of a crashed renderer
    except (DevToolsError, DevToolsTimeout, KeyError):
        session.close()
        return None  # the relay carries the same commands
    except BaseException:
        session.close()
        raise
    return session
