"""A Grid's free slots read from its /status, the node configuration `make grid` writes, and
a DevTools socket whose remote browser is gone."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
import time
import tomllib
from collections.abc import Iterator

import pytest
from selenium.common.exceptions import WebDriverException

from scraper import devtools
from scraper.capture import is_dead
from scraper.devtools import DevToolsSession, DevToolsTimeout
from scraper.grid import hub_toml, node_toml
from scraper.slots import holds_session, parse_status


def _node(availability: str, *sessions: object) -> dict:
    return {"availability": availability,
            "slots": [{"session": s, "stereotype": {"browserName": "chrome"}} for s in sessions]}


def test_free_slots_count_only_idle_slots_on_nodes_that_are_up() -> None:
    status = {"ready": True, "nodes": [_node("UP", None, {"sessionId": "a"}),
                                       _node("DOWN", None), _node("UP", None)]}
    slots = parse_status(status)
    assert (slots.total, slots.free, slots.nodes_up, slots.is_grid) == (3, 2, 2, True)


def test_a_full_grid_has_no_free_slot() -> None:
    slots = parse_status({"ready": True, "nodes": [_node("UP", {"sessionId": "a"})]})
    assert (slots.total, slots.free) == (1, 0)


def test_a_bare_chromedriver_is_one_slot_while_ready() -> None:
    assert parse_status({"ready": True, "message": "ChromeDriver ready"}).free == 1
    assert parse_status({"ready": False, "message": "busy"}).free == 0


def test_nodes_drive_debians_chromium_one_session_each_with_a_short_heartbeat() -> None:
    node = tomllib.loads(node_toml("127.0.0.1", 5555, "127.0.0.1", (4442, 4443), 1))["node"]
    assert node["detect-drivers"] is False and node["max-sessions"] == 1
    assert node["heartbeat-period"] <= 5
    (driver,) = node["driver-configuration"]
    assert driver["webdriver-executable"] == "/usr/bin/chromedriver"
    assert '"binary": "/usr/bin/chromium"' in driver["stereotype"]
    hub = tomllib.loads(hub_toml("127.0.0.1", 4444, (4442, 4443)))
    assert hub["distributor"]["healthcheck-interval"] <= 5
    assert hub["server"]["host"] == "127.0.0.1"


def test_a_session_is_alive_only_on_a_node_that_is_up() -> None:
    status = {"ready": True, "nodes": [_node("UP", None, {"sessionId": "a"}),
                                       _node("DOWN", {"sessionId": "b"})]}
    assert holds_session(status, "a")
    assert not holds_session(status, "b")  # its node died: the hub drops it soon
    assert not holds_session(status, "c")


# -- a socket that stays open after its browser died ------------------------------------


@pytest.fixture
def pinging_peer() -> Iterator[str]:
    """A WebSocket peer that accepts the handshake, then never answers a command and only
    pings every 0.3 s: what a Grid's hub keeps up for a session whose node was killed."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.settimeout(0.3)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    conn.recv(65536)  # commands and pongs, never answered
                try:
                    conn.sendall(b"\x89\x00")  # a ping with no payload
                except OSError:
                    return  # the client closed its end

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.getsockname()[1]}/"
    stop.set()
    thread.join(5)
    server.close()


def test_a_command_ends_at_its_timeout_though_the_socket_keeps_pinging(
        pinging_peer: str) -> None:
    session = DevToolsSession(pinging_peer)
    t0 = time.monotonic()
    with pytest.raises(DevToolsTimeout):
        session.call("Page.captureScreenshot", timeout=1.5)
    assert time.monotonic() - t0 < 4
    session.close()


def test_a_command_to_a_browser_that_is_gone_ends_within_seconds(
        pinging_peer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devtools, "LIVENESS_POLL", 0.5)
    asked: list[float] = []

    def alive() -> bool | None:
        asked.append(time.monotonic())
        return None if len(asked) < 2 else False  # the hub cannot tell at first, then knows

    session = DevToolsSession(pinging_peer, alive=alive)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match="the browser is gone"):
        session.call("Page.captureScreenshot", timeout=120)
    assert len(asked) == 2 and time.monotonic() - t0 < 5
    session.close()


def test_a_command_to_a_session_whose_node_died_means_a_dead_browser() -> None:
    # The hub's answer while it still lists the session of a node that was killed.
    answer = WebDriverException(
        "Unable to execute request for an existing session: Connection error "
        "(POST http://127.0.0.1:37049/session/4274e3be/se/log)")
    assert is_dead(answer)
    assert not is_dead(WebDriverException("javascript error: x is not defined"))
