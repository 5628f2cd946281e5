"""What a Selenium Grid has room for, read from its `/status`.

A Grid 4 hub lists its nodes with their availability and slots; a slot holding no session
is free. A bare chromedriver answers `/status` too, without nodes: it is taken as one
free slot whenever it says it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests


@dataclass
class Slots:
    ready: bool
    total: int  # slots on nodes that are up
    free: int
    nodes_up: int
    is_grid: bool  # False: a single driver, not a hub


def parse_status(value: dict) -> Slots:
    """The slots of a `/status` answer's `value`."""
    ready = bool(value.get("ready"))
    if "nodes" not in value:
        return Slots(ready, 1, int(ready), int(ready), is_grid=False)
    total = free = up = 0
    for node in value["nodes"]:
        if node.get("availability") != "UP":
            continue
        up += 1
        for slot in node.get("slots", []):
            total += 1
            free += slot.get("session") is None
    return Slots(ready, total, free, up, is_grid=True)


def grid_slots(url: str, timeout: float = 5.0) -> Slots | None:
    """The Grid's slots, or None when nothing answers at `url`."""
    try:
        resp = requests.get(f"{url.rstrip('/')}/status", timeout=timeout)
        return parse_status(resp.json()["value"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def holds_session(value: dict, session_id: str) -> bool:
    """Whether a `/status` answer's `value` shows the session on a node that is up."""
    return any(
        (slot.get("session") or {}).get("sessionId") == session_id
        for node in value.get("nodes", []) if node.get("availability") == "UP"
        for slot in node.get("slots", []))


def session_alive(url: str, session_id: str, timeout: float = 5.0) -> bool | None:
    """Whether the Grid at `url` still has the session on a live node; None when it cannot
    tell (no answer, or a bare chromedriver, which lists no sessions)."""
    try:
        value = requests.get(f"{url.rstrip('/')}/status", timeout=timeout).json()["value"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
    if not isinstance(value, dict) or "nodes" not in value:
        return None
    return holds_session(value, session_id)

